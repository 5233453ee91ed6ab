"""The LLM risk reviewer's stage, after the numeric risk gate (DESIGN §7: between ``decide_snapshot`` and
``record_drafts``): ``review_drafts`` asks the reviewer (I/O) about each draft's approved orders and
``apply_review`` (pure) applies its answer as one more risk verdict, ``llm_risk_review``, on each approved order.

What callers can rely on: the review can only shrink or drop. It adds a verdict with ``adjusted_quantity`` at most
the approved quantity (``RiskReview.scale`` is at most 1) or a denial, and ``adjusted_intent`` takes the smallest of
every verdict's quantity, so an order is never enlarged and a denied one is never revived. Orders that only reduce
a held position (a sell of at most the long quantity) are not reviewed: vetoing an exit would add risk. A skipped
reviewer (budget, timeout, invalid answer) leaves the numeric gate's verdicts as they were, recorded as an approving
``llm_risk_review`` verdict that says why. Later symbols' portfolio checks saw the orders before review: a review
only shrinks, so they erred on the cautious side."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from sqlalchemy import Connection

from agents.deciding import DecisionDraft, analyst_inputs
from agents.llm.team_schema import RiskReview
from agents.params import DecisionParams
from agents.risk import RiskVerdict, adjusted_intent, all_approved
from agents.snapshot import Snapshot
from alphaloom.domain import OrderIntent, Side

CHECK = "llm_risk_review"


class RiskReviewer(Protocol):
    def review(self, conn: Connection, **kwargs: Any) -> tuple[RiskReview | None, dict[str, Any]]: ...


def _reduces_position(intent: OrderIntent, position_quantity: Decimal) -> bool:
    return intent.side is Side.SELL and position_quantity > 0 and intent.quantity <= position_quantity


def reviewable(draft: DecisionDraft) -> list[tuple[OrderIntent, tuple[RiskVerdict, ...]]]:
    """The draft's orders the numeric gate approved and that open or add risk."""
    held = Decimal(str(draft.row.inputs.get("position", {}).get("quantity", "0")))
    return [(i, v) for i, v in draft.verdicts if adjusted_intent(i, list(v)) is not None
            and not _reduces_position(i, held)]  # fmt: skip


def _shrunk(quantity: Decimal, scale: float) -> Decimal:
    exponent = quantity.as_tuple().exponent
    step = Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
    return (quantity * Decimal(str(scale))).quantize(step, rounding=ROUND_DOWN)


def review_verdict(intent: OrderIntent, approved: OrderIntent, review: RiskReview | None, info: Mapping[str, Any]
                   ) -> RiskVerdict:  # fmt: skip
    """The ``llm_risk_review`` verdict for one approved order. Pure."""
    numbers = {k: str(v) for k, v in info.items() if v not in (None, "")}
    if review is None:
        return RiskVerdict(CHECK, True, f"LLM risk review skipped ({info.get('status')}): the numeric gate's "
                           "verdicts stand", numbers)  # fmt: skip
    numbers |= {"decision": review.decision, "scale": str(review.scale)}
    if review.decision == "veto" or review.scale <= 0:
        return RiskVerdict(CHECK, False, f"vetoed by the LLM risk reviewer: {review.rationale}", numbers)
    if review.decision == "approve" or review.scale >= 1:
        return RiskVerdict(CHECK, True, f"kept by the LLM risk reviewer: {review.rationale}", numbers)
    cap = _shrunk(approved.quantity, review.scale)
    if cap <= 0:
        return RiskVerdict(CHECK, False, f"reduced to nothing by the LLM risk reviewer: {review.rationale}", numbers)
    return RiskVerdict(CHECK, True, f"reduced by the LLM risk reviewer to {cap}: {review.rationale}",
                       numbers | {"approved_quantity": str(approved.quantity)}, adjusted_quantity=cap)  # fmt: skip


def apply_review(draft: DecisionDraft, review: RiskReview | None, info: Mapping[str, Any]) -> DecisionDraft:
    """``draft`` with the reviewer's verdict added to each reviewable order and the approved intents recomputed.
    Pure; see the module docstring for what it can never do."""
    targets = {id(intent) for intent, _ in reviewable(draft)}
    if not targets:
        return draft
    verdicts = []
    for intent, checks in draft.verdicts:
        approved = adjusted_intent(intent, list(checks))
        if id(intent) in targets and approved is not None:
            checks = (*checks, review_verdict(intent, approved, review, info))
        verdicts.append((intent, checks))
    intents = tuple(a for i, v in verdicts if (a := adjusted_intent(i, list(v))) is not None)
    inputs = dict(draft.row.inputs)
    inputs["intents"] = [{**recorded, "approved": all_approved(list(v))}
                         for recorded, (_, v) in zip(inputs.get("intents", []), verdicts, strict=False)]  # fmt: skip
    inputs["llm_risk_review"] = {**dict(info), **({} if review is None else review.model_dump(mode="json"))}
    return dataclasses.replace(draft, decision=dataclasses.replace(draft.decision, intents=intents),
                               row=dataclasses.replace(draft.row, inputs=inputs), verdicts=tuple(verdicts))  # fmt: skip


def review_drafts(
    conn: Connection,
    snapshot: Snapshot,
    drafts: Sequence[DecisionDraft],
    params: DecisionParams,
    reviewer: object | None,
    *,
    run_id: str,
) -> list[DecisionDraft]:
    """Each draft after the LLM risk reviewer (when ``reviewer`` has a ``review`` method and the draft has orders to
    review); drafts pass unchanged otherwise."""
    review = getattr(reviewer, "review", None)
    if review is None:
        return list(drafts)
    reviewed = []
    for draft in drafts:
        orders = reviewable(draft)
        if not orders:
            reviewed.append(draft)
            continue
        symbol = draft.decision.symbol
        opinion = next((o for o in draft.decision.opinions if o.agent == "llm"), None)
        listed = [{"side": i.side.value, "quantity": str(i.quantity), "reference_price": str(i.reference_price),
                   "risk_checks": [{"check": v.check_name, "approved": v.approved, "reason": v.reason}
                                   for v in checks]} for i, checks in orders]  # fmt: skip
        answer, info = review(conn, run_id=run_id, snapshot=snapshot, inputs=analyst_inputs(snapshot, symbol, params),
                              opinion=opinion, orders=listed)  # fmt: skip
        reviewed.append(apply_review(draft, answer, info))
    return reviewed
