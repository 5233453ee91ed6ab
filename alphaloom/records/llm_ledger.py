"""The LLM ledger's repository (``audit.llm_usage``, ``audit.llm_cache``, ``audit.llm_transcripts``): every statement
the LLM agents write and the budget reads. Each takes the caller's connection, so a ledger row is committed with
whatever the caller commits (the budget's reservation on its own transaction, a cache row with the decision).

Amounts come back as ``(tokens, cost)``: total tokens and cost in USD, zero for no rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

_BUDGET_LOCK = "select pg_advisory_xact_lock(hashtextextended('alphaloom:llm_budget', 0))"


def lock_budget(conn: Connection) -> None:
    """Take the budget's transaction-scoped advisory lock: one reservation is checked and written at a time."""
    conn.execute(text(_BUDGET_LOCK))


def _amount(row: Sequence[Any]) -> tuple[int, Decimal]:
    return int(row[0]), Decimal(row[1])


def day_usage(conn: Connection) -> tuple[int, Decimal]:
    """What every run has spent or reserved today (UTC)."""
    return _amount(
        conn.execute(
            text(
                """select coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0) from audit.llm_usage
                   where created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc'"""
            )
        ).one()
    )


def run_usage(conn: Connection, run_id: str) -> tuple[int, Decimal]:
    """What run ``run_id`` has spent or reserved."""
    return _amount(
        conn.execute(
            text(
                "select coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0) from audit.llm_usage where run_id = :r"
            ),
            {"r": run_id},
        ).one()
    )


def decision_usage(conn: Connection, run_id: str, symbol: str | None, as_of: datetime | None) -> tuple[int, Decimal]:
    """What one decision (``symbol`` at ``as_of`` in ``run_id``, every role together) has spent or reserved."""
    return _amount(
        conn.execute(
            text("""select coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0) from audit.llm_usage
                    where run_id = :r and symbol is not distinct from :s and as_of is not distinct from :t"""),
            {"r": run_id, "s": symbol, "t": as_of},
        ).one()
    )  # fmt: skip


def insert_usage(
    conn: Connection, *, run_id: str, symbol: str | None, as_of: datetime | None, model: str,
    prompt_hash: str | None, status: str, prompt_tokens: int, completion_tokens: int, total_tokens: int,
    cost: Decimal, latency_ms: int | None, detail: str | None,
) -> int:  # fmt: skip
    """One ``audit.llm_usage`` row (``detail`` cut to 1000 characters); returns its id."""
    return int(
        conn.execute(
            text(
                """insert into audit.llm_usage (run_id, symbol, as_of, model, prompt_hash, status, prompt_tokens,
                                                completion_tokens, total_tokens, cost, latency_ms, detail)
                   values (:run_id, :symbol, :as_of, :model, :prompt_hash, :status, :prompt_tokens, :completion_tokens,
                           :total_tokens, :cost, :latency_ms, :detail)
                   returning id"""
            ),
            {
                "run_id": run_id, "symbol": symbol, "as_of": as_of, "model": model, "prompt_hash": prompt_hash,
                "status": status, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": total_tokens, "cost": cost, "latency_ms": latency_ms,
                "detail": None if detail is None else detail[:1000],
            },
        ).scalar_one()
    )  # fmt: skip


def update_usage(
    conn: Connection, usage_id: int, *, status: str, prompt_tokens: int, completion_tokens: int, total_tokens: int,
    cost: Decimal, latency_ms: int | None, detail: str | None,
) -> None:  # fmt: skip
    """Replace ledger row ``usage_id`` (a reservation) by what the call really was."""
    conn.execute(
        text(
            """update audit.llm_usage set status = :status, prompt_tokens = :p, completion_tokens = :c,
                      total_tokens = :t, cost = :cost, latency_ms = :ms, detail = :detail
               where id = :id"""
        ),
        {"status": status, "p": prompt_tokens, "c": completion_tokens, "t": total_tokens, "cost": cost,
         "ms": latency_ms, "detail": None if detail is None else detail[:1000], "id": usage_id},
    )  # fmt: skip


def cached_response(conn: Connection, prompt_hash: str) -> tuple[Any, int | None] | None:
    """The cached answer (its JSON) and its tokens for ``prompt_hash``; None when it is not cached."""
    row = conn.execute(
        text("select response, tokens from audit.llm_cache where prompt_hash = :h"), {"h": prompt_hash}
    ).first()
    return None if row is None else (row.response, row.tokens)


