"""The audit rows' builders that skip the frozen dataclasses' ``__init__`` (``agents.recording``): equal to the
classes' own, field for field, whatever the values."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from agents.recording import AgentOutputRow, DecisionRow, new_decision_row, new_output_row

T0 = datetime(2024, 8, 1, 12, tzinfo=UTC)

DECISION_ROWS: list[tuple[Any, ...]] = [
    ("d1", "r1", "acct", "A/USDT", "1h", T0, "buy", 0.7, "v1", {"close": 100.0}, "inv-1", "sha", {"k": 1}),
    ("d2", "r2", "acct", "B/USDT", "4h", T0, "hold", 0.0, "v2", {}, None, None, None),
    ("d3", "r3", "", "C/USDT", "1d", T0, "sell", -1.0, "", {"nested": {"x": [1, None]}}, "", "", {}),
]
OUTPUT_ROWS: list[tuple[Any, ...]] = [
    (
        "technical",
        {"action": "buy", "details": {"score": 0.5}},
        None,
        None,
        {"features": {"ts": "t"}},
        False,
        None,
        None,
    ),
    ("llm", {"action": "hold"}, "gpt", "h1", {}, True, 12, 340),
    ("news", {}, "lexicon-lm", None, {"news_ids": ["n1"], "scorer": "s"}, False, 0, 0),
]


@pytest.mark.parametrize("values", DECISION_ROWS)
def test_a_decision_row_built_without_init_equals_the_classs(values: tuple[Any, ...]) -> None:
    built, expected = new_decision_row(*values), DecisionRow(*values)
    assert type(built) is DecisionRow and built == expected and repr(built) == repr(expected)
    assert vars(built) == vars(expected), "every field (a new one fails until the builder sets it)"
    assert [getattr(built, f.name) for f in dataclasses.fields(DecisionRow)] == list(values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.score = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("values", OUTPUT_ROWS)
def test_an_output_row_built_without_init_equals_the_classs(values: tuple[Any, ...]) -> None:
    built, expected = new_output_row(*values), AgentOutputRow(*values)
    assert type(built) is AgentOutputRow and built == expected and repr(built) == repr(expected)
    assert vars(built) == vars(expected), "every field (a new one fails until the builder sets it)"
    assert [getattr(built, f.name) for f in dataclasses.fields(AgentOutputRow)] == list(values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.agent = "x"  # type: ignore[misc]
