"""A TWAP test's world: a paper account with a buy large enough to split into 4 slices over 4 hours, sent through a
real paper broker on the durable venue that counts its submits and can crash at a planned point."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text

from alphaloom.domain import ClientOrderId, DecisionId, OrderIntent, Side
from alphaloom.ops.kill_switch import kill_switch_state
from alphaloom.settings import Settings, SplitSettings
from execution.accounts.registry import ensure_account
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.paper import PaperBroker, PostgresPaperVenue
from execution.submit import execute

T0 = datetime(2024, 8, 1, 10, tzinfo=UTC)
D = Decimal
HOUR = timedelta(hours=1)
# 4 slices over 240 minutes: due at T0, T0+1h, T0+2h, T0+3h
SETTINGS = Settings(timeframe="1h", split=SplitSettings(above_notional=D(1000), slices=4, twap_duration_minutes=240))


class SimulatedCrash(Exception):
    """The process dying: nothing catches it, the caller's transaction rolls back."""


class Venue:
    """A real paper broker on the durable venue (kill switch read from the database), counting submits and crashing
    at a planned point for planned client ids."""

    def __init__(self, engine: Engine, faults: dict[str, str] | None = None) -> None:
        def switch():  # type: ignore[no-untyped-def]
            with engine.connect() as conn:
                return kill_switch_state(conn)

        self.inner = PaperBroker(fee_bps=D(10), slippage_bps=D(5), kill_switch=switch, venue=PostgresPaperVenue(engine))
        self.name, self.live, self.faults, self.submits = self.inner.name, False, dict(faults or {}), 0

    def submit(self, request: OrderRequest) -> BrokerReport:
        fault = self.faults.pop(request.client_order_id, None)
        if fault == "before_submit":
            raise SimulatedCrash("died after journaling, before the venue saw the slice")
        self.submits += 1
        report = self.inner.submit(request)
        if fault == "after_submit":
            raise SimulatedCrash("died after the venue accepted the slice, before recording it")
        return report

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.inner.lookup(client_order_id)


def record_decision(engine: Engine, account: str, run_id: str, symbol: str, tag: str, action: str) -> DecisionId:
    decision_id = DecisionId(f"d-twap-{action}-{tag}")
    with engine.begin() as conn:
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                 score, config_version, inputs)
                    values (:d, :r, :a, :s, '1h', :t, :act, 1, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "s": symbol, "t": T0, "act": action},
        )  # fmt: skip
    return decision_id


def world(engine: Engine) -> tuple[str, str, OrderIntent]:
    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol = f"twap-{tag}", f"run-twap-{tag}", f"W{tag}/USDT"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", D(100000), run_id)
        for ts, close in [(T0 - HOUR, 100), (T0, 102), (T0 + HOUR, 101)]:  # known from ts + 1h on
            conn.execute(
                text("""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                        values (:e, :s, '1h', :ts, :c, :c, :c, :c, 1000000, :r)"""),
                {"e": SETTINGS.exchange, "s": symbol, "ts": ts, "c": close, "r": run_id},
            )  # fmt: skip
    decision_id = record_decision(engine, account, run_id, symbol, tag, "buy")
    return account, run_id, OrderIntent(decision_id, account, symbol, Side.BUY, D(50), D(100))


def execute_intent(engine: Engine, intent: OrderIntent, run_id: str, broker: Venue, at: datetime = T0):
    with engine.begin() as conn:
        return execute(conn, [intent], run_id=run_id, broker=broker, settings=SETTINGS, event_time=at)  # type: ignore[arg-type]


def query_rows(engine: Engine, sql: str, **params: object) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def legs_sent(engine: Engine, account: str) -> list[int]:
    return [
        r.leg for r in query_rows(engine, "select leg from audit.orders where account = :a order by leg", a=account)
    ]
