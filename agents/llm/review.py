"""The LLM risk reviewer's stage, after the numeric risk gate (ARCHITECTURE §5: between ``decide_snapshot`` and
``record_drafts``): ``review_drafts`` asks the reviewer (I/O) about each draft's approved orders and
``apply_review`` (pure) applies its answer as one more risk verdict, ``llm_risk_review``, on each approved order.

What callers can rely on: the review can only shrink or drop. It adds a verdict with ``adjusted_quantity`` at most
the approved quantity (``RiskReview.scale`` is at most 1) or a denial, and ``adjusted_intent`` takes the smallest of
every verdict's quantity, so an order is never enlarged and a denied one is never revived. A reduction is rounded
down to the market's quantity step (the snapshot's ``MarketSpec``, the step the trader sized the order with); one
that falls below the market's minimum amount is a veto (``outcome`` in the verdict's numbers and in the decision's
``llm_risk_review`` input says what the answer became: approve, reduce, veto or skipped). Orders that only reduce
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
from alphaloom.domain import OrderIntent, Side, Symbol
from alphaloom.markets import MarketSpec

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


def lot_step(quantity: Decimal, market: MarketSpec | None) -> Decimal:
    """The step a shrunk ``quantity`` is rounded down to: the market's quantity step (as the trader sized it), else,
    for a market not known, the order's own last decimal place."""
    if market is not None:
        return market.quantity_step
    exponent = quantity.as_tuple().exponent
    return Decimal(1).scaleb(min(exponent, 0) if isinstance(exponent, int) else 0)


def shrunk(quantity: Decimal, scale: float, step: Decimal) -> Decimal:
    """``quantity x scale`` rounded down to a multiple of ``step`` (never more than asked). Pure."""
    return ((quantity * Decimal(str(scale))) / step).to_integral_value(rounding=ROUND_DOWN) * step


def review_verdict(intent: OrderIntent, approved: OrderIntent, review: RiskReview | None, info: Mapping[str, Any],
                   market: MarketSpec | None = None) -> RiskVerdict:  # fmt: skip
    """The ``llm_risk_review`` verdict for one approved order; a reduction is rounded down to ``market``'s lot and,
    below its minimum amount, is a veto (``outcome`` in the numbers says which it became). Pure."""
    numbers = {k: str(v) for k, v in info.items() if v not in (None, "")}
    if review is None:
        return RiskVerdict(CHECK, True, f"LLM risk review skipped ({info.get('status')}): the numeric gate's "
                           "verdicts stand", numbers | {"outcome": "skipped"})  # fmt: skip
    numbers |= {"decision": review.decision, "scale": str(review.scale)}
    if review.decision == "veto" or review.scale <= 0:
        return RiskVerdict(CHECK, False, f"vetoed by the LLM risk reviewer: {review.rationale}",
                           numbers | {"outcome": "veto"})  # fmt: skip
    if review.decision == "approve" or review.scale >= 1:
        return RiskVerdict(CHECK, True, f"kept by the LLM risk reviewer: {review.rationale}",
                           numbers | {"outcome": "approve"})  # fmt: skip
    step = lot_step(approved.quantity, market)
    cap = shrunk(approved.quantity, review.scale, step)
    numbers |= {"approved_quantity": str(approved.quantity), "shrunk_quantity": str(cap), "quantity_step": str(step)}
    minimum = market.min_quantity if market is not None else None
    if cap <= 0:
        return RiskVerdict(CHECK, False, f"reduced to nothing by the LLM risk reviewer: {review.rationale}",
                           numbers | {"outcome": "veto"})  # fmt: skip
    if minimum is not None and cap < minimum:
        return RiskVerdict(CHECK, False, f"vetoed: the LLM risk reviewer's reduction to {cap} is below the market's "
                           f"minimum amount {minimum}: {review.rationale}",
                           numbers | {"outcome": "veto", "min_quantity": str(minimum)})  # fmt: skip
    return RiskVerdict(CHECK, True, f"reduced by the LLM risk reviewer to {cap}: {review.rationale}",
                       numbers | {"outcome": "reduce"}, adjusted_quantity=cap)  # fmt: skip


def apply_review(draft: DecisionDraft, review: RiskReview | None, info: Mapping[str, Any],
                 markets: Mapping[Symbol, MarketSpec] | None = None) -> DecisionDraft:  # fmt: skip
    """``draft`` with the reviewer's verdict added to each reviewable order and the approved intents recomputed;
    ``markets`` (symbol -> ``MarketSpec``, the snapshot's) give the lot a reduction is rounded to. Pure; see the
    module docstring for what it can never do."""
    targets = {id(intent) for intent, _ in reviewable(draft)}
    if not targets:
        return draft
    markets = markets or {}
    verdicts = []
    outcomes = []
    for intent, checks in draft.verdicts:
        approved = adjusted_intent(intent, list(checks))
        if id(intent) in targets and approved is not None:
            verdict = review_verdict(intent, approved, review, info, markets.get(intent.symbol))
            checks = (*checks, verdict)
            outcomes.append(verdict.numbers["outcome"])
        verdicts.append((intent, checks))
    intents = tuple(a for i, v in verdicts if (a := adjusted_intent(i, list(v))) is not None)
    inputs = dict(draft.row.inputs)
    inputs["intents"] = [{**recorded, "approved": all_approved(list(v))}
                         for recorded, (_, v) in zip(inputs.get("intents", []), verdicts, strict=False)]  # fmt: skip
    inputs["llm_risk_review"] = {**dict(info), **({} if review is None else review.model_dump(mode="json")),
                                 "outcome": outcomes[0] if len(set(outcomes)) == 1 else outcomes}  # fmt: skip
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
        markets = {i.symbol: snapshot.account_view.portfolio.market(i.symbol) for i, _ in orders}
        reviewed.append(apply_review(draft, answer, info, markets))
    return reviewed
