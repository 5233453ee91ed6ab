"""The replay cursor's column-wise load (issue 14): its helpers give what the row-wise code they replace gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agents.deciding import entry_of, feature_values
from agents.replay_cursor import _columns_of, _keyed, _memoised, row_entries
from agents.snapshot import utc

BERLIN = ZoneInfo("Europe/Berlin")


def _times() -> list[datetime]:
    """Times as drivers give them: UTC, a fixed offset, a zone with daylight saving time (both instants of a local
    time the clocks go back over, in either order), naive ones; repeated, as the symbols of a window share them."""
    ambiguous = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
    times = [
        datetime(2026, 3, 1, 12, tzinfo=UTC),
        datetime(2026, 3, 1, 13, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 3, 1, 12, tzinfo=BERLIN),
        ambiguous,
        ambiguous.replace(fold=1),
        ambiguous.replace(fold=1),
        ambiguous,
        datetime(2026, 3, 1, 12),
        datetime(2026, 7, 1, 9, 15, tzinfo=BERLIN),
    ]
    return times + times[::-1]


def _same(a: Any, b: Any) -> bool:
    """Equal, of the same type, and for times the same time zone object and fold."""
    if type(a) is not type(b) or a != b:
        return False
    return not isinstance(a, datetime) or (a.tzinfo is b.tzinfo and a.fold == b.fold)


@pytest.mark.parametrize("convert", [_keyed, utc])
def test_times_converted_once_each_equal_those_converted_one_by_one(convert: Any) -> None:
    times = _times()
    seen: dict[datetime, datetime] = {}
    got = _memoised(convert, times, seen) + _memoised(convert, times, seen)
    want = [convert(t) for t in times] * 2
    assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (got, want)


def test_row_entries_equal_the_entry_of_each_rows_feature_values() -> None:
    closes: list[Any] = [1.5, None, float("nan"), float("inf"), -2.0, Decimal("3.25"), 7, Decimal("NaN"), 0.0]
    times = _times()
    rows = [{"close": closes[k % len(closes)], "ts": t} for k, t in enumerate(times)]
    got = row_entries([r["close"] for r in rows], [r["ts"] for r in rows], {})
    for entry, row in zip(got, rows, strict=True):
        want = entry_of(feature_values(row, ("close",)), utc(row["ts"]))
        assert (entry[0] is None) == (want[0] is None) and _same(entry[1], want[1]), (entry, want)
        if want[0] is not None:
            assert type(entry[0]) is float and (entry[0] == want[0] or (entry[0] != entry[0] and want[0] != want[0]))


def test_columns_of_value_tuples_equal_row_get() -> None:
    columns = ["a", "b", "c"]
    values = [(1, None, "x"), (2.5, Decimal(1), None)]
    rows = [dict(zip(columns, v, strict=True)) for v in values]
    want = {name: [row.get(name) for row in rows] for name in ("c", "a", "missing")}
    assert _columns_of(columns, values, ("c", "a", "missing")) == want
