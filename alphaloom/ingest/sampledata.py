"""Seeded offline market data: hourly bars for six symbols and two news feeds that talk about the same moves.

This is what ``make demo`` and the tests run on instead of exchanges and RSS URLs (ARCHITECTURE §10). Callers can rely on:

- **Reproducibility.** ``generate(out_dir, seed=s, days=d, end=e)`` writes the same bytes every time; a file whose bytes
  are already right is left untouched (so its mtime survives and make-style tools see nothing to do).
- **Prices** in ``out_dir/prices/<BASE>-<QUOTE>.csv`` (``BTC/USDT`` -> ``BTC-USDT.csv``) with the header
  ``exchange,symbol,timeframe,ts,open,high,low,close,volume``; ``ts`` is the 1h bar's open time (``2026-01-01T14:00:00Z``),
  prices and volumes are plain decimal strings (no exponent). ``high >= max(open, close)``, ``low <= min(open, close)``,
  everything positive. Crypto trades every hour; stocks only on weekdays with bars opening 14:00..20:00 UTC (7 a day,
  holidays ignored). A crypto bar opens at the previous close; a stock's first bar of the day may gap.
- **Realism** (enough to make strategies and tests meaningful, not a market model): returns load on a market factor,
  a crypto factor and an equity factor (BTC/ETH/SOL move together, stocks move together, the two groups barely);
  a 2-state Markov volatility regime (calm/turbulent, weeks long); per-group spells that trend up, trend down or
  mean-revert around the level where they began; a weak long-run pull keeps prices near their nominal levels.
  Volume grows with the size of the bar's move.
- **News** in ``out_dir/news/wire.rss`` (RSS 2.0) and ``out_dir/news/markets.atom`` (Atom 1.0). Stories about a symbol
  are written after its notable 24h moves (the close-to-close return over the last day of bars beyond its 90th
  percentile) and published 5-45 minutes after the bar that showed the move closed, so their tone matches the move
  just seen; regime changes get a market-wide story with no tone; neutral filler pads the rest. Each tagged symbol is
  one category (``BTC/USDT``). About 15% of stories appear in both feeds with the same canonical URL: the Atom copy
  carries ``utm_*`` tracking parameters, a different id and a publication time a few minutes later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from numpy.typing import NDArray

CRYPTO_SYMBOLS: tuple[str, ...] = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
STOCK_SYMBOLS: tuple[str, ...] = ("AAPL/USD", "MSFT/USD", "SPY/USD")
SYMBOLS: tuple[str, ...] = CRYPTO_SYMBOLS + STOCK_SYMBOLS
TIMEFRAME = "1h"
DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)
# Open times of the stock session bars (UTC): 14:00 .. 20:00, seven bars a day, roughly the US cash session.
SESSION_HOURS: tuple[int, ...] = tuple(range(14, 21))
CSV_HEADER = "exchange,symbol,timeframe,ts,open,high,low,close,volume"
NEWS_BASE_URL = "https://news.alphaloom.example"
WIRE_FILE = "wire.rss"
MARKETS_FILE = "markets.atom"
POSITIVE_WORDS: tuple[str, ...] = ("surges", "rallies", "jumps", "beats", "upgrade", "record", "soars", "climbs")
NEGATIVE_WORDS: tuple[str, ...] = ("plunges", "tumbles", "slides", "misses", "downgrade", "lawsuit", "sinks", "falls")

_HOUR = 3600
_DAY = 86400


@dataclass(frozen=True, slots=True)
class SampleData:
    """What ``generate`` wrote: the files (prices in ``symbols`` order, then the two feeds) and their coverage."""

    out_dir: Path
    seed: int
    exchange: str
    timeframe: str
    start: datetime
    end: datetime
    symbols: tuple[str, ...]
    price_files: tuple[Path, ...]
    news_files: tuple[Path, ...]
    news_items: int

    @property
    def files(self) -> tuple[Path, ...]:
        return self.price_files + self.news_files

    def price_file(self, symbol: str) -> Path:
        """The CSV for ``symbol``; ``KeyError`` if it was not generated."""
        try:
            return self.price_files[self.symbols.index(symbol)]
        except ValueError:
            raise KeyError(symbol) from None


@dataclass(frozen=True, slots=True)
class _Profile:
    symbol: str
    name: str
    price: float  # nominal level: the start price and the long-run anchor
    hourly_vol: float  # per-bar volatility in the calm regime
    beta_market: float
    beta_group: float
    decimals: int
    base_volume: float
    volume_decimals: int

    @property
    def is_stock(self) -> bool:
        return self.symbol in STOCK_SYMBOLS


# Hourly vols: crypto ~60-100% a year over 8760 bars; stocks ~20-30% a year over ~1760 session bars.
_PROFILES: tuple[_Profile, ...] = (
    _Profile("BTC/USDT", "Bitcoin", 60_000.0, 0.0065, 0.40, 0.85, 2, 850.0, 5),
    _Profile("ETH/USDT", "Ether", 3_000.0, 0.0075, 0.40, 0.82, 2, 9_000.0, 4),
    _Profile("SOL/USDT", "Solana", 150.0, 0.0090, 0.40, 0.75, 3, 60_000.0, 3),
    _Profile("AAPL/USD", "Apple", 190.0, 0.0060, 0.45, 0.72, 2, 1_000_000.0, 0),
    _Profile("MSFT/USD", "Microsoft", 420.0, 0.0055, 0.45, 0.72, 2, 450_000.0, 0),
    _Profile("SPY/USD", "S&P 500 ETF", 520.0, 0.0035, 0.45, 0.85, 2, 8_000_000.0, 0),
)

_TURBULENT_VOL = 2.3  # vol multiplier in the turbulent regime
_CALM_DAYS, _TURBULENT_DAYS = 30.0, 9.0  # mean regime durations
_TREND_DRIFT = 0.08  # drift per bar in a trending spell, in units of the symbol's calm hourly vol
_RANGE_KAPPA = 0.03  # per-bar pull back to the spell's starting level in a mean-reverting spell
_LONG_RUN_HALF_LIFE_DAYS = 20.0  # a weak pull to the nominal level keeps prices plausible over a year
_SPELL_BARS = {"crypto": 120.0, "stock": 35.0}  # mean spell length: ~5 days of crypto bars, ~5 sessions of stock bars


@dataclass(frozen=True, slots=True)
class _Bars:
    profile: _Profile
    ts: np.ndarray  # int64 epoch seconds, bar open times
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


@dataclass(frozen=True, slots=True)
class _Story:
    published: int  # epoch seconds
    title: str
    summary: str
    symbols: tuple[str, ...]


def generate(
    out_dir: Path, *, seed: int = 7, days: int = 400, end: datetime | None = None, exchange: str = "demo"
) -> SampleData:
    """Write the sample prices and news under ``out_dir`` and return what was written.

    Bars cover ``[end - days, end)``; ``end`` (default ``DEFAULT_END``) is floored to the hour and must be UTC-aware.
    The same arguments always give the same bytes.
    """
    if days < 2:
        raise ValueError(f"days must be at least 2, got {days}")
    end_utc = _floor_hour(end or DEFAULT_END)
    start_utc = end_utc - timedelta(days=days)
    rng = np.random.default_rng(seed)
    hours = np.arange(int(start_utc.timestamp()), int(end_utc.timestamp()), _HOUR, dtype=np.int64)
    turbulent = _regimes(rng, len(hours))
    bars = _simulate(rng, hours, turbulent)
    stories = _stories(rng, bars, hours, turbulent)

    out_dir = Path(out_dir)
    price_files = tuple(_write_prices(out_dir / "prices", b, exchange) for b in bars)
    news_files = _write_news(rng, out_dir / "news", stories, end_utc)
    return SampleData(
        out_dir=out_dir,
        seed=seed,
        exchange=exchange,
        timeframe=TIMEFRAME,
        start=start_utc,
        end=end_utc,
        symbols=tuple(b.profile.symbol for b in bars),
        price_files=price_files,
        news_files=news_files,
        news_items=len(stories),
    )


def symbol_filename(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTC-USDT.csv``."""
    return f"{symbol.replace('/', '-')}.csv"


