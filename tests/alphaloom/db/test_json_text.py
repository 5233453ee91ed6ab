"""``alphaloom.db.json_text.jsonb_text`` writes the JSON values ``json.dumps(value, default=str)`` writes."""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest

from alphaloom.db.json_text import jsonb_text


class _Side(enum.StrEnum):
    BUY = "buy"


@dataclasses.dataclass(frozen=True)
class _Point:
    x: int


VALUES = [
    {"price": Decimal("101.250"), "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "day": date(2026, 1, 2)},
    {"close": np.float64(0.125), "n": np.int64(7), "flag": np.bool_(True), "ratio": 1e-05, "big": 1e16},
    {1: "one", 2.5: "two and a half", _Side.BUY: [1, 2, (3, 4)], "nested": {"set": {1}, "none": None}},
    {"side": _Side.BUY, "point": _Point(3), "text": 'café \u2013 "quoted"', "huge": 2**70},
    [True, False, None, "", 0, -1.5],
]


@pytest.mark.parametrize("value", VALUES)
def test_the_json_values_are_those_json_dumps_writes(value) -> None:
    assert json.loads(jsonb_text(value)) == json.loads(json.dumps(value, default=str))


def test_a_nan_is_written_as_null_which_jsonb_accepts() -> None:
    assert json.loads(jsonb_text({"x": float("nan")})) == {"x": None}
