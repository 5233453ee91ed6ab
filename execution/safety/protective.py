"""Protective exits between decision runs (``audit.protective_exits``): a long position's stop-loss and take-profit
levels stay guarded while no decision runs.

- ``arm_exit`` records the levels for (account, symbol). Where the broker holds stop orders itself
  (``StopOrderBroker.supports_stop_orders()``, e.g. ccxt ``has['createStopOrder']``) the stop is placed at the venue
  as a stop-limit sell (``execution.orders.sending.place_standing_order``: an audit order like any other, limit
  ``stop_limit_offset_pct`` below the stop) and the mode is ``venue_native``; otherwise (or when the venue refuses
  it) ``bar_check``.
- For a ``venue_native`` exit, ``check_exits`` follows the stop at the venue by client id on every bar: its fills are
  booked as they are reported; filled -> ``triggered``; cancelled or expired at the venue without us -> the exit falls
  back to ``bar_check``. Its take-profit is checked on bars: the venue stop is cancelled first, then the exit sent.
- ``check_exits`` runs on every new bar: for each active ``bar_check`` exit it reads the newest bar known at
  ``as_of`` (point in time: ``ts + bar length <= as_of``) and, when the bar touched a level, submits the exit through
  ``execution.submit.execute`` (so every guard, the kill switch and exactly-once apply) as a sell of the position,
  recorded as a decision (``config_version`` ``protective_exit``) whose id derives from (account, symbol, bar): a
  rerun on the same bar sends nothing twice. The price band never refuses it (``OrderIntent.protective``): a stop
  the market gapped through must still get out. The exit row becomes ``triggered`` with what triggered it.

``arm_entries`` arms every filled entry of an execution (``execution.accounts.session`` calls it after each decision's
orders) when ``stop_loss_pct`` / ``take_profit_pct`` are set: levels from the position's average entry price, for
the whole position held, replacing the levels (and cancelling the venue stop) of an earlier entry.

``exit_trigger`` is pure: a stop is hit when the bar's low reaches it (the reference price is the stop, or the open when
the bar gapped through it); a take-profit when the high reaches it; both in one bar counts as the stop (the cautious
reading: the bar's path is unknown).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import (
    AccountId,
    DecisionId,
    OrderIntent,
    OrderStatus,
    Side,
    Symbol,
    last_closed_open,
    require_utc,
    stable_hash,
)
from alphaloom.settings import Settings
from execution.brokers.base import Broker, CancellingBroker, OrderType, StopOrderBroker
from execution.orders.outcomes import ExecutionResult
from execution.orders.sending import place_standing_order
from execution.orders.state import is_terminal
from execution.orders.venue_reports import apply_venue_report
from execution.submit import execute

CONFIG_VERSION = "protective_exit"


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: str  # stop_loss | take_profit
    level: Decimal
    reference_price: Decimal


def exit_trigger(
    *, open_: Decimal, high: Decimal, low: Decimal, stop: Decimal | None, take_profit: Decimal | None
) -> Trigger | None:
    """What a bar does to a long position's levels (None: nothing touched)."""
    if stop is not None and low <= stop:
        return Trigger("stop_loss", stop, min(open_, stop))
    if take_profit is not None and high >= take_profit:
        return Trigger("take_profit", take_profit, max(open_, take_profit))
    return None


def levels(entry_price: Decimal, stop_loss_pct: Decimal, take_profit_pct: Decimal) -> tuple[Decimal, Decimal]:
    """(stop, take-profit) for a long entered at ``entry_price``."""
    return entry_price * (1 - stop_loss_pct / 100), entry_price * (1 + take_profit_pct / 100)


