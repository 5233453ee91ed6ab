"""Drawdown alerts: when the risk manager's drawdown verdicts for an account change level for the worse, say so once.

The drawdown controller's verdicts are ``audit.risk_checks`` rows named ``drawdown`` whose numbers carry ``level``
(``normal``, ``reduce`` or ``halt``: only buy intents are checked against it). After each decision step the flow asks
``drawdown_transition`` whether that step's rows moved the account's level compared with the account's previous
recorded level; an alert follows only on a transition, never on every step or run that stays at the same level:

- any level -> ``halt``: ``drawdown_halt`` (new buys are refused until equity recovers);
- ``normal`` (or no history) -> ``reduce``: ``drawdown_reduce``, a warning (new buys are scaled down);
- anything else (staying, recovering, halt -> reduce): no alert.

Only rows written by the run itself count, so a rerun that reuses its earlier decisions alerts nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from alphaloom.domain import AccountId
from alphaloom.records.decisions import drawdown_step


def transition_alert_kind(previous: str | None, level: str) -> str | None:
    """The alert kind for a move from ``previous`` (None: no history) to ``level``, or None when none is due."""
    if level == previous:
        return None
    if level == "halt":
        return "drawdown_halt"
    if level == "reduce" and previous in (None, "normal"):
        return "drawdown_reduce"
    return None


@dataclass(frozen=True)
class DrawdownTransition:
    """A level change of ``account``'s drawdown verdicts at ``as_of``, with the verdict that showed it."""

    kind: str
    account: str
    previous: str | None
    level: str
    as_of: datetime
    symbol: str | None
    decision_id: str | None
    verdict: str
    numbers: dict[str, Any]

    @property
    def reason(self) -> str:
        n = self.numbers
        limit = f"halt at {n.get('halt_pct')}%" if self.level == "halt" else f"reduce at {n.get('reduce_pct')}%"
        return (
            f"account {self.account}: {self.verdict} (equity {n.get('equity')}, peak {n.get('peak_equity')}, {limit};"
            f" was {self.previous or 'unrecorded'})"
        )

    def details(self, run_id: str) -> dict[str, Any]:
        return {"account": self.account, "run_id": run_id, "as_of": self.as_of.isoformat(), "symbol": self.symbol,
                "decision_id": self.decision_id, "previous_level": self.previous, **self.numbers}  # fmt: skip


def drawdown_transition(
    conn: Connection, account: AccountId, run_id: str, as_of: datetime
) -> DrawdownTransition | None:
    """The transition shown by the drawdown verdicts ``run_id`` recorded for ``account`` at step ``as_of``, if any.

    The step's level is its latest verdict's; the previous level is that of the account's latest verdict recorded
    before the step's first one."""
    row = drawdown_step(conn, account, run_id, as_of)
    if row is None:
        return None
    level = row.numbers["level"]
    kind = transition_alert_kind(row.previous, level)
    if kind is None:
        return None
    return DrawdownTransition(
        kind, account, row.previous, level, as_of, row.symbol, row.decision_id, row.reason, dict(row.numbers)
    )
