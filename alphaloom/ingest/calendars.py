"""Session calendars: when each asset class trades, so that closures are not reported as gaps. Pure, no I/O.

- ``crypto``: every bar, 24/7.
- ``forex``: Sunday 22:00 UTC to Friday 22:00 UTC (the interbank week, approximated in UTC all year round).
- ``stocks``: weekdays, bars opening from ``open_hour`` to ``close_hour`` UTC (default 14..20, the NYSE session
  14:30-21:00 UTC approximated to hourly bars, as the offline sample data has it). Exchange holidays are not modelled:
  a holiday reads as a gap of one session, which the gap tolerance absorbs.

``SessionCalendar.expected_opens(start, end, timeframe)`` lists the bar open times a complete series would have in
``[start, end]``; ``find_gaps`` compares a series' open times with it and returns only the runs of missing bars longer
than a tolerance, so a weekend or an overnight close never counts as missing data. Which calendar a market follows
comes from its asset class as the trader sees it (``calendar_class_of`` on an ``alphaloom.markets.MarketSpec``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from alphaloom.domain import bar_close, bar_grid, bar_open, shift_bars, timeframe_delta
from alphaloom.markets import MarketSpec

ASSET_CLASSES = ("crypto", "forex", "stocks")


@dataclass(frozen=True, slots=True)
class Gap:
    """``missing`` expected bars from ``first_missing`` to ``last_missing`` (bar open times, UTC)."""

    first_missing: datetime
    last_missing: datetime
    missing: int


@dataclass(frozen=True, slots=True)
class SessionCalendar:
    """When one asset class trades; ``is_open`` on bar open times decides which bars a complete series has."""

    asset_class: str
    open_hour: int = 14
    close_hour: int = 20  # open time of the last bar of the session, inclusive

    def __post_init__(self) -> None:
        if self.asset_class not in ASSET_CLASSES:
            raise ValueError(f"unknown asset class {self.asset_class!r}; expected one of {ASSET_CLASSES}")

    def is_open(self, opens: pd.DatetimeIndex) -> np.ndarray:
        """Whether a bar opening at each time (UTC) is inside the session."""
        opens = pd.DatetimeIndex(opens).tz_convert(UTC)
        if self.asset_class == "crypto":
            return np.ones(len(opens), dtype=bool)
        weekday: NDArray[np.int32] = opens.day_of_week.to_numpy()
        hour: NDArray[np.int32] = opens.hour.to_numpy()
        if self.asset_class == "forex":  # closed from Friday 22:00 to Sunday 22:00
            closed: NDArray[np.bool_] = (
                ((weekday == 4) & (hour >= 22)) | (weekday == 5) | ((weekday == 6) & (hour < 22))
            )
            return ~closed
        return (weekday < 5) & (hour >= self.open_hour) & (hour <= self.close_hour)

    def expected_opens(self, start: datetime, end: datetime, timeframe: str) -> pd.DatetimeIndex:
        """Bar open times in ``[start, end]`` (on the timeframe's grid: ``bar_open``) at which this calendar trades."""
        grid = _bar_opens(start, end, timeframe)
        if timeframe_delta(timeframe) < timedelta(days=1):
            return grid[self.is_open(grid)]
        return grid[self._open_days(grid, timeframe)]

    def session_time_between(self, start: datetime, end: datetime, timeframe: str) -> timedelta:
        """How much of ``[start, end)`` falls inside this calendar's session: the sum over the bars it trades of each
        bar's overlap with the interval (a weekend or overnight close adds nothing). ``start`` is a bar boundary, as
        the close of a stored bar is. Month bars count their own length (28 to 31 days)."""
        if end <= start:
            return timedelta(0)
        opens = self.expected_opens(start, end, timeframe)
        if len(opens) == 0:
            return timedelta(0)
        last = opens[-1].to_pydatetime()
        if bar_grid(timeframe) is None:
            full = sum((bar_close(o.to_pydatetime(), timeframe) - o.to_pydatetime() for o in opens[:-1]), timedelta(0))
        else:
            full = timeframe_delta(timeframe) * (len(opens) - 1)
        return full + min(bar_close(last, timeframe), end) - last

    def _open_days(self, grid: pd.DatetimeIndex, timeframe: str) -> np.ndarray:
        # Daily and longer bars: a bar counts when any of its hours trades; any bar of three days or more holds a
        # weekday, so it always trades (a month starting on a Saturday is not a closed month).
        if self.asset_class == "crypto" or timeframe_delta(timeframe) > timedelta(days=2):
            return np.ones(len(grid), dtype=bool)
        return grid.day_of_week.to_numpy() < 5

    def find_gaps(self, opens: Sequence[datetime] | pd.DatetimeIndex, timeframe: str, tolerance: int = 0) -> list[Gap]:
        """Runs of expected bars missing between the first and last of ``opens``, longer than ``tolerance`` bars."""
        present = pd.DatetimeIndex(pd.to_datetime(list(opens), utc=True)).unique().sort_values()
        if len(present) < 2:
            return []
        expected = self.expected_opens(present[0].to_pydatetime(), present[-1].to_pydatetime(), timeframe)
        missing = ~expected.isin(present)
        return _runs(expected, missing, tolerance)

    def gap_before(self, opens: pd.Series, timeframe: str) -> np.ndarray:
        """For each bar (sorted or not, one series), how many expected bars are missing just before it."""
        ts = pd.DatetimeIndex(pd.to_datetime(opens, utc=True))
        order = np.argsort(ts.asi8, kind="stable")
        sorted_ts = ts[order]
        result = np.zeros(len(ts), dtype=np.int64)
        if len(sorted_ts) < 2:
            return result
        expected = self.expected_opens(sorted_ts[0].to_pydatetime(), sorted_ts[-1].to_pydatetime(), timeframe)
        # Position of each bar in the expected grid; a bar outside the session maps to the next expected open.
        position = expected.searchsorted(sorted_ts)
        counts = np.diff(position, prepend=position[0]) - 1
        counts[0] = 0
        result[order] = np.maximum(counts, 0)
        return result


def _bar_opens(start: datetime, end: datetime, timeframe: str) -> pd.DatetimeIndex:
    """Every bar open of ``timeframe`` in ``[start, end]``: epoch multiples, Mondays for 1w, month starts for 1M."""
    start = pd.Timestamp(start).tz_convert(UTC).to_pydatetime()
    first = bar_open(start, timeframe)
    if first < start:
        first = shift_bars(first, timeframe, 1)
    grid = bar_grid(timeframe)
    freq = "MS" if grid is None else pd.Timedelta(seconds=grid[1])
    return pd.date_range(first, pd.Timestamp(end).tz_convert(UTC), freq=freq)


def _runs(expected: pd.DatetimeIndex, missing: np.ndarray, tolerance: int) -> list[Gap]:
    gaps: list[Gap] = []
    start = None
    for i, flag in enumerate([*missing.tolist(), False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start > tolerance:
                gaps.append(Gap(expected[start].to_pydatetime(), expected[i - 1].to_pydatetime(), i - start))
            start = None
    return gaps


CALENDARS = {name: SessionCalendar(name) for name in ASSET_CLASSES}


def calendar_for(asset_class: str) -> SessionCalendar:
    """The default calendar of an asset class (``ValueError`` for an unknown one)."""
    try:
        return CALENDARS[asset_class]
    except KeyError:
        raise ValueError(f"unknown asset class {asset_class!r}; expected one of {ASSET_CLASSES}") from None


STOCK_CLASSES = frozenset({"equity", "stock", "stocks", "etf"})
FOREX_CLASSES = frozenset({"forex", "fx"})


def calendar_class_of(market: MarketSpec) -> str:
    """The session calendar (``crypto``, ``forex`` or ``stocks``) of a market, from its asset class as the trader
    sees it (``alphaloom.markets``: the venue's metadata in ``raw.markets``, or ``ALPHALOOM_ASSET_CLASSES`` for file
    sources), never from the spelling of its symbol (``BTC/USD`` on a crypto venue trades 24/7).

    Design decision: a market nobody classified (``unclassified``) or of a class with no session calendar here is
    judged by the 24/7 calendar, so every missing bar counts: a stale feed is never excused by a guessed session
    (a stock left unclassified reports its nights as gaps until it is configured, a loud and harmless error)."""
    klass = market.asset_class.lower()
    if klass in STOCK_CLASSES:
        return "stocks"
    if klass in FOREX_CLASSES:
        return "forex"
    return "crypto"


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    """Shorthand for a UTC datetime (handy in configuration and tests)."""
    return datetime(year, month, day, hour, tzinfo=UTC)