def arm_exit(
    conn: Connection,
    *,
    account: AccountId,
    symbol: Symbol,
    quantity: Decimal,
    entry_price: Decimal,
    stop_price: Decimal | None,
    take_profit_price: Decimal | None,
    broker: Broker,
    run_id: str | None = None,
    event_time: datetime | None = None,
    stop_limit_offset_pct: Decimal = Decimal("1"),
) -> str:
    """Record (or replace) the exit levels of (account, symbol), placing the stop at the venue where it can hold it
    (then ``run_id`` and ``event_time`` are needed); returns the mode (``venue_native`` or ``bar_check``)."""
    if quantity <= 0:
        raise ValueError(f"protective exit quantity must be positive, got {quantity}")
    if stop_price is None and take_profit_price is None:
        raise ValueError(f"protective exit for {account}/{symbol} needs a stop or a take-profit level")
    mode, coid, venue_order_id = "bar_check", None, None
    if stop_price is not None and isinstance(broker, StopOrderBroker) and broker.supports_stop_orders():
        if run_id is None or event_time is None:
            raise ValueError("placing a venue-native stop needs run_id and event_time")
        decision_id = _decision(
            conn, stable_hash(account, symbol, quantity, entry_price, stop_price, "venue_stop"), run_id=run_id,
            account=account, symbol=symbol, as_of=event_time,
            inputs={"venue_stop": str(stop_price), "entry_price": str(entry_price)},
        )  # fmt: skip
        limit = stop_price * (1 - stop_limit_offset_pct / 100)
        outcome = place_standing_order(
            conn, OrderIntent(decision_id, account, symbol, Side.SELL, quantity, stop_price),
            order_type=OrderType.STOP_LOSS_LIMIT, limit_price=limit, stop_price=stop_price, run_id=run_id, broker=broker,
            event_time=event_time,
        )  # fmt: skip
        if outcome.status not in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
            mode, coid = "venue_native", outcome.client_order_id
            venue_order_id = conn.execute(
                text("select venue_order_id from audit.orders where client_order_id = :c"), {"c": coid}
            ).scalar()
    conn.execute(
        text(
            """insert into audit.protective_exits (account, symbol, quantity, entry_price, stop_price,
                                                   take_profit_price, mode, venue_order_id, exit_client_order_id)
               values (:a, :s, :q, :e, :sl, :tp, :m, :v, :c)
               on conflict (account, symbol) do update
               set quantity = excluded.quantity, entry_price = excluded.entry_price, stop_price = excluded.stop_price,
                   take_profit_price = excluded.take_profit_price, mode = excluded.mode, status = 'active',
                   triggered_by = null, exit_client_order_id = excluded.exit_client_order_id,
                   venue_order_id = excluded.venue_order_id, updated_at = now()"""
        ),
        {"a": account, "s": symbol, "q": quantity, "e": entry_price, "sl": stop_price, "tp": take_profit_price,
         "m": mode, "v": venue_order_id, "c": coid},
    )  # fmt: skip
    return mode


def _decision(conn: Connection, key: str, *, run_id: str, account: AccountId, symbol: Symbol, as_of: datetime,
              inputs: dict[str, str], timeframe: str = "-") -> DecisionId:  # fmt: skip
    decision_id = DecisionId(f"exit-{stable_hash(key, CONFIG_VERSION)}")
    conn.execute(
        text(
            """insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,
                                            config_version, inputs)
               values (:d, :r, :a, :s, :tf, :t, 'sell', -1.0, :cv, cast(:i as jsonb))
               on conflict (decision_id) do nothing"""
        ),
        {"d": decision_id, "r": run_id, "a": account, "s": symbol, "tf": timeframe, "t": as_of, "cv": CONFIG_VERSION,
         "i": json.dumps(inputs)},
    )  # fmt: skip
    return decision_id


def _mark(conn: Connection, ex: Any, status: str, by: str, coid: str | None = None, mode: str | None = None) -> None:
    conn.execute(
        text(
            """update audit.protective_exits set status = :st, triggered_by = :by,
                   exit_client_order_id = coalesce(:c, exit_client_order_id), mode = coalesce(:m, mode),
                   updated_at = now()
               where account = :a and symbol = :s"""
        ),
        {"st": status, "by": by, "c": coid, "m": mode, "a": ex.account, "s": ex.symbol},
    )