def is_session_hour(ts: datetime) -> bool:
    """Whether a stock bar opens at ``ts``: a weekday with an hour in ``SESSION_HOURS`` (UTC)."""
    ts = ts.astimezone(UTC)
    return ts.weekday() < 5 and ts.hour in SESSION_HOURS and ts.minute == 0 and ts.second == 0


# --- prices ---------------------------------------------------------------------------------------------------------


def _floor_hour(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"end must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _regimes(rng: np.random.Generator, n: int) -> np.ndarray:
    """A 2-state Markov chain per hour: True = turbulent. Starts calm so every sample opens the same way."""
    p_enter, p_leave = 1 / (_CALM_DAYS * 24), 1 / (_TURBULENT_DAYS * 24)
    draws = rng.random(n)
    states = np.zeros(n, dtype=bool)
    state = False
    for i in range(n):
        if draws[i] < (p_leave if state else p_enter):
            state = not state
        states[i] = state
    return states


def _session_mask(hours: np.ndarray) -> np.ndarray:
    weekday = (hours // _DAY + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    hour = (hours % _DAY) // _HOUR
    return (weekday < 5) & np.isin(hour, SESSION_HOURS)


def _spells(rng: np.random.Generator, n: int, mean_len: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar spell direction (+1 trend up, -1 trend down, 0 mean-revert) and a flag on each spell's first bar."""
    direction = np.zeros(n)
    starts = np.zeros(n, dtype=bool)
    i = 0
    while i < n:
        length = int(rng.geometric(1 / mean_len))
        kind = rng.choice(3, p=[0.275, 0.275, 0.45])
        direction[i : i + length] = (1.0, -1.0, 0.0)[kind]
        starts[i] = True
        i += length
    return direction, starts


def _simulate(rng: np.random.Generator, hours: np.ndarray, turbulent: np.ndarray) -> list[_Bars]:
    n = len(hours)
    market, crypto, equity = rng.standard_normal((3, n))
    # What the market factor did since the previous bar of a symbol, for the stocks' overnight gap.
    cum_market = np.r_[0.0, np.cumsum(market)]
    vol_mult = np.where(turbulent, _TURBULENT_VOL, 1.0)
    session = _session_mask(hours)
    stock_idx = np.flatnonzero(session)
    crypto_idx = np.arange(n)
    # The spells belong to the group so that BTC/ETH/SOL trend (or chop) together.
    spells = {
        "crypto": _spells(rng, len(crypto_idx), _SPELL_BARS["crypto"]),
        "stock": _spells(rng, len(stock_idx), _SPELL_BARS["stock"]),
    }
    result = []
    for p in _PROFILES:
        group, idx, factor = ("stock", stock_idx, equity) if p.is_stock else ("crypto", crypto_idx, crypto)
        result.append(
            _simulate_symbol(
                rng, p, hours[idx], market[idx], factor[idx], _between(cum_market, idx), vol_mult[idx], spells[group]
            )
        )
    return result


def _between(cum_market: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Sum of the market factor over the hours strictly between consecutive bars at ``idx`` (0 for the first)."""
    between = np.zeros(len(idx))
    between[1:] = cum_market[idx[1:]] - cum_market[idx[:-1] + 1]
    return between


def _simulate_symbol(
    rng: np.random.Generator,
    p: _Profile,
    ts: np.ndarray,
    market: np.ndarray,
    group: np.ndarray,
    market_between: np.ndarray,
    vol_mult: np.ndarray,
    spells: tuple[np.ndarray, np.ndarray],
) -> _Bars:
    m = len(ts)
    idio, gap_noise, wick_up, wick_down, vol_noise = rng.standard_normal((5, m))
    loading = np.sqrt(1.0 - p.beta_market**2 - p.beta_group**2)
    sigma = p.hourly_vol * vol_mult
    shock = sigma * (p.beta_market * market + p.beta_group * group + loading * idio)
    gap = np.zeros(m)
    if p.is_stock:
        # The first bar of each session opens away from yesterday's close: what the market did overnight lands in the
        # gap (which is also what ties daily stock returns to crypto, which traded through the night).
        # (The very first bar has no yesterday: it opens at the nominal price.)
        first = np.r_[False, (ts[1:] // _DAY) != (ts[:-1] // _DAY)][:m]
        gap[first] = sigma[first] * (p.beta_market * market_between[first] + gap_noise[first])
    bars_per_day = len(SESSION_HOURS) if p.is_stock else 24
    long_run_kappa = np.log(2) / (_LONG_RUN_HALF_LIFE_DAYS * bars_per_day)
    log_open, log_close = _walk(np.log(p.price), shock, gap, p.hourly_vol, long_run_kappa, *spells)
    open_, close = np.exp(log_open), np.exp(log_close)
    wick = 0.6 * sigma
    high = np.maximum(open_, close) * np.exp(np.abs(wick_up) * wick)
    low = np.minimum(open_, close) * np.exp(-np.abs(wick_down) * wick)
    move = np.abs(log_close - log_open) / p.hourly_vol
    session_shape: float | NDArray[np.float64] = 1.0
    if p.is_stock:
        hour = (ts % _DAY) // _HOUR
        session_shape = np.where((hour == SESSION_HOURS[0]) | (hour == SESSION_HOURS[-1]), 1.6, 1.0)  # U-shaped day
    volume = p.base_volume * np.exp(0.35 * vol_noise) * (0.5 + 0.6 * move) * session_shape
    return _Bars(p, ts, open_, high, low, close, volume)


def _walk(
    x0: float,
    shock: np.ndarray,
    gap: np.ndarray,
    unit_vol: float,
    long_run_kappa: float,
    direction: np.ndarray,
    starts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Log open/close path: shocks + spell drift (trend or pull to the spell's start) + a weak pull to ``x0``."""
    m = len(shock)
    log_open, log_close = np.empty(m), np.empty(m)
    x = anchor = x0
    for k in range(m):
        if starts[k]:
            anchor = x
        drift = direction[k] * _TREND_DRIFT * unit_vol if direction[k] else -_RANGE_KAPPA * (x - anchor)
        drift -= long_run_kappa * (x - x0)
        log_open[k] = x + gap[k]
        x = log_open[k] + drift + shock[k]
        log_close[k] = x
    return log_open, log_close


def _iso(ts: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(ts.astype("datetime64[s]"), unit="s"), "Z")


def _write_prices(folder: Path, bars: _Bars, exchange: str) -> Path:
    p = bars.profile
    d, vd = p.decimals, p.volume_decimals
    lines = [CSV_HEADER]
    for ts, o, h, lo, c, v in zip(_iso(bars.ts), bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True):
        lines.append(f"{exchange},{p.symbol},{TIMEFRAME},{ts},{o:.{d}f},{h:.{d}f},{lo:.{d}f},{c:.{d}f},{v:.{vd}f}")
    return _write_if_changed(folder / symbol_filename(p.symbol), "\n".join(lines) + "\n")


def _write_if_changed(path: Path, content: str) -> Path:
    data = content.encode("utf-8")
    if not (path.is_file() and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a reader never sees half a file
    return path


# --- news -----------------------------------------------------------------------------------------------------------

_UP_TITLES = (
    "{name} surges {pct}% as buyers return",
    "{name} rallies {pct}% on heavy volume",
    "{name} jumps {pct}% after analyst upgrade",
    "{name} soars {pct}% to a record weekly close",
    "{name} climbs {pct}% as momentum traders pile in",
)
_UP_STOCK_TITLES = ("{name} beats estimates; shares jump {pct}%", "Upgrade lifts {name}, stock surges {pct}%")
_UP_CRYPTO_TITLES = ("{name} surges {pct}% on record ETF inflows", "{name} rallies {pct}% as exchange reserves thin")
_DOWN_TITLES = (
    "{name} plunges {pct}% in broad selloff",
    "{name} tumbles {pct}% as sellers take control",
    "{name} slides {pct}% after downgrade",
    "{name} sinks {pct}% amid risk-off mood",
    "{name} falls {pct}% as traders cut exposure",
)
_DOWN_STOCK_TITLES = ("{name} misses estimates; shares fall {pct}%", "Lawsuit weighs on {name}, stock sinks {pct}%")
_DOWN_CRYPTO_TITLES = ("{name} plunges {pct}% after exchange hack", "Regulator lawsuit sends {name} down {pct}%")
_NEUTRAL_TITLES = (
    "{name} trades in a narrow range ahead of macro data",
    "What to watch for {name} this week",
    "{name}: options expiry in focus for traders",
    "Analysts split on the outlook for {name}",
    "{name} volumes steady as markets await the central bank",
)
_GENERAL_TITLES = (
    "Central bank minutes due later this week",
    "Markets digest a busy data calendar",
    "Weekly outlook: earnings, inflation data and policy speakers",
)


def _stories(rng: np.random.Generator, bars: Sequence[_Bars], hours: np.ndarray, turbulent: np.ndarray) -> list[_Story]:
    stories = [s for b in bars for s in _move_stories(rng, b)]
    stories += _regime_stories(rng, hours, turbulent)
    stories += _filler_stories(rng, hours)
    stories.sort(key=lambda s: (s.published, s.title))
    return stories


def _move_stories(rng: np.random.Generator, bars: _Bars) -> list[_Story]:
    """One story per notable 24h move, at most one a day per symbol, published just after the move was visible."""
    p = bars.profile
    window = len(SESSION_HOURS) if p.is_stock else 24
    if len(bars.close) <= window:
        return []
    ret = bars.close[window:] / bars.close[:-window] - 1.0
    threshold = float(np.quantile(np.abs(ret), 0.9))
    stories: list[_Story] = []
    last = -(10**12)
    for k in np.flatnonzero(np.abs(ret) > threshold):
        known_at = int(bars.ts[k + window]) + _HOUR
        if known_at - last < _DAY:
            continue
        last = known_at
        stories.append(_move_story(rng, p, float(ret[k]), known_at + 60 * int(rng.integers(5, 46))))
    return stories


def _move_story(rng: np.random.Generator, p: _Profile, ret: float, published: int) -> _Story:
    up = ret > 0
    group = (
        (_UP_STOCK_TITLES if up else _DOWN_STOCK_TITLES)
        if p.is_stock
        else (_UP_CRYPTO_TITLES if up else _DOWN_CRYPTO_TITLES)
    )
    templates = (_UP_TITLES if up else _DOWN_TITLES) + group
    pct = f"{abs(ret) * 100:.1f}"
    title = templates[int(rng.integers(len(templates)))].format(name=p.name, pct=pct)
    direction = "up" if up else "down"
    summary = f"{p.name} ({p.symbol}) is {direction} {pct}% over the last day of trading. {title}."
    return _Story(published, title, summary, (p.symbol,))


def _regime_stories(rng: np.random.Generator, hours: np.ndarray, turbulent: np.ndarray) -> list[_Story]:
    """A market-wide, toneless story when volatility switches regime, tagged with a few bellwethers."""
    stories = []
    for i in np.flatnonzero(turbulent[1:] != turbulent[:-1]) + 1:
        published = int(hours[i]) + 60 * int(rng.integers(30, 180))
        if turbulent[i]:
            title = "Volatility picks up across crypto and equities as swings widen"
        else:
            title = "Volatility fades as crypto and equity markets settle down"
        summary = f"{title}. Realized volatility has shifted across asset classes."
        stories.append(_Story(published, title, summary, ("BTC/USDT", "ETH/USDT", "SPY/USD")))
    return stories


def _filler_stories(rng: np.random.Generator, hours: np.ndarray) -> list[_Story]:
    """Neutral background noise: about one story a day at random times, a fifth of them untagged."""
    count = max(1, len(hours) // 24)
    times = np.sort(rng.integers(int(hours[0]), int(hours[-1]) + _HOUR, size=count))
    stories = []
    for t in times:
        if rng.random() < 0.2:
            title = _GENERAL_TITLES[int(rng.integers(len(_GENERAL_TITLES)))]
            symbols: tuple[str, ...] = ()
        else:
            p = _PROFILES[int(rng.integers(len(_PROFILES)))]
            title = _NEUTRAL_TITLES[int(rng.integers(len(_NEUTRAL_TITLES)))].format(name=p.name)
            symbols = (p.symbol,)
        stories.append(_Story(int(t) - int(t) % 60, title, f"{title}.", symbols))
    return stories


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].rstrip("-")


def _write_news(rng: np.random.Generator, folder: Path, stories: Sequence[_Story], end: datetime) -> tuple[Path, Path]:
    wire: list[str] = []
    markets: list[str] = []
    for n, story in enumerate(stories, start=1):
        when = datetime.fromtimestamp(story.published, UTC)
        url = f"{NEWS_BASE_URL}/{when:%Y}/{when:%m}/{_slug(story.title)}-{n}"
        draw = rng.random()
        if draw < 0.6:  # [0, 0.15) goes to both feeds, [0.15, 0.6) wire only, the rest markets only
            wire.append(_rss_item(story, n, url, when))
        if draw < 0.15 or draw >= 0.6:
            later = when + timedelta(minutes=int(rng.integers(2, 11))) if draw < 0.15 else when
            markets.append(_atom_entry(story, n, f"{url}?utm_source=markets&utm_medium=feed", later))
    # Feeds list the newest story first, like real ones.
    rss = _write_if_changed(folder / WIRE_FILE, _rss_document(reversed(wire), end))
    atom = _write_if_changed(folder / MARKETS_FILE, _atom_document(reversed(markets), end))
    return rss, atom


def _rss_item(story: _Story, n: int, url: str, when: datetime) -> str:
    categories = "".join(f"<category>{escape(s)}</category>" for s in story.symbols)
    return (
        f"<item><title>{escape(story.title)}</title><link>{escape(url)}</link>"
        f'<guid isPermaLink="false">wire-{n:06d}</guid><pubDate>{format_datetime(when, usegmt=True)}</pubDate>'
        f"<description>{escape(story.summary)}</description>{categories}</item>"
    )


def _atom_entry(story: _Story, n: int, url: str, when: datetime) -> str:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    categories = "".join(f"<category term={quoteattr(s)}/>" for s in story.symbols)
    return (
        f'<entry><title>{escape(story.title)}</title><link rel="alternate" href={quoteattr(url)}/>'
        f"<id>tag:markets.alphaloom.example,2026:story-{n:06d}</id><published>{stamp}</published>"
        f"<updated>{stamp}</updated><summary>{escape(story.summary)}</summary>{categories}</entry>"
    )


def _rss_document(items: Iterable[str], end: datetime) -> str:
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>\n'
        f"<title>AlphaLoom Wire (synthetic)</title><link>{NEWS_BASE_URL}/wire</link>"
        "<description>Generated market headlines for offline demos</description>"
        f"<lastBuildDate>{format_datetime(end, usegmt=True)}</lastBuildDate>\n"
    )
    return head + "\n".join(items) + "\n</channel></rss>\n"


def _atom_document(entries: Iterable[str], end: datetime) -> str:
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f'<title>AlphaLoom Markets (synthetic)</title><link rel="alternate" href="{NEWS_BASE_URL}/markets"/>'
        f"<id>tag:markets.alphaloom.example,2026:feed</id><updated>{end:%Y-%m-%dT%H:%M:%SZ}</updated>"
        "<author><name>AlphaLoom Markets Desk</name></author>\n"
    )
    return head + "\n".join(entries) + "\n</feed>\n"
