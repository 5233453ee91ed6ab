"""Memory, pure parts: learned weights from outcomes and nearest past situations (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.memory import Memory, MemoryParams, Outcome, agent_weights, nearest_situations, situation_vector

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BASE = {"technical": 1.0, "news": 0.5, "llm": 0.5}


def _outcomes(agent: str, hits: list[bool | None]) -> list[Outcome]:
    return [Outcome(agent, T0 + timedelta(hours=i), hit) for i, hit in enumerate(hits)]


def test_no_outcomes_keep_the_base_weights() -> None:
    weights = agent_weights(BASE, [])
    assert {a: w.weight for a, w in weights.items()} == BASE
    assert all(w.hit_rate is None and w.scored == 0 for w in weights.values())


def test_hits_raise_and_misses_lower_a_weight_by_the_ewm_hit_rate() -> None:
    params = MemoryParams(halflife=1.0)  # alpha = 0.5
    weights = agent_weights(BASE, _outcomes("technical", [True, True]) + _outcomes("news", [False]), params)
    # technical: 0.5 -> 0.75 -> 0.875; weight 1.0 * 0.875 / 0.5 = 1.75
    assert weights["technical"].hit_rate == pytest.approx(0.875)
    assert weights["technical"].weight == pytest.approx(1.75) and weights["technical"].scored == 2
    # news: 0.5 -> 0.25; weight 0.5 * 0.25 / 0.5 = 0.25
    assert weights["news"].weight == pytest.approx(0.25)
    assert weights["llm"].weight == 0.5


def test_holds_do_not_count_and_weights_are_clamped() -> None:
    params = MemoryParams(halflife=1.0, min_factor=0.25, max_factor=2.0)
    weights = agent_weights(BASE, _outcomes("technical", [None, None]) + _outcomes("news", [False] * 20), params)
    assert weights["technical"].scored == 0 and weights["technical"].weight == 1.0
    assert weights["news"].weight == pytest.approx(0.5 * 0.25)


def test_recent_outcomes_count_more_than_old_ones() -> None:
    old_good = agent_weights(BASE, _outcomes("technical", [True] * 5 + [False] * 5))
    old_bad = agent_weights(BASE, _outcomes("technical", [False] * 5 + [True] * 5))
    assert old_bad["technical"].weight > old_good["technical"].weight


def _features(trend: float, rsi: float) -> dict[str, float]:
    return {"close": 100.0, "ema_10": 100.0 * (1 + trend), "ema_50": 100.0, "macd_hist": trend * 10, "rsi_14": rsi,
            "bb_pct_b_20": 0.5, "realized_vol_20": 0.01, "ret_1": trend / 10}  # fmt: skip


def test_nearest_situations_rank_by_normalised_distance() -> None:
    past = []
    for i, (trend, rsi) in enumerate([(0.02, 70.0), (-0.02, 30.0), (0.019, 68.0), (0.0, 50.0)]):
        vector = situation_vector(_features(trend, rsi))
        assert vector is not None
        past.append((vector, Memory(f"d{i}", "A", T0 + timedelta(hours=i), "buy", 0.01 * i, 4, 0.0, vector)))
    present = situation_vector(_features(0.02, 69.0))
    assert present is not None
    nearest = nearest_situations(present, past, 2)
    assert [m.decision_id for m in nearest] == ["d0", "d2"]
    assert nearest[0].distance <= nearest[1].distance
    assert nearest_situations(present, [], 3) == []


def test_warm_up_rows_have_no_situation() -> None:
    assert situation_vector({**_features(0.01, 50.0), "rsi_14": None}) is None
    assert situation_vector({**_features(0.01, 50.0), "ema_50": float("nan")}) is None