def _follow_venue_stop(conn: Connection, ex: Any, broker: Broker, *, run_id: str, as_of: datetime) -> str:
    """Book what the venue reports about a venue-native stop: ``triggered`` (it filled), ``active`` (still resting)
    or ``lapsed`` (gone without filling: the bars guard the stop from now on)."""
    report = broker.lookup(ex.exit_client_order_id)
    status = None if report is None else apply_venue_report(conn, run_id=run_id, report=report, event_time=as_of)
    if status is OrderStatus.FILLED or (status is not None and is_terminal(status) and report and report.fills):
        _mark(conn, ex, "triggered", f"stop_loss {ex.stop_price} filled at the venue")
        return "triggered"
    if status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.NEW):
        return "active"
    _mark(conn, ex, "active", f"venue stop {status.value if status else 'unknown to the venue'}; bar check",
          mode="bar_check")  # fmt: skip
    return "lapsed"


def check_exits(
    conn: Connection,
    *,
    broker: Broker,
    settings: Settings,
    run_id: str,
    as_of: datetime,
    account: AccountId | None = None,
) -> ExecutionResult:
    """Submit the exit of every active ``bar_check`` exit whose levels the newest known bar touched."""
    as_of = require_utc(as_of, "as_of")
    cutoff = last_closed_open(as_of, settings.timeframe)  # the newest bar known at as_of opens at or before it
    exits = conn.execute(
        text(
            """select e.account, e.symbol, e.quantity, e.stop_price, e.take_profit_price, e.mode,
                      e.exit_client_order_id, p.quantity as held
               from audit.protective_exits e
               left join audit.positions p on p.account = e.account and p.symbol = e.symbol
               where e.status = 'active' and (cast(:a as text) is null or e.account = :a)
               order by e.account, e.symbol for update of e"""
        ),
        {"a": account},
    ).all()
    total = ExecutionResult()
    for ex in exits:
        venue_stop = "none"
        if ex.mode == "venue_native":
            venue_stop = _follow_venue_stop(conn, ex, broker, run_id=run_id, as_of=as_of)
            if venue_stop == "triggered":
                continue
        held = Decimal(ex.held or 0)
        if held <= 0:  # the position is gone (sold by a decision): nothing left to protect
            if venue_stop == "active" and isinstance(broker, CancellingBroker):
                gone = broker.cancel(ex.exit_client_order_id, ex.symbol)
                if gone is not None:
                    apply_venue_report(conn, run_id=run_id, report=gone, event_time=as_of)
            _mark(conn, ex, "cancelled", "position closed")
            continue
        row = conn.execute(
            text(
                """select ts, open, high, low from raw.ohlcv
                   where exchange = :e and symbol = :s and timeframe = :tf and ts <= :cutoff
                   order by ts desc limit 1"""
            ),
            {"e": settings.exchange, "s": ex.symbol, "tf": settings.timeframe, "cutoff": cutoff},
        ).first()
        if row is None:
            continue
        # While the venue holds the stop, the bars watch only the take-profit.
        stop = None if venue_stop == "active" else ex.stop_price
        trigger = exit_trigger(open_=Decimal(row.open), high=Decimal(row.high), low=Decimal(row.low),
                               stop=stop, take_profit=ex.take_profit_price)  # fmt: skip
        if trigger is None:
            continue
        if venue_stop == "active":  # take-profit: take the stop off the venue first, so only one exit can fill
            cancelled = (
                broker.cancel(ex.exit_client_order_id, ex.symbol) if isinstance(broker, CancellingBroker) else None
            )
            if cancelled is not None:
                status = apply_venue_report(conn, run_id=run_id, report=cancelled, event_time=as_of)
                if status is OrderStatus.FILLED:
                    _mark(conn, ex, "triggered", f"stop_loss {ex.stop_price} filled at the venue")
                    continue
                if status is not None and not is_terminal(status):
                    continue  # the venue still has the stop: try again on the next bar rather than risk two exits
        decision_id = _decision(
            conn, stable_hash(ex.account, ex.symbol, settings.timeframe, row.ts.isoformat()), run_id=run_id,
            account=ex.account, symbol=ex.symbol, as_of=as_of, timeframe=settings.timeframe,
            inputs={"trigger": trigger.kind, "level": str(trigger.level), "bar_ts": row.ts.isoformat(),
                    "reference_price": str(trigger.reference_price)},
        )  # fmt: skip
        intent = OrderIntent(decision_id, ex.account, ex.symbol, Side.SELL, min(Decimal(ex.quantity), held),
                             trigger.reference_price, protective=True)  # fmt: skip
        result = execute(conn, [intent], run_id=run_id, broker=broker, settings=settings, event_time=as_of)
        outcomes = result.submitted + result.duplicates + result.recovered
        if outcomes:
            _mark(conn, ex, "triggered", f"{trigger.kind} {trigger.level} by the bar at {row.ts.isoformat()}",
                  coid=outcomes[0].client_order_id)  # fmt: skip
        for name in ("submitted", "duplicates", "refused", "rejected", "unknown", "recovered"):
            getattr(total, name).extend(getattr(result, name))
        total.kill_switch_blocked += result.kill_switch_blocked
        total.broker_submits += result.broker_submits
    return total