def cache_response(
    conn: Connection, *, prompt_hash: str, model: str, response_json: str, tokens: int, prompt_version: str
) -> None:
    """Keep an answer (JSON text) under its prompt hash; the first one kept wins."""
    conn.execute(
        text("""insert into audit.llm_cache (prompt_hash, model, response, tokens, prompt_version)
                values (:h, :m, cast(:r as jsonb), :t, :v) on conflict (prompt_hash) do nothing"""),
        {"h": prompt_hash, "m": model, "r": response_json, "t": tokens, "v": prompt_version},
    )  # fmt: skip


def insert_transcript(
    conn: Connection, *, transcript_hash: str, run_id: str, symbol: str, as_of: Any,
    turns: Sequence[tuple[str, str, Mapping[str, Any]]],
) -> None:  # fmt: skip
    """The turns (role, kind, JSON-ready content) of one transcript, numbered from 0; a hash kept before is kept."""
    if not turns:
        return
    conn.execute(
        text("""insert into audit.llm_transcripts (transcript_hash, seq, run_id, symbol, as_of, role, kind, content)
                values (:h, :seq, :run, :symbol, :as_of, :role, :kind, cast(:content as jsonb))
                on conflict (transcript_hash, seq) do nothing"""),
        [{"h": transcript_hash, "seq": i, "run": run_id, "symbol": symbol, "as_of": as_of, "role": role,
          "kind": kind, "content": json.dumps(dict(content), default=str)} for i, (role, kind, content) in enumerate(turns)],
    )  # fmt: skip


class UsageRow(NamedTuple):
    """A ledger row of some runs, with, for a cached one, when and at what cost the same prompt was first paid."""

    created_at: datetime
    cost: Decimal | None
    total_tokens: int
    status: str
    first_at: datetime | None
    first_cost: Decimal | None


# The runs' rows, each cached one with the first paid answer to the same prompt (one pass over the ledger).
_ROWS = """
with mine as (select id, created_at, cost, total_tokens, status, prompt_hash from audit.llm_usage
              where run_id = any(:runs)),
first_paid as (select distinct on (prompt_hash) prompt_hash, created_at, cost from audit.llm_usage
               where status in ('ok', 'repaired')
                 and prompt_hash in (select prompt_hash from mine where status = 'cached')
               order by prompt_hash, id)
select m.created_at, m.cost, m.total_tokens, m.status, f.created_at as first_at, f.cost as first_cost
from mine m left join first_paid f on m.status = 'cached' and f.prompt_hash = m.prompt_hash
order by m.id
"""


def usage_of_runs(conn: Connection, run_ids: Sequence[str]) -> list[UsageRow]:
    """Every ledger row of ``run_ids`` in the order written (see ``UsageRow``)."""
    return [UsageRow._make(r) for r in conn.execute(text(_ROWS), {"runs": list(run_ids)})]


def usage_since(conn: Connection, since: datetime) -> dict[str, Any]:
    """Cost (USD), tokens and calls of every ledger row written since ``since``."""
    row = conn.execute(
        text(
            """select coalesce(sum(cost), 0) as cost, coalesce(sum(total_tokens), 0) as tokens, count(*) as calls
               from audit.llm_usage where created_at >= :since"""
        ),
        {"since": since},
    ).mappings().one()  # fmt: skip
    return dict(row)


def transcripts_table_exists(conn: Connection) -> bool:
    """Whether ``audit.llm_transcripts`` exists (an older database may not have it)."""
    return conn.execute(text("select to_regclass('audit.llm_transcripts')")).scalar() is not None


class TranscriptTurn(NamedTuple):
    """One stored turn of a transcript."""

    transcript_hash: str
    seq: int
    role: str
    kind: str
    content: dict[str, Any]


def transcript_turns(conn: Connection, transcript_hashes: Sequence[str]) -> list[TranscriptTurn]:
    """The turns of the given transcripts (hashes deduplicated), transcript by transcript in the given order."""
    rows = conn.execute(
        text("""select transcript_hash, seq, role, kind, content from audit.llm_transcripts
                where transcript_hash = any(:h) order by array_position(:h, transcript_hash), seq"""),
        {"h": list(dict.fromkeys(transcript_hashes))},
    )  # fmt: skip
    return [TranscriptTurn(r.transcript_hash, r.seq, r.role, r.kind, dict(r.content)) for r in rows]


class StatusCount(NamedTuple):
    """How many ledger rows of a run have one status, and their tokens."""

    status: str
    n: int
    tokens: int


def usage_by_status(conn: Connection, run_id: str) -> list[StatusCount]:
    """Run ``run_id``'s ledger rows counted by status (with their tokens), by status."""
    rows = conn.execute(
        text("""select status, count(*) as n, coalesce(sum(total_tokens), 0) as tokens from audit.llm_usage
                where run_id = :r group by status order by status"""),
        {"r": run_id},
    )  # fmt: skip
    return [StatusCount(r.status, int(r.n), int(r.tokens)) for r in rows]
