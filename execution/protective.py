"""Protective exits between decision runs (``audit.protective_exits``): a long position's stop-loss and take-profit
levels stay guarded while no decision runs.

- ``arm_exit`` records the levels for (account, symbol). Where the broker holds stop orders itself
  (``StopOrderBroker.supports_stop_orders()``, e.g. ccxt ``has['createStopOrder']``) the mode is ``venue_native`` and
  the venue is asked to hold the stop; otherwise ``bar_check``.
- ``check_exits`` runs on every new bar: for each active ``bar_check`` exit it reads the newest bar known at
  ``as_of`` (point in time: ``ts + bar length <= as_of``) and, when the bar touched a level, submits the exit through
  ``execution.submit.execute`` (so every guard, the kill switch and exactly-once apply) as a sell of the position,
  recorded as a decision (``config_version`` ``protective_exit``) whose id derives from (account, symbol, bar): a
  rerun on the same bar sends nothing twice. The exit row becomes ``triggered`` with what triggered it.

``exit_trigger`` is pure: a stop is hit when the bar's low reaches it (the reference price is the stop, or the open when
the bar gapped through it); a take-profit when the high reaches it; both in one bar counts as the stop (the cautious
reading: the bar's path is unknown).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, text

from alphaloom.domain import DecisionId, OrderIntent, Side, require_utc, stable_hash, timeframe_delta
from alphaloom.settings import Settings
from execution.brokers.base import Broker, StopOrderBroker
from execution.submit import ExecutionResult, execute

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
    account: str,
    symbol: str,
    quantity: Decimal,
    entry_price: Decimal,
    stop_price: Decimal | None,
    take_profit_price: Decimal | None,
    broker: Broker,
) -> str:
    """Record (or replace) the exit levels of (account, symbol); returns the mode (``venue_native`` or ``bar_check``)."""
    if quantity <= 0:
        raise ValueError(f"protective exit quantity must be positive, got {quantity}")
    if stop_price is None and take_profit_price is None:
        raise ValueError(f"protective exit for {account}/{symbol} needs a stop or a take-profit level")
    native = isinstance(broker, StopOrderBroker) and broker.supports_stop_orders()
    mode = "venue_native" if native else "bar_check"
    conn.execute(
        text(
            """insert into audit.protective_exits (account, symbol, quantity, entry_price, stop_price,
                                                   take_profit_price, mode)
               values (:a, :s, :q, :e, :sl, :tp, :m)
               on conflict (account, symbol) do update
               set quantity = excluded.quantity, entry_price = excluded.entry_price, stop_price = excluded.stop_price,
                   take_profit_price = excluded.take_profit_price, mode = excluded.mode, status = 'active',
                   triggered_by = null, exit_client_order_id = null, venue_order_id = null, updated_at = now()"""
        ),
        {"a": account, "s": symbol, "q": quantity, "e": entry_price, "sl": stop_price, "tp": take_profit_price,
         "m": mode},
    )  # fmt: skip
    return mode


def _decision(conn: Connection, *, run_id: str, account: str, symbol: str, timeframe: str, as_of: datetime,
              bar_ts: datetime, trigger: Trigger) -> DecisionId:  # fmt: skip
    decision_id = DecisionId(f"exit-{stable_hash(account, symbol, timeframe, bar_ts.isoformat(), CONFIG_VERSION)}")
    conn.execute(
        text(
            """insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,
                                            config_version, inputs)
               values (:d, :r, :a, :s, :tf, :t, 'sell', -1.0, :cv, cast(:i as jsonb))
               on conflict (decision_id) do nothing"""
        ),
        {"d": decision_id, "r": run_id, "a": account, "s": symbol, "tf": timeframe, "t": as_of, "cv": CONFIG_VERSION,
         "i": json.dumps({"trigger": trigger.kind, "level": str(trigger.level), "bar_ts": bar_ts.isoformat(),
                          "reference_price": str(trigger.reference_price)})},
    )  # fmt: skip
    return decision_id


def check_exits(
    conn: Connection, *, broker: Broker, settings: Settings, run_id: str, as_of: datetime, account: str | None = None
) -> ExecutionResult:
    """Submit the exit of every active ``bar_check`` exit whose levels the newest known bar touched."""
    as_of = require_utc(as_of, "as_of")
    bar = timeframe_delta(settings.timeframe)
    exits = conn.execute(
        text(
            """select e.account, e.symbol, e.quantity, e.stop_price, e.take_profit_price, p.quantity as held
               from audit.protective_exits e
               left join audit.positions p on p.account = e.account and p.symbol = e.symbol
               where e.status = 'active' and e.mode = 'bar_check' and (cast(:a as text) is null or e.account = :a)
               order by e.account, e.symbol for update of e"""
        ),
        {"a": account},
    ).all()
    total = ExecutionResult()
    for ex in exits:
        held = Decimal(ex.held or 0)
        if held <= 0:  # the position is gone (sold by a decision): nothing left to protect
            conn.execute(
                text("""update audit.protective_exits set status = 'cancelled', triggered_by = 'position closed',
                        updated_at = now() where account = :a and symbol = :s"""),
                {"a": ex.account, "s": ex.symbol},
            )  # fmt: skip
            continue
        row = conn.execute(
            text(
                """select ts, open, high, low from raw.ohlcv
                   where exchange = :e and symbol = :s and timeframe = :tf and ts <= :cutoff
                   order by ts desc limit 1"""
            ),
            {"e": settings.exchange, "s": ex.symbol, "tf": settings.timeframe, "cutoff": as_of - bar},
        ).first()
        if row is None:
            continue
        trigger = exit_trigger(open_=Decimal(row.open), high=Decimal(row.high), low=Decimal(row.low),
                               stop=ex.stop_price, take_profit=ex.take_profit_price)  # fmt: skip
        if trigger is None:
            continue
        decision_id = _decision(conn, run_id=run_id, account=ex.account, symbol=ex.symbol,
                                timeframe=settings.timeframe, as_of=as_of, bar_ts=row.ts, trigger=trigger)  # fmt: skip
        intent = OrderIntent(decision_id, ex.account, ex.symbol, Side.SELL, min(Decimal(ex.quantity), held),
                             trigger.reference_price)  # fmt: skip
        result = execute(conn, [intent], run_id=run_id, broker=broker, settings=settings, event_time=as_of)
        outcomes = result.submitted + result.duplicates + result.recovered
        if outcomes:
            conn.execute(
                text(
                    """update audit.protective_exits set status = 'triggered', triggered_by = :by,
                           exit_client_order_id = :c, updated_at = now() where account = :a and symbol = :s"""
                ),
                {"by": f"{trigger.kind} {trigger.level} by the bar at {row.ts.isoformat()}",
                 "c": outcomes[0].client_order_id, "a": ex.account, "s": ex.symbol},
            )  # fmt: skip
        for name in ("submitted", "duplicates", "refused", "rejected", "unknown", "recovered"):
            getattr(total, name).extend(getattr(result, name))
        total.kill_switch_blocked += result.kill_switch_blocked
        total.broker_submits += result.broker_submits
    return total