def arm_entries(
    conn: Connection, result: ExecutionResult, *, broker: Broker, settings: Settings, run_id: str, event_time: datetime
) -> list[Symbol]:
    """Arm the protective exit of each symbol an entry (a buy) filled in ``result``, when
    ``settings.risk.stop_loss_pct`` or ``settings.risk.take_profit_pct`` is set; returns the symbols armed.

    The exit covers the whole position after the fill at levels from its average entry price (a later entry moves
    them), held at the venue where it holds stops (``arm_exit``), else checked on each new bar (``check_exits``). A
    venue stop of an earlier entry is cancelled first, so the venue never holds two stops for one position; while
    the venue still holds it (the cancel is not confirmed), the old levels stay armed and nothing new is placed."""
    if settings.risk.stop_loss_pct is None and settings.risk.take_profit_pct is None:
        return []
    entries: dict[tuple[AccountId, Symbol], None] = {}
    for outcome in result.submitted + result.recovered:
        row = conn.execute(
            text("select account, symbol, side from audit.orders where client_order_id = :c"),
            {"c": outcome.client_order_id},
        ).first()
        if row is not None and row.side == Side.BUY.value and outcome.fills:
            entries[(AccountId(row.account), Symbol(row.symbol))] = None
    armed = []
    for account, symbol in entries:
        held = conn.execute(
            text("select quantity, avg_price from audit.positions where account = :a and symbol = :s"),
            {"a": account, "s": symbol},
        ).first()
        if held is None or Decimal(held.quantity) <= 0:
            continue
        if not _cancel_previous_venue_stop(conn, account, symbol, broker=broker, run_id=run_id, as_of=event_time):
            continue
        entry = Decimal(held.avg_price)
        stop = None if settings.risk.stop_loss_pct is None else entry * (1 - settings.risk.stop_loss_pct / 100)
        take = None if settings.risk.take_profit_pct is None else entry * (1 + settings.risk.take_profit_pct / 100)
        arm_exit(conn, account=account, symbol=symbol, quantity=Decimal(held.quantity), entry_price=entry,
                 stop_price=stop, take_profit_price=take, broker=broker, run_id=run_id, event_time=event_time)  # fmt: skip
        armed.append(symbol)
    return armed


def _cancel_previous_venue_stop(
    conn: Connection, account: AccountId, symbol: Symbol, *, broker: Broker, run_id: str, as_of: datetime
) -> bool:
    """Take an active venue-native stop of (account, symbol) off the venue; False while the venue still holds it."""
    ex = conn.execute(
        text("""select exit_client_order_id, mode from audit.protective_exits
                where account = :a and symbol = :s and status = 'active' and mode = 'venue_native'"""),
        {"a": account, "s": symbol},
    ).first()  # fmt: skip
    if ex is None or ex.exit_client_order_id is None:
        return True
    if not isinstance(broker, CancellingBroker):
        return False
    report = broker.cancel(ex.exit_client_order_id, symbol)
    status = None if report is None else apply_venue_report(conn, run_id=run_id, report=report, event_time=as_of)
    return status is None or is_terminal(status)
