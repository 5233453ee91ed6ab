"""Loads the ``PortfolioContext`` the portfolio checks need, point in time (the one I/O module of the risk package).

Reads ``audit.positions``, ``audit.balances`` (every currency, converted into the base currency with ``audit.fx_rates``),
``audit.accounts`` and ``marts.features``
(``close`` and ``ret_1`` of rows with ``known_at <= as_of``); records the account's equity at ``as_of`` in
``audit.equity_marks`` so the drawdown peak is the highest equity seen up to then.

Also each candidate's market (``alphaloom.markets.market_specs``: the venue's metadata in ``raw.markets``, else
configuration) and the rate of every candidate's quote currency known at ``as_of`` (``alphaloom.fx``; a currency
without one is left out, and what needs it is refused naming the pair).

When ``marts.correlations`` exists this is where a precomputed matrix would be read instead of ``ret_1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import pandas as pd
from sqlalchemy import Connection, text

from agents.risk.portfolio import PortfolioContext, ReturnsInputs, ReturnsSource
from alphaloom.domain import AccountId, quote_currency, require_utc, timeframe_delta
from alphaloom.fx import Rates, convert, known_rates_at, rates_at
from alphaloom.markets import MarketSpec, market_specs
from alphaloom.records.equity import peak_equity, upsert_marks
from alphaloom.settings import Settings

FEATURES_RELATION = "marts.features"


def returns_history(
    conn: Connection, *, exchange: str, timeframe: str, symbols: Sequence[str], as_of: datetime, bars: int
) -> pd.DataFrame:
    """``ret_1`` of the last ``bars`` bars known at ``as_of``, one column per symbol, rows by bar time (oldest first)."""
    if not symbols or conn.execute(text("select to_regclass(:r)"), {"r": FEATURES_RELATION}).scalar() is None:
        return pd.DataFrame()
    rows: Sequence[tuple[Any, ...]] = conn.execute(
        text(
            f"""select symbol, ts, ret_1 from (
                    select symbol, ts, ret_1,
                           row_number() over (partition by symbol order by ts desc) as n
                    from {FEATURES_RELATION}
                    where exchange = :e and timeframe = :tf and symbol = any(:symbols) and known_at <= :as_of
                      and ret_1 is not null
                ) recent where n <= :bars"""
        ),
        {"e": exchange, "tf": timeframe, "symbols": list(symbols), "as_of": as_of, "bars": bars},
    ).all()
    return returns_frame([tuple(r) for r in rows])


def returns_frame(rows: Sequence[tuple[str, datetime, float]]) -> pd.DataFrame:
    """(symbol, ts, ret_1) rows as ``returns_history`` returns them: one column per symbol, rows by bar time."""
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows, columns=["symbol", "ts", "ret_1"])
    return frame.pivot(index="ts", columns="symbol", values="ret_1").sort_index().astype(float)


class MarketReader(Protocol):
    """The market reads of ``portfolio_context`` answered from memory (a replay cursor), equal to the SQL ones."""

    def marks(self, symbols: Sequence[str], as_of: datetime) -> dict[str, Decimal]: ...

    def returns(self, symbols: Sequence[str], as_of: datetime, bars: int) -> pd.DataFrame: ...

    def returns_inputs(self, symbols: Sequence[str], as_of: datetime, bars: int) -> ReturnsInputs | None:
        """``returns_inputs(self.returns(...))`` without the frame, or None (then they are prepared from it)."""
        ...


def _marks(conn: Connection, settings: Settings, symbols: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
    if not symbols or conn.execute(text("select to_regclass(:r)"), {"r": FEATURES_RELATION}).scalar() is None:
        return {}
    rows = conn.execute(
        text(
            f"""select distinct on (symbol) symbol, close from {FEATURES_RELATION}
                where exchange = :e and timeframe = :tf and symbol = any(:symbols) and known_at <= :as_of
                order by symbol, ts desc"""
        ),
        {"e": settings.exchange, "tf": settings.timeframe, "symbols": list(symbols), "as_of": as_of},
    ).all()
    return {r.symbol: Decimal(str(r.close)) for r in rows if r.close is not None}


def portfolio_context(
    conn: Connection,
    *,
    account: AccountId,
    symbols: Sequence[str],
    as_of: datetime,
    settings: Settings,
    market: MarketReader | None = None,
) -> PortfolioContext:
    """The account's context at ``as_of`` for ``symbols`` (the candidates) plus everything it holds; ``market``: the
    marks and returns history from memory instead of ``marts.features``."""
    as_of = require_utc(as_of, "as_of")
    account_row: tuple[str, Decimal] = conn.execute(
        text("select base_currency, starting_cash from audit.accounts where id = :a"), {"a": account}
    ).one()
    base, starting = account_row
    balances: Sequence[tuple[str, Decimal]] = conn.execute(
        text("select currency, amount from audit.balances where account = :a"), {"a": account}
    ).all()
    positions = {
        r.symbol: (Decimal(r.quantity), Decimal(r.avg_price))
        for r in conn.execute(
            text("select symbol, quantity, avg_price from audit.positions where account = :a and quantity <> 0"),
            {"a": account},
        )
    }
    # Cash in every currency and exposures priced in another quote currency count in the base currency, converted
    # with the rate known at as_of, one lookup per currency (a missing rate is an error, never a silent 1).
    rates = rates_at(conn, [c for c, _ in balances] + [quote_currency(s, base) for s in positions], base, as_of)
    universe = sorted(set(symbols) | set(positions))
    quote_rates = {**known_rates_at(conn, [quote_currency(s, base) for s in symbols], base, as_of), **rates}
    markets = market_specs(conn, exchange=settings.exchange, symbols=universe, asset_classes=settings.asset_classes,
                           quantity_steps=settings.quantity_steps)  # fmt: skip
    marks = _marks(conn, settings, universe, as_of) if market is None else market.marks(universe, as_of)
    equity, exposures = account_equity(balances, positions, marks, rates, base)
    write_equity_marks(conn, [equity_mark_row(account, as_of, equity)])
    peak = peak_equity(conn, account, as_of)  # never None: the mark at as_of was just written
    returns = (
        returns_history(
            conn,
            exchange=settings.exchange,
            timeframe=settings.timeframe,
            symbols=universe,
            as_of=as_of,
            bars=settings.risk.correlation_lookback_bars,
        )
        if market is None
        else market.returns(universe, as_of, settings.risk.correlation_lookback_bars)
    )
    return assemble_context(settings, equity=equity, peak=max(Decimal(peak if peak is not None else starting), Decimal(starting)), exposures=exposures,
                            returns=returns, markets=markets, base=base, quote_rates=quote_rates, as_of=as_of)  # fmt: skip


# --- the pure parts, shared with the in-memory account of a replay (``agents.replay_account``) -----------------------


def account_equity(
    balances: Sequence[tuple[str, Decimal]],
    positions: Mapping[str, tuple[Decimal, Decimal]],
    marks: Mapping[str, Decimal],
    rates: Rates,
    base: str,
) -> tuple[Decimal, dict[str, Decimal]]:
    """(equity, exposure per symbol) in the base currency: the cash of every currency plus each position (quantity,
    avg price) at its mark (its average price when it has none), converted with ``rates``.

    Summed, and the exposures keyed, by currency and by symbol in sorted order: the converted amounts carry the full
    28 digits, so a sum in the order the rows came in would round differently for the database reader (rows in page
    order) and the replay's in-memory account (booking order), and so would the gross and net exposure of the limits."""
    cash = sum(
        (convert(Decimal(amount), ccy, base, rates) for ccy, amount in sorted(balances, key=lambda b: b[0])), Decimal(0)
    )
    exposures = {
        s: convert(q * marks.get(s, avg), quote_currency(s, base), base, rates)
        for s, (q, avg) in sorted(positions.items())
    }
    return Decimal(cash) + sum(exposures.values(), Decimal(0)), exposures


