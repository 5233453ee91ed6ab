"""P&L attribution by agent and strategy, checked against hand-worked shares."""

from __future__ import annotations

import pandas as pd
import pytest

from alphaloom.backtest.attribution import attribute, vote_shares
from alphaloom.backtest.equity_curve import closed_trades

TECHNICAL = {"agent": "technical", "action": "buy", "confidence": 0.6, "skipped": False,
             "details": {"indicator_score": 0.5, "signals": {"momentum": 0.3, "mean_reversion": -0.2}}}  # fmt: skip
NEWS = {"agent": "news", "action": "buy", "confidence": 0.4, "skipped": False,
        "details": {"score": 0.4, "event": None}}  # fmt: skip
LLM_SKIPPED = {"agent": "llm", "action": "hold", "confidence": 0.0, "skipped": True, "details": {}}


def test_shares_follow_weight_times_confidence_then_the_parts_that_pushed_that_way() -> None:
    agents, strategies = vote_shares([TECHNICAL, NEWS, LLM_SKIPPED], {"technical": 1.0, "news": 0.5, "llm": 0.5})
    # votes: technical 1.0 x 0.6 = 0.6, news 0.5 x 0.4 = 0.2 -> 3/4 and 1/4; the skipped LLM gets nothing
    assert agents == pytest.approx({"technical": 0.75, "news": 0.25})
    # technical's 3/4 split over indicators 0.5 and momentum 0.3 (mean reversion pushed the other way)
    assert strategies == pytest.approx({"indicators": 0.75 * 0.5 / 0.8, "momentum": 0.75 * 0.3 / 0.8,
                                        "news_sentiment": 0.25})  # fmt: skip


def test_a_dissenting_agent_gets_nothing_and_a_rule_run_credits_the_rule() -> None:
    selling_news = NEWS | {"action": "sell", "details": {"score": -0.4}}
    agents, _ = vote_shares([TECHNICAL, selling_news], {})
    assert agents == {"technical": 1.0}
    rule = {"agent": "technical", "action": "buy", "confidence": 1.0, "details": {"strategy": "sma_cross"}}
    assert vote_shares([rule], {"technical": 0.3}) == ({"technical": 1.0}, {"sma_cross": 1.0})
    assert vote_shares([LLM_SKIPPED], {}) == ({"unattributed": 1.0}, {"unattributed": 1.0})


def test_trade_pnl_is_credited_to_its_entry_decision_and_sums_to_the_total() -> None:
    t = pd.date_range("2025-01-01", periods=4, freq="h", tz="UTC")
    fills = pd.DataFrame({"ts": [t[0], t[1], t[2], t[3]], "symbol": ["X", "X", "Y", "Y"],
                          "side": ["buy", "sell", "buy", "sell"], "quantity": [1.0, 1.0, 2.0, 2.0],
                          "price": [100.0, 110.0, 50.0, 45.0], "fee": [0.0] * 4,
                          "decision_id": ["d1", "d2", "d3", "d4"]})  # fmt: skip
    trades = closed_trades(fills)
    assert trades["entry_decision"].tolist() == ["d1", "d3"] and trades["pnl"].tolist() == [10.0, -10.0]
    by_agent = attribute(trades, {"d1": {"technical": 0.75, "news": 0.25}, "d3": {"technical": 1.0}})
    assert by_agent.to_dict() == pytest.approx({"technical": 7.5 - 10.0, "news": 2.5})
    assert attribute(trades, {}).to_dict() == {"unattributed": 0.0}
    assert by_agent.sum() == pytest.approx(trades["pnl"].sum())
