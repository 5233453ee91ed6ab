"""Helpers shared by the LLM team's test modules (``test_llm_team``, ``test_llm_team_backtest``): the answers each
role gives, as JSON text for the stand-in (``llm_standin``) to send, and the clean-up of a test's LLM spend. A
support module, so that no test module imports another."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text


def case(argument: str = "momentum and positive news", confidence: float = 0.6) -> str:
    """A researcher's (bull or bear) answer."""
    return json.dumps({"argument": argument, "key_points": ["ema_10 above ema_50"], "confidence": confidence})


def verdict(action: str = "buy", confidence: float = 0.7) -> str:
    """The research manager's answer."""
    return json.dumps({"action": action, "confidence": confidence, "horizon_bars": 6, "rationale": "rsi_14 60",
                       "key_risks": ["reversal"], "cited_values": [{"name": "rsi_14", "value": 60.0}]})  # fmt: skip


def review(decision: str = "approve", scale: float = 1.0, rationale: str = "volatility is moderate") -> str:
    """The risk reviewer's answer."""
    return json.dumps({"decision": decision, "scale": scale, "rationale": rationale})


def compact(action: str = "buy", scale: float = 1.0, decision: str = "approve") -> str:
    """The compact mode's one answer (both cases, the verdict and the risk review)."""
    return json.dumps({"bull_case": "trend up", "bear_case": "overbought soon", "verdict": json.loads(verdict(action)),
                       "risk": json.loads(review(decision, scale))})  # fmt: skip


def forget_spend(engine: Engine, run_prefix: str) -> None:
    """Drop the ledger rows of the test's own runs: every test of the session shares one database and so today's
    daily LLM budget, which a later module's endpoint calls must still find room in."""
    with engine.begin() as conn:
        conn.execute(text("delete from audit.llm_usage where run_id like :p"), {"p": f"{run_prefix}%"})
