"""A decision run's trading session for one account: the broker its orders go to, and whether it may trade this run.

``open_session`` picks the account's own broker (``audit.accounts.mode``):

- ``paper`` (the default for a new account): the decision flow's paper broker;
- ``live``: its ccxt broker (``execution.brokers.factory``), only when the account is armed (``live_enabled``) and
  credentials for its venue are stored; with ``settings.routing.venues``, a ``RoutingBroker`` over its venue (home)
  and those venues (credentials needed at each), so every order is routed (``execution.algos.routing``);
- ``shadow``: a ``ShadowBroker`` around the live broker of its own venue (not routed), on the same conditions.

A live or shadow account is then reconciled with its venue (``execution.accounts.reconcile``) before any order: every
difference is recorded in ``audit.reconciliations``. When differences other than our own orders brought up to date
remain (beyond ``settings.risk.reconcile_tolerance``), or the venue cannot be reconciled at all, the session refuses to
trade this run. Every refusal is an ``audit.guard_trips`` row (guard ``live_not_armed``, ``no_credentials``,
``reconciliation`` or ``reconciliation_failed``, with its numbers) and an operator alert (``live_refused`` or
``reconciliation``). Nothing is corrected automatically: a difference needs a human.

``execute_in_session`` runs ``execution.submit.execute`` with the session's broker and, for a shadow account, records
the paper-versus-live drift of the orders it sent (``audit.shadow_drift``). A live or shadow send whose decision time
is more than ``live_max_decision_age_bars`` bars old by the wall clock is refused (guard ``decision_age``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from alphaloom.domain import AccountId, OrderIntent
from alphaloom.errors import AlphaLoomError
from alphaloom.guards import LimitBreach
from alphaloom.settings import Settings
from execution.accounts.reconcile import Difference, reconcile_account, unexplained
from execution.accounts.registry import LIVE_MODES, AccountMode
from execution.algos.release import ReleaseResult, release_due_children
from execution.algos.routing import RoutingBroker
from execution.brokers.base import Broker
from execution.brokers.factory import decision_paper_broker, shadow_broker, venue_broker
from execution.brokers.shadow import ShadowBroker, record_drift
from execution.orders.outcomes import ExecutionResult, Refusal
from execution.orders.send_context import SliceGate
from execution.orders.store import GuardRow, record_guard
from execution.safety.fatfinger import check_decision_age, record_trip
from execution.safety.protective import arm_entries
from execution.safety.send_guards import guard_name
from execution.submit import execute


@dataclass(frozen=True)
class TradingSession:
    """``broker`` is None when the account cannot trade at all; ``refusal`` says why it may not trade this run."""

    account: AccountId
    mode: AccountMode
    broker: Broker | None
    refusal: str = ""
    differences: tuple[Difference, ...] = field(default_factory=tuple)

    @property
    def may_trade(self) -> bool:
        return self.broker is not None and not self.refusal


def _refuse(
    engine: Engine, session: TradingSession, *, run_id: str, guard: str, alert_kind: str, numbers: dict[str, Any]
) -> TradingSession:
    with engine.begin() as conn:
        record_trip(conn, run_id=run_id, account=session.account, guard=guard, reason=session.refusal,
                    numbers=numbers, alert_kind=alert_kind)  # fmt: skip
    return session


def _difference_numbers(differences: Sequence[Difference]) -> dict[str, Any]:
    return {
        "differences": [
            {"kind": d.kind, "item": d.item, "ours": d.ours, "venue": d.venue, "difference": d.difference,
             **({"problem": d.details["problem"]} if "problem" in d.details else {})}
            for d in differences
        ],
    }  # fmt: skip


def open_session(
    engine: Engine, settings: Settings, account: AccountId, *, run_id: str, event_time: datetime | None = None
) -> TradingSession:
    """The account's broker for this run, reconciled with its venue first when it is live or shadow (see the module
    docstring). ``event_time``: when the venue's reports booked by the reconciliation happened (default: now)."""
    with engine.connect() as conn:
        row = conn.execute(
            text("select venue, mode, live_enabled from audit.accounts where id = :a"), {"a": account}
        ).first()
    if row is None:
        raise AlphaLoomError(
            f"account {account!r} does not exist; create it with execution.accounts.registry.ensure_account"
        )
    mode = AccountMode(row.mode)
    if mode is AccountMode.PAPER:
        return TradingSession(account, mode, decision_paper_broker(engine, settings))
    base = {"mode": row.mode, "venue": row.venue}
    if not row.live_enabled:
        refused = TradingSession(account, mode, None, f"account {account!r} ({row.mode} at {row.venue}) is not "
                                 "armed for live orders: no order is sent (arm it with `alphaloom arm`)")  # fmt: skip
        return _refuse(engine, refused, run_id=run_id, guard="live_not_armed", alert_kind="live_refused",
                       numbers={**base, "live_enabled": False})  # fmt: skip
    routed = mode is AccountMode.LIVE and settings.routing.venues
    names = [row.venue, *(v for v in settings.routing.venues if v != row.venue)] if routed else [row.venue]
    venues = {name: venue_broker(engine, settings, account, name) for name in names}
    missing = [name for name, b in venues.items() if b is None]
    if missing:
        where = ", ".join(f"{name}/{account}" for name in missing)
        refused = TradingSession(account, mode, None, f"no credentials stored for {where}: no order is sent (add "
                                 "them with `alphaloom keys add`)")  # fmt: skip
        return _refuse(engine, refused, run_id=run_id, guard="no_credentials", alert_kind="live_refused",
                       numbers={**base, "missing": missing})  # fmt: skip
    live: Broker = venues[row.venue]  # type: ignore[assignment]
    if len(venues) > 1:
        live = RoutingBroker(
            venues,  # type: ignore[arg-type]
            home=row.venue,
            fee_bps=settings.routing.fee_bps,
            depth=settings.routing.depth,
            max_quote_age=timedelta(seconds=settings.routing.max_quote_age_seconds),
            currencies=settings.routing.currencies,
        )
    broker: Broker = shadow_broker(engine, settings, live) if mode is AccountMode.SHADOW else live
    try:
        with engine.begin() as conn:
            differences = reconcile_account(
                conn, live, account, run_id=run_id,  # type: ignore[arg-type]
                tolerance=settings.risk.reconcile_tolerance, event_time=event_time,
            )  # fmt: skip
    except AlphaLoomError as exc:
        refused = TradingSession(account, mode, broker, f"{account} could not be reconciled with {row.venue}: "
                                 f"{type(exc).__name__}: {exc}; no order is sent this run")  # fmt: skip
        return _refuse(engine, refused, run_id=run_id, guard="reconciliation_failed", alert_kind="reconciliation",
                       numbers={**base, "error": type(exc).__name__})  # fmt: skip
    blocking = unexplained(differences)
    session = TradingSession(account, mode, broker, differences=tuple(differences))
    if not blocking:
        return session
    items = ", ".join(f"{d.kind} {d.item}" for d in blocking)
    refused = TradingSession(account, mode, broker, f"{account} differs from {row.venue} beyond tolerance "
                             f"{settings.risk.reconcile_tolerance} ({items}); no order is sent this run",
                             tuple(differences))  # fmt: skip
    return _refuse(
        engine,
        refused,
        run_id=run_id,
        guard="reconciliation",
        alert_kind="reconciliation",
        numbers={**base, "tolerance": settings.risk.reconcile_tolerance, **_difference_numbers(blocking)},
    )


