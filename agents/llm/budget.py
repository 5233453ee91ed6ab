"""The LLM usage ledger (``audit.llm_usage``) and the budget caps it enforces: tokens and money (USD, priced per model
by ``LlmSettings.price``) per decision, per decision run and per UTC day. Every call, cache hit and skip is one row.
A run or day cap is reached when the ledger's total reaches it (so one call can overshoot it by at most its own size,
and the next is skipped with a ``budget_exceeded`` row). A decision cap is tighter: a call is made only when its
reservation (its largest likely size) fits in what the decision (one symbol at one ``as_of`` of a run, every role
together) has left, so a decision's spend stays within its cap.

Spend is money whatever happens to the decision that asked for it, so a call's row never lives in the decision's
transaction (which a dry run rolls back, and which concurrent fan-out tasks cannot see in each other):
``reserve`` checks the caps and commits a ``reserved`` row of the call's estimated size (prompt characters / 4 plus
``llm_max_tokens``) in its own transaction, serialised by an advisory lock, before the call; ``settle`` commits the
call's real status, tokens and cost into that row after it. Two concurrent reservations therefore cannot both pass
when the caps leave room for only one; a process that dies between the two leaves the estimate counted (the
cautious reading: the endpoint may have billed it). A cap reached is recorded (``budget_exceeded``) the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from sqlalchemy import Connection, Engine

from alphaloom.errors import ConfigError
from alphaloom.records import llm_ledger
from alphaloom.settings import LlmPrice, Settings


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


def price_of(model: str, settings: Settings) -> LlmPrice:
    """``model``'s price per 1M tokens (``LlmSettings.price``); ``ConfigError`` naming the setting when it has none
    (an unpriced model's spend, and so its budget, would be unknown)."""
    price = settings.llm.price(model)
    if price is None:
        raise ConfigError(
            f"no price configured for LLM model {model!r}; add it to ALPHALOOM_LLM_PRICES (JSON, USD per 1M tokens, "
            f'e.g. {{"{model}": {{"input": 0.15, "output": 0.6}}}}; 0 and 0 for a free local model)'
        )
    return price


def cost_of(usage: Usage, settings: Settings, model: str) -> Decimal:
    """Tokens x ``model``'s price per 1M tokens (prompt and completion priced separately), USD, exact."""
    price = price_of(model, settings)
    return (Decimal(usage.prompt_tokens) * price.input + Decimal(usage.completion_tokens) * price.output) / 1_000_000


@dataclass(frozen=True, slots=True)
class Spent:
    tokens: int
    cost: Decimal


def spent(conn: Connection, run_id: str) -> tuple[Spent, Spent]:
    """(this run's spend, today's spend in UTC) from the ledger, USD."""
    day_total = llm_ledger.day_usage(conn)
    run_total = llm_ledger.run_usage(conn, run_id)
    return Spent(*run_total), Spent(*day_total)


def decision_spent(conn: Connection, run_id: str, symbol: str | None, as_of: datetime | None) -> Spent:
    """What one decision (``symbol`` at ``as_of`` in ``run_id``, every role together) has spent or reserved."""
    return Spent(*llm_ledger.decision_usage(conn, run_id, symbol, as_of))


def budget_exceeded(
    run: Spent, day: Spent, settings: Settings, *, decision: Spent | None = None, size: Spent | None = None
) -> str | None:
    """The cap reached, in words, or None while every cap has room. With ``decision`` (what the decision has spent)
    and ``size`` (the call's reservation), the per-decision caps refuse a call that would not fit. Pure."""
    if decision is not None and size is not None:
        fits = (
            ("decision token", decision.tokens, size.tokens, settings.llm.decision_token_budget),
            ("decision cost", decision.cost, size.cost, settings.llm.decision_cost_budget),
        )
        for name, used, more, cap in fits:
            if used + more > cap:
                return f"{name} budget would be passed: {used} spent + {more} reserved > {cap}"
    caps = (
        ("run token", run.tokens, settings.llm.run_token_budget),
        ("run cost", run.cost, settings.llm.run_cost_budget),
        ("daily token", day.tokens, settings.llm.daily_token_budget),
        ("daily cost", day.cost, settings.llm.daily_cost_budget),
    )
    for name, used, cap in caps:
        if used >= cap:
            return f"{name} budget reached: {used} of {cap}"
    return None


def record_usage(
    conn: Connection,
    *,
    run_id: str,
    symbol: str | None,
    as_of: datetime | None,
    model: str,
    prompt_hash: str | None,
    status: str,
    usage: Usage = Usage(),
    cost: Decimal = Decimal(0),
    latency_ms: int | None = None,
    detail: str | None = None,
) -> int:
    """One ledger row; returns its id."""
    return llm_ledger.insert_usage(
        conn, run_id=run_id, symbol=symbol, as_of=as_of, model=model, prompt_hash=prompt_hash, status=status,
        prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, total_tokens=usage.total_tokens,
        cost=cost, latency_ms=latency_ms, detail=detail,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reservation:
    """``usage_id``: the committed ``reserved`` row, None when a cap was reached (``refused`` says which)."""

    usage_id: int | None
    refused: str | None = None


class LedgerKey(TypedDict):
    """What every ledger row of one call carries: the keyword arguments ``record_usage`` and ``reserve`` share."""

    run_id: str
    symbol: str | None
    as_of: datetime | None
    model: str
    prompt_hash: str | None


def estimate(prompt_chars: int, settings: Settings) -> Usage:
    """A call's size before it is made: about 4 characters a prompt token, and the completion's maximum."""
    return Usage(-(-prompt_chars // 4), settings.llm.max_tokens)


def reserve(
    engine: Engine, *, run_id: str, symbol: str | None, as_of: datetime | None, model: str, prompt_hash: str | None,
    size: Usage, settings: Settings, role: str | None = None,
) -> Reservation:  # fmt: skip
    """Check the caps against the committed ledger and commit a ``reserved`` row of ``size`` (see the module
    docstring), or a ``budget_exceeded`` row when a cap is reached (its detail names ``role`` when given: the role
    skipped)."""
    ledger: LedgerKey = {"run_id": run_id, "symbol": symbol, "as_of": as_of, "model": model, "prompt_hash": prompt_hash}
    reserved = Spent(size.total_tokens, cost_of(size, settings, model))
    with engine.begin() as conn:
        llm_ledger.lock_budget(conn)
        run_spent, day_spent = spent(conn, run_id)
        reached = budget_exceeded(run_spent, day_spent, settings, size=reserved,
                                  decision=decision_spent(conn, run_id, symbol, as_of))  # fmt: skip
        if reached is not None:
            why = reached if role is None else f"{role} skipped: {reached}"
            record_usage(conn, **ledger, status="budget_exceeded", detail=why)
            return Reservation(None, reached)
        usage_id = record_usage(conn, **ledger, status="reserved", usage=size, cost=reserved.cost)
    return Reservation(usage_id)


def settle(
    engine: Engine, usage_id: int, *, status: str, usage: Usage, cost: Decimal, latency_ms: int | None,
    detail: str | None,
) -> None:  # fmt: skip
    """Replace a reservation by what the call really was, committed on its own."""
    with engine.begin() as conn:
        llm_ledger.update_usage(
            conn, usage_id, status=status, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens, cost=cost, latency_ms=latency_ms, detail=detail,
        )  # fmt: skip
