"""The verdict every risk rule returns, and how verdicts combine. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from alphaloom.domain import OrderIntent


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """One rule's answer. ``adjusted_quantity`` is set when the rule approves only a smaller order (shrink)."""

    check_name: str
    approved: bool
    reason: str
    numbers: dict[str, str] = field(default_factory=dict)
    adjusted_quantity: Decimal | None = None


def all_approved(verdicts: Sequence[RiskVerdict]) -> bool:
    return all(v.approved for v in verdicts)


def adjusted_intent(intent: OrderIntent, verdicts: Sequence[RiskVerdict]) -> OrderIntent | None:
    """The intent every verdict allows: None when any denies; else shrunk to the smallest ``adjusted_quantity``."""
    if not all_approved(verdicts):
        return None
    caps = [v.adjusted_quantity for v in verdicts if v.adjusted_quantity is not None]
    quantity = min([intent.quantity, *caps])
    if quantity <= 0:
        return None
    return intent if quantity == intent.quantity else dataclasses.replace(intent, quantity=quantity)
