"""The LLM usage ledger (``audit.llm_usage``) and the budget caps it enforces: tokens and money per decision run and
per UTC day. Every call, cache hit and skip is one row; a cap is reached when the ledger's total reaches it (so one
call can overshoot a cap by at most its own size, and the next is skipped with a ``budget_exceeded`` row).

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

from sqlalchemy import Connection, Engine, text

from alphaloom.settings import Settings


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


def cost_of(usage: Usage, settings: Settings) -> Decimal:
    """Tokens x the configured price per 1k tokens (prompt and completion priced separately), exact."""
    return (
        Decimal(usage.prompt_tokens) * settings.llm_price_per_1k_prompt
        + Decimal(usage.completion_tokens) * settings.llm_price_per_1k_completion
    ) / 1000


@dataclass(frozen=True, slots=True)
class Spent:
    tokens: int
    cost: Decimal


def spent(conn: Connection, run_id: str) -> tuple[Spent, Spent]:
    """(this run's spend, today's spend in UTC) from the ledger."""
    day_total = conn.execute(
        text(
            """select coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0) from audit.llm_usage
               where created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc'"""
        )
    ).one()
    run_total = conn.execute(
        text("select coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0) from audit.llm_usage where run_id = :r"),
        {"r": run_id},
    ).one()
    return Spent(int(run_total[0]), Decimal(run_total[1])), Spent(int(day_total[0]), Decimal(day_total[1]))


def budget_exceeded(run: Spent, day: Spent, settings: Settings) -> str | None:
    """The cap reached, in words, or None while every cap has room. Pure."""
    caps = (
        ("run token", run.tokens, settings.llm_run_token_budget),
        ("run cost", run.cost, settings.llm_run_cost_budget),
        ("daily token", day.tokens, settings.llm_daily_token_budget),
        ("daily cost", day.cost, settings.llm_daily_cost_budget),
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
    return conn.execute(
        text(
            """insert into audit.llm_usage (run_id, symbol, as_of, model, prompt_hash, status, prompt_tokens,
                                            completion_tokens, total_tokens, cost, latency_ms, detail)
               values (:run_id, :symbol, :as_of, :model, :prompt_hash, :status, :prompt_tokens, :completion_tokens,
                       :total_tokens, :cost, :latency_ms, :detail)
               returning id"""
        ),
        {
            "run_id": run_id, "symbol": symbol, "as_of": as_of, "model": model, "prompt_hash": prompt_hash,
            "status": status, "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens, "cost": cost, "latency_ms": latency_ms,
            "detail": None if detail is None else detail[:1000],
        },
    ).scalar_one()  # fmt: skip


_BUDGET_LOCK = "select pg_advisory_xact_lock(hashtextextended('alphaloom:llm_budget', 0))"


@dataclass(frozen=True, slots=True)
class Reservation:
    """``usage_id``: the committed ``reserved`` row, None when a cap was reached (``refused`` says which)."""

    usage_id: int | None
    refused: str | None = None


def estimate(prompt_chars: int, settings: Settings) -> Usage:
    """A call's size before it is made: about 4 characters a prompt token, and the completion's maximum."""
    return Usage(-(-prompt_chars // 4), settings.llm_max_tokens)


def reserve(
    engine: Engine, *, run_id: str, symbol: str | None, as_of: datetime | None, model: str, prompt_hash: str | None,
    size: Usage, settings: Settings,
) -> Reservation:  # fmt: skip
    """Check the caps against the committed ledger and commit a ``reserved`` row of ``size`` (see the module
    docstring), or a ``budget_exceeded`` row when a cap is reached."""
    ledger = {"run_id": run_id, "symbol": symbol, "as_of": as_of, "model": model, "prompt_hash": prompt_hash}
    with engine.begin() as conn:
        conn.execute(text(_BUDGET_LOCK))
        run_spent, day_spent = spent(conn, run_id)
        reached = budget_exceeded(run_spent, day_spent, settings)
        if reached is not None:
            record_usage(conn, **ledger, status="budget_exceeded", detail=reached)
            return Reservation(None, reached)
        usage_id = record_usage(conn, **ledger, status="reserved", usage=size, cost=cost_of(size, settings))
    return Reservation(usage_id)


def settle(
    engine: Engine, usage_id: int, *, status: str, usage: Usage, cost: Decimal, latency_ms: int | None,
    detail: str | None,
) -> None:  # fmt: skip
    """Replace a reservation by what the call really was, committed on its own."""
    with engine.begin() as conn:
        conn.execute(
            text(
                """update audit.llm_usage set status = :status, prompt_tokens = :p, completion_tokens = :c,
                          total_tokens = :t, cost = :cost, latency_ms = :ms, detail = :detail
                   where id = :id"""
            ),
            {"status": status, "p": usage.prompt_tokens, "c": usage.completion_tokens, "t": usage.total_tokens,
             "cost": cost, "ms": latency_ms, "detail": None if detail is None else detail[:1000], "id": usage_id},
        )  # fmt: skip
