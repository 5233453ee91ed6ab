"""How a verdict is named in ``audit.risk_checks`` (the rows themselves are written with the decision's other audit
rows, in one statement, by ``agents.recording``)."""

from __future__ import annotations

from agents.risk.verdict import RiskVerdict
from alphaloom.domain import OrderIntent


def check_name(verdict: RiskVerdict, intent: OrderIntent) -> str:
    """The recorded name: the rule's, suffixed ``[leg n]`` for legs after the first."""
    return verdict.check_name if intent.leg == 0 else f"{verdict.check_name}[leg {intent.leg}]"
