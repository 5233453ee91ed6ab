"""Why did we trade? The chain behind one order, read from the audit trail (read-only).

``explain_order(conn, client_order_id)`` returns an ``OrderChain``:

    order (+ its events and fills) -> decision (inputs, config version, dbt invocation, git sha)
      -> agent outputs (model, prompt hash, tokens, opinion and rationale) and risk checks (with their numbers)
      -> the feature row it read (dbt model, invocation id, project git sha, the values as read)
      -> the bar and the news rows behind it (through ``audit.lineage``), the social posts it read
         (``raw.social_posts``, each marked kept or dropped as spam by the social analyst) and the earnings report
         the earnings analyst read (its ``raw.news`` row with the figures and guidance the extractor found)
      -> the flow runs (``audit.runs``, keyed by the Prefect flow-run id) that wrote each of them.

What callers can rely on: every link is read from rows, never recomputed, except the feature-build run, which
``audit.runs`` does not key by dbt invocation: it is the last ``build_features`` run that completed before the
decision was recorded, and ``RunLink.inferred`` says so. ``OrderChain.missing`` names every link that could not be
found (empty for a complete chain). ``explain_decision(conn, decision_id)`` gives the same chain for a decision,
with the orders it made (none for a hold or a denial). ``price_window`` gives the bars around the decision for a chart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, text

from alphaloom.domain import timeframe_delta
from alphaloom.errors import NotFoundError
from alphaloom.records.decisions import agent_outputs, decision, risk_checks
from alphaloom.records.llm_ledger import transcript_turns, transcripts_table_exists
from alphaloom.records.orders import OrderRow, decision_id_of_order, order_ids_of_decision, order_with_history
from alphaloom.records.runs import last_completed_run, run_record


@dataclass(frozen=True)
class RunLink:
    """A flow run that wrote part of the chain; ``role`` says which part."""

    role: str
    run_id: str
    flow: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    git_sha: str | None
    inferred: bool = False


@dataclass(frozen=True)
class ExplainedDecision:
    decision_id: str
    account: str
    symbol: str
    timeframe: str
    as_of: datetime
    action: str
    score: float
    config_version: str
    dbt_invocation_id: str | None
    git_sha: str | None
    run_id: str
    created_at: datetime
    inputs: dict[str, Any]
    config: dict[str, Any] | None = None  # the configuration ``config_version`` names; None when none was recorded


@dataclass(frozen=True)
class ExplainedAgentOutput:
    agent: str
    model: str | None
    prompt_hash: str | None
    tokens: int | None
    latency_ms: int | None
    skipped: bool
    action: str
    confidence: float
    rationale: str
    input_ref: dict[str, Any]
    run_id: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RiskCheckRow:
    """A risk check of an intent (``audit.risk_checks``), or an execution guard trip (``audit.guard_trips``: the
    guard's name, never approved), with its numbers. The one row type of the explain chain and the decision summary."""

    check_name: str
    approved: bool
    reason: str
    numbers: dict[str, Any]


@dataclass(frozen=True)
class FeatureLink:
    """The feature row the decision read, as recorded in the decision (marts are rebuilt; the values are kept)."""

    dbt_model: str
    key: dict[str, Any]
    known_at: str | None
    dbt_invocation_id: str | None
    git_sha: str | None
    values: dict[str, Any]


@dataclass(frozen=True)
class BarRow:
    exchange: str
    symbol: str
    timeframe: str
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    run_id: str


@dataclass(frozen=True)
class NewsRow:
    id: str
    title: str
    url: str | None
    published_at: datetime
    first_seen_at: datetime
    first_seen_assumed: bool
    label: str | None
    score: float | None
    sources: list[str]
    run_id: str


@dataclass(frozen=True)
class SocialPostRow:
    """A community post the decision read (``raw.social_posts`` through ``audit.lineage``): ``first_seen_at`` is
    when it was known for the decision's symbol; ``kept`` False when the social analyst dropped it as spam."""

    id: str
    title: str
    author: str | None
    url: str | None
    published_at: datetime
    first_seen_at: datetime
    first_seen_assumed: bool
    sources: list[str]
    kept: bool
    run_id: str


@dataclass(frozen=True)
class EarningsLink:
    """The earnings report behind the earnings analyst's opinion: its news row (None when the row is gone) and what
    the rule-based extractor read in it, as recorded with the opinion (EPS and revenue vs estimate, guidance)."""

    news_id: str
    title: str | None
    url: str | None
    first_seen_at: str | None
    eps: dict[str, Any] | None
    revenue: dict[str, Any] | None
    guidance: str | None
    outcome_words: str | None
    score: float | None


@dataclass(frozen=True)
class DebateTurn:
    """One turn of an LLM team's debate (``audit.llm_transcripts``): who spoke, what kind of turn and a one-line
    gist of it (the full content stays in the table)."""

    transcript_hash: str
    seq: int
    role: str
    kind: str
    gist: str


@dataclass(frozen=True)
class OrderChain:
    order: OrderRow
    decision: ExplainedDecision | None
    agent_outputs: list[ExplainedAgentOutput] = field(default_factory=list)
    risk_checks: list[RiskCheckRow] = field(default_factory=list)
    features: FeatureLink | None = None
    bars: list[BarRow] = field(default_factory=list)
    news: list[NewsRow] = field(default_factory=list)
    runs: list[RunLink] = field(default_factory=list)
    debate: list[DebateTurn] = field(default_factory=list)
    social: list[SocialPostRow] = field(default_factory=list)
    earnings: EarningsLink | None = None

    @property
    def missing(self) -> list[str]:
        """The links that could not be found; empty when the chain is complete."""
        gaps = []
        if self.decision is None:
            gaps.append("decision")
        if not self.agent_outputs:
            gaps.append("agent outputs")
        if self.features is None:
            gaps.append("feature row")
        if not self.bars:
            gaps.append("bars")
        if self.decision is not None and self.decision.inputs.get("news") and not self.news:
            gaps.append("news rows")
        roles = {r.role for r in self.runs}
        for role in ("order", "decision", "features", "bars"):
            if role not in roles:
                gaps.append(f"{role} flow run")
        if self.news and "news" not in roles:
            gaps.append("news flow run")
        read_posts = next((a.input_ref.get("post_ids") for a in self.agent_outputs if a.agent == "social"), None)
        if read_posts and not self.social:
            gaps.append("social posts")
        if self.earnings is not None and self.earnings.title is None:
            gaps.append("earnings report row")
        return gaps


def _order(conn: Connection, client_order_id: str) -> OrderRow:
    order = order_with_history(conn, client_order_id)
    if order is None:
        raise NotFoundError(f"order {client_order_id!r} is not in audit.orders")
    return order


def _decision(conn: Connection, decision_id: str) -> ExplainedDecision | None:
    row = decision(conn, decision_id)
    if row is None:
        return None
    return ExplainedDecision(
        row.decision_id, row.account, row.symbol, row.timeframe, row.as_of, row.action, float(row.score),
        row.config_version, row.dbt_invocation_id, row.git_sha, row.run_id, row.created_at, dict(row.inputs),
        None if row.config is None else dict(row.config),
    )  # fmt: skip


def _agent_outputs(conn: Connection, decision_id: str) -> list[ExplainedAgentOutput]:
    return [
        ExplainedAgentOutput(
            o.agent,
            o.model,
            o.prompt_hash,
            o.tokens,
            o.latency_ms,
            o.skipped,
            str(o.output.get("action", "hold")),
            float(o.output.get("confidence", 0.0)),
            str(o.output.get("rationale", "")),
            dict(o.input_ref or {}),
            o.run_id,
            dict(o.output.get("details") or {}),
        )
        for o in agent_outputs(conn, decision_id)
    ]


def _risk_checks(conn: Connection, decision_id: str) -> list[RiskCheckRow]:
    return [
        RiskCheckRow(r.check_name, r.approved, r.reason, dict(r.numbers or {})) for r in risk_checks(conn, decision_id)
    ]


def _parents(conn: Connection, decision_id: str) -> dict[str, list[dict[str, Any]]]:
    parents: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(
        text(
            "select parent_table, parent_key from audit.lineage "
            "where child_table = 'audit.decisions' and child_id = :d order by id"
        ),
        {"d": decision_id},
    ):
        parents.setdefault(str(r.parent_table), []).append(dict(r.parent_key))
    return parents


def _bar_row(r: Row[Any]) -> BarRow:
    """A ``raw.ohlcv`` row read with the columns ``_BAR_COLUMNS`` names."""
    return BarRow(r.exchange, r.symbol, r.timeframe, r.ts, r.open, r.high, r.low, r.close, r.volume, r.run_id)


def _bars(conn: Connection, keys: list[dict[str, Any]]) -> list[BarRow]:
    bars = []
    for key in keys:
        row = conn.execute(
            text(
                """select exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id from raw.ohlcv
                   where exchange = :exchange and symbol = :symbol and timeframe = :timeframe
                     and ts = cast(:ts as timestamptz)"""
            ),
            {k: key.get(k) for k in ("exchange", "symbol", "timeframe", "ts")},
        ).first()
        if row is not None:
            bars.append(_bar_row(row))
    return bars


def _news(conn: Connection, ids: list[str], recorded: list[dict[str, Any]], symbol: str) -> list[NewsRow]:
    """The decision's news rows; ``first_seen_at`` is when each story was known for the decision's ``symbol`` (a link
    added by a later sighting counts from that sighting, as the decision read it: ``agents.news``)."""
    if not ids:
        return []
    scores = {n["id"]: n for n in recorded}
    rows = conn.execute(
        text(
            """select n.id, n.title, n.url, n.published_at, n.first_seen_assumed, n.run_id,
                      greatest(n.first_seen_at, coalesce(y.first_known_at, n.first_seen_at)) as first_seen_at,
                      coalesce(array_agg(s.source order by s.source) filter (where s.source is not null), '{}')
                        as sources
               from raw.news n left join raw.news_sightings s on s.news_id = n.id
               left join raw.news_symbols y on y.news_id = n.id and y.symbol = :symbol
               where n.id = any(:ids)
               group by n.id, y.first_known_at order by 7, n.id"""
        ),
        {"ids": ids, "symbol": symbol},
    )
    return [
        NewsRow(
            r.id,
            r.title,
            r.url,
            r.published_at,
            r.first_seen_at,
            r.first_seen_assumed,
            scores.get(r.id, {}).get("label"),
            scores.get(r.id, {}).get("score"),
            list(r.sources),
            r.run_id,
        )
        for r in rows
    ]


def _social(conn: Connection, ids: list[str], symbol: str, kept: set[str] | None) -> list[SocialPostRow]:
    """The decision's social posts, oldest first; ``kept`` the ids the social analyst kept (None: all)."""
    if not ids:
        return []
    rows = conn.execute(
        text(
            """select p.id, p.title, p.author, p.url, p.published_at, p.first_seen_assumed, p.run_id,
                      greatest(p.first_seen_at, coalesce(y.first_known_at, p.first_seen_at)) as first_seen_at,
                      coalesce(array_agg(s.source order by s.source) filter (where s.source is not null), '{}')
                        as sources
               from raw.social_posts p left join raw.social_sightings s on s.post_id = p.id
               left join raw.social_symbols y on y.post_id = p.id and y.symbol = :symbol
               where p.id = any(:ids)
               group by p.id, y.first_known_at order by 8, p.id"""
        ),
        {"ids": ids, "symbol": symbol},
    )
    return [
        SocialPostRow(
            r.id,
            r.title,
            r.author,
            r.url,
            r.published_at,
            r.first_seen_at,
            r.first_seen_assumed,
            list(r.sources),
            kept is None or r.id in kept,
            r.run_id,
        )
        for r in rows
    ]


def _earnings(conn: Connection, outputs: list[ExplainedAgentOutput], news: list[NewsRow]) -> EarningsLink | None:
    """The earnings report the earnings analyst's (not skipped) opinion was drawn from, with its news row."""
    opinion = next((o for o in outputs if o.agent == "earnings" and not o.skipped), None)
    news_id = None if opinion is None else opinion.details.get("news_id")
    if opinion is None or not news_id:
        return None
    row: Any = next((n for n in news if n.id == news_id), None)
    if row is None:
        row = conn.execute(
            text("select id, title, url, first_seen_at from raw.news where id = :i"), {"i": news_id}
        ).first()
    d = opinion.details
    score = d.get("score")
    return EarningsLink(str(news_id), None if row is None else row.title, None if row is None else row.url,
                        d.get("first_seen_at"), d.get("eps"), d.get("revenue"), d.get("guidance"),
                        d.get("outcome_words"), None if score is None else float(score))  # fmt: skip


def _run(conn: Connection, role: str, run_id: str) -> RunLink | None:
    row = run_record(conn, run_id)
    return None if row is None else RunLink(role, *row)


def _feature_build_run(conn: Connection, before: datetime) -> RunLink | None:
    row = last_completed_run(conn, "build_features", before)
    return None if row is None else RunLink("features", *row, inferred=True)


@dataclass(frozen=True)
class DecisionChain:
    """The chain behind one decision, order or not: ``orders`` are the client order ids it made (empty when it made
    none: hold, below threshold, or a risk check denied it, which ``risk_checks`` then shows with its numbers)."""

    decision: ExplainedDecision
    agent_outputs: list[ExplainedAgentOutput] = field(default_factory=list)
    risk_checks: list[RiskCheckRow] = field(default_factory=list)
    features: FeatureLink | None = None
    bars: list[BarRow] = field(default_factory=list)
    news: list[NewsRow] = field(default_factory=list)
    runs: list[RunLink] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    debate: list[DebateTurn] = field(default_factory=list)
    social: list[SocialPostRow] = field(default_factory=list)
    earnings: EarningsLink | None = None


class _Runs(list[RunLink]):
    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def add(self, role: str, run_id: str | None) -> None:
        if run_id and not any(r.role == role and r.run_id == run_id for r in self):
            link = _run(self.conn, role, run_id)
            if link is not None:
                self.append(link)


def _decision_links(conn: Connection, decision: ExplainedDecision, runs: _Runs) -> DecisionChain:
    runs.add("decision", decision.run_id)
    outputs = _agent_outputs(conn, decision.decision_id)
    for o in outputs:
        runs.add("agent outputs", o.run_id)
    parents = _parents(conn, decision.decision_id)
    recorded_features = decision.inputs.get("features") or {}
    feature_keys = parents.get("marts.features") or []
    features = None
    if feature_keys or recorded_features:
        features = FeatureLink(
            dbt_model="marts.features",
            key=recorded_features.get("key") or (feature_keys[0] if feature_keys else {}),
            known_at=recorded_features.get("known_at"),
            dbt_invocation_id=recorded_features.get("dbt_invocation_id") or decision.dbt_invocation_id,
            git_sha=decision.git_sha,
            values=dict(recorded_features.get("values") or {}),
        )
        build = _feature_build_run(conn, decision.created_at)
        if build is not None:
            runs.append(build)
    bars = _bars(conn, parents.get("raw.ohlcv") or [])
    for bar in bars:
        runs.add("bars", bar.run_id)
    news = _news(
        conn, [k["id"] for k in parents.get("raw.news") or []], decision.inputs.get("news") or [], decision.symbol
    )
    for item in news:
        runs.add("news", item.run_id)
    social_output = next((o for o in outputs if o.agent == "social"), None)
    kept = social_output.details.get("kept_ids") if social_output is not None else None
    social = _social(conn, [k["id"] for k in parents.get("raw.social_posts") or []], decision.symbol,
                     None if kept is None else set(kept))  # fmt: skip
    for post in social:
        runs.add("social", post.run_id)
    checks = _risk_checks(conn, decision.decision_id)
    hashes = [o.prompt_hash for o in outputs if o.agent == "llm" and o.prompt_hash]
    hashes += [str(c.numbers["transcript_hash"]) for c in checks if c.numbers.get("transcript_hash")]
    return DecisionChain(decision, outputs, checks, features, bars, news, runs, debate=debate_turns(conn, hashes),
                         social=social, earnings=_earnings(conn, outputs, news))  # fmt: skip


def explain_order(conn: Connection, client_order_id: str) -> OrderChain:
    """The whole chain behind ``client_order_id``; raises ``NotFoundError`` when the order does not exist."""
    order = _order(conn, client_order_id)
    runs = _Runs(conn)
    runs.add("order", order.run_id)
    # The order row names its decision; the lineage edge is read too, so a chain broken there shows up as missing.
    decision_id = decision_id_of_order(conn, client_order_id)
    decision = _decision(conn, decision_id) if decision_id else None
    if decision is None:
        return OrderChain(order, None, runs=runs)
    c = _decision_links(conn, decision, runs)
    return OrderChain(order, decision, c.agent_outputs, c.risk_checks, c.features, c.bars, c.news, c.runs, c.debate,
                      social=c.social, earnings=c.earnings)  # fmt: skip


def explain_decision(conn: Connection, decision_id: str) -> DecisionChain:
    """The chain behind ``decision_id`` (whether or not it made an order); ``NotFoundError`` when it does not exist."""
    decision = _decision(conn, decision_id)
    if decision is None:
        raise NotFoundError(f"no decision {decision_id!r} in audit.decisions")
    chain = _decision_links(conn, decision, _Runs(conn))
    return replace(chain, orders=order_ids_of_decision(conn, decision_id))


def price_window(
    conn: Connection, *, exchange: str, symbol: str, timeframe: str, as_of: datetime, before: int = 48, after: int = 12
) -> list[BarRow]:
    """Up to ``before`` bars closed by ``as_of`` and ``after`` bars after it, oldest first (for a chart).

    Bars after ``as_of`` were not known to the decision; a chart must mark ``as_of``."""
    bar = timeframe_delta(timeframe)
    rows = conn.execute(
        text(
            """select exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id from raw.ohlcv
               where exchange = :e and symbol = :s and timeframe = :tf and ts >= :lo and ts < :hi order by ts"""
        ),
        {"e": exchange, "s": symbol, "tf": timeframe, "lo": as_of - bar * (before + 1), "hi": as_of + bar * after},
    )
    return [_bar_row(r) for r in rows]


def bar_length(timeframe: str) -> timedelta:
    return timeframe_delta(timeframe)


def _gist(kind: str, content: dict[str, Any], limit: int = 240) -> str:
    if kind == "tool_call":
        text_ = f"{content.get('name')}({content.get('arguments')})"
    elif kind == "tool_answer":
        body = {k: v for k, v in content.items() if k not in ("id", "as_of")}
        text_ = f"refused: {body['refused']}" if "refused" in body else json.dumps(body, sort_keys=True, default=str)
    elif kind == "answer":
        text_ = json.dumps(content, sort_keys=True, default=str)
    elif kind == "skipped":
        text_ = f"{content.get('status')}: {content.get('problem')}"
    else:
        role, message = content.get("role"), str(content.get("content") or "")
        text_ = (
            f"{role}: {message}"
            if role == "assistant" or len(message) < 200
            else f"{role}: ({len(message)} characters)"
        )
    text_ = " ".join(str(text_).split())
    return text_ if len(text_) <= limit else text_[: limit - 1] + "…"


def debate_turns(conn: Connection, transcript_hashes: list[str]) -> list[DebateTurn]:
    """The turns of the given transcripts (the LLM team's debate and its risk review), in order; empty for none
    (the single analyst, or a database without the table)."""
    if not transcript_hashes or not transcripts_table_exists(conn):
        return []
    rows = transcript_turns(conn, transcript_hashes)
    return [DebateTurn(r.transcript_hash, r.seq, r.role, r.kind, _gist(r.kind, r.content)) for r in rows]