def execute_in_session(
    conn: Connection,
    session: TradingSession,
    intents: Sequence[OrderIntent],
    *,
    run_id: str,
    settings: Settings,
    event_time: datetime,
    now: datetime | None = None,
) -> ExecutionResult:
    """``execute`` with the session's broker; a shadow account's drift is recorded for the orders sent here. A
    session that may not trade sends nothing (``AlphaLoomError``: the caller should not have asked).

    ``event_time`` is the decision time. A live or shadow account's intents whose decision time is more than
    ``settings.risk.live_max_decision_age_bars`` bars before ``now`` (default: the wall clock) are all refused, nothing
    sent: each is an ``execution_guard`` risk check and a ``decision_age`` guard trip with the reason. Every entry
    that filled gets its protective exit armed when ``stop_loss_pct`` / ``take_profit_pct`` are set
    (``execution.safety.protective.arm_entries``)."""
    if not session.may_trade or session.broker is None:
        raise AlphaLoomError(f"session of {session.account!r} may not trade: {session.refusal}")
    if session.mode in LIVE_MODES:
        stale = check_decision_age(event_time, now or datetime.now(UTC), timeframe=settings.timeframe,
                                   max_bars=settings.risk.live_max_decision_age_bars)  # fmt: skip
        if stale is not None:
            return _refuse_all(conn, intents, stale, run_id=run_id)
    result = execute(conn, intents, run_id=run_id, broker=session.broker, settings=settings, event_time=event_time)
    arm_entries(conn, result, broker=session.broker, settings=settings, run_id=run_id, event_time=event_time)
    if isinstance(session.broker, ShadowBroker):
        sent = {o.client_order_id for o in result.submitted}
        record_drift(conn, session.broker.take_observations(sent))
    return result


def _refuse_all(
    conn: Connection, intents: Sequence[OrderIntent], breach: LimitBreach, *, run_id: str
) -> ExecutionResult:
    result = ExecutionResult()
    for intent in intents:
        result.refused.append(Refusal(intent, (breach,)))
        numbers = {"breaches": {breach.limit: breach.numbers}}
        record_guard(conn, run_id, intent, GuardRow(guard_name(intent), False, breach.reason, numbers))
        record_trip(conn, run_id=run_id, account=intent.account, guard=breach.limit, reason=breach.reason,
                    numbers=breach.numbers, symbol=intent.symbol, decision_id=intent.decision_id)  # fmt: skip
    return result


def release_in_session(
    conn: Connection,
    session: TradingSession,
    now: datetime,
    *,
    run_id: str,
    settings: Settings,
    gate: SliceGate | None = None,
) -> ReleaseResult:
    """``release_due_children`` for the session's account with its broker; a shadow account's drift is recorded for
    the slices sent here, as ``execute_in_session`` does for a decision's orders."""
    if not session.may_trade or session.broker is None:
        raise AlphaLoomError(f"session of {session.account!r} may not trade: {session.refusal}")
    released = release_due_children(conn, session.broker, now, settings=settings, run_id=run_id,
                                    account=session.account, gate=gate)  # fmt: skip
    for sent in released.results.values():  # a slice of an entry that filled is an entry too
        arm_entries(conn, sent, broker=session.broker, settings=settings, run_id=run_id, event_time=now)
    if isinstance(session.broker, ShadowBroker):
        sent_ids = {o.client_order_id for r in released.results.values() for o in r.submitted}
        record_drift(conn, session.broker.take_observations(sent_ids))
    return released