def equity_mark_row(account: str, as_of: datetime, equity: Decimal) -> dict[str, object]:
    """The ``audit.equity_marks`` row of ``account``'s equity at ``as_of`` (``write_equity_marks`` upserts it)."""
    return {"a": account, "t": as_of, "e": equity}


def write_equity_marks(conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Upsert ``equity_mark_row`` rows (a later mark at the same time replaces the earlier one); a write only."""
    upsert_marks(conn, rows)


def assemble_context(
    settings: Settings,
    *,
    equity: Decimal,
    peak: Decimal,
    exposures: Mapping[str, Decimal],
    returns: ReturnsSource,
    markets: Mapping[str, MarketSpec],
    base: str,
    quote_rates: Mapping[tuple[str, str], Decimal],
    as_of: datetime,
    inputs_source: Callable[[], ReturnsInputs | None] | None = None,
) -> PortfolioContext:
    """The ``PortfolioContext`` from its parts (``peak``: the highest equity marked up to ``as_of``, or the starting
    cash when higher; ``returns``: the frame, or a function computing it when first read); its returns inputs are
    prepared by the first check that needs them (``prepared``), from ``inputs_source`` when it gives them."""
    bar = timeframe_delta(settings.timeframe)
    return PortfolioContext(
        equity=equity,
        peak_equity=peak,
        exposures=exposures,
        returns=returns,
        asset_classes=settings.asset_classes,
        bars_per_day=86400 / bar.total_seconds(),
        markets=markets,
        base_currency=base,
        quote_rates=quote_rates,
        as_of=as_of,
        inputs_source=inputs_source,
    )
