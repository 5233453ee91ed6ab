"""Crash recovery: 0 lost and 0 doubled orders. 100 faults injected in-process between the venue accepting an order
and execution recording it (or between journaling and submitting), then 3 real SIGKILLs of a worker process at
seeded points, each followed by a restart that reconciles with the durable paper venue."""

from __future__ import annotations

import random
import signal
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, text
from support.crash import run_worker, wait_for

from alphaloom.domain import ClientOrderId, DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import RiskSettings, Settings
from execution.accounts.registry import ensure_account
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.paper import PaperBroker, PostgresPaperVenue
from execution.submit import execute

T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)
OFF = KillSwitchState(False, "", "")


class SimulatedCrash(Exception):
    """Stands for the process dying: execution does not catch it, so the caller's transaction rolls back."""


class FaultyBroker:
    """Delegates to a real paper broker and crashes at the planned point for the planned orders."""

    def __init__(self, inner: PaperBroker, faults: dict[ClientOrderId, str]) -> None:
        self.inner, self.faults, self.name, self.live = inner, faults, inner.name, False
        self.submits = 0

    def submit(self, request: OrderRequest) -> BrokerReport:
        fault = self.faults.pop(request.client_order_id, None)
        if fault == "before_submit":
            raise SimulatedCrash("died after journaling, before the venue saw the order")
        self.submits += 1
        report = self.inner.submit(request)
        if fault == "after_submit":
            raise SimulatedCrash("died after the venue accepted the order, before recording it")
        return report

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.inner.lookup(client_order_id)


def _setup(engine: Engine, n: int, tag: str) -> tuple[str, str, list[OrderIntent]]:
    account, run_id = f"crash-{tag}", f"run-crash-{tag}"
    intents = []
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(10_000_000), run_id)
        for i in range(n):
            decision_id = DecisionId(f"d-{tag}-{i}")
            symbol = f"C{i % 7}{tag}/USDT"
            conn.execute(
                text(
                    """insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                    score, config_version, inputs)
                       values (:d, :r, :a, :s, '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""
                ),
                {"d": decision_id, "r": run_id, "a": account, "s": symbol, "t": T0},
            )
            intents.append(OrderIntent(decision_id, account, symbol, Side.BUY, Decimal(i % 5 + 1), Decimal(100)))
    return account, run_id, intents


def _assert_exactly_once(engine: Engine, account: str, intents: list[OrderIntent]) -> None:
    coids = [client_order_id_for(i.decision_id, i.leg) for i in intents]
    with engine.connect() as conn:
        venue = dict(
            conn.execute(
                text("select client_order_id, count(*) from paper_venue.orders where client_order_id = any(:c) "
                     "group by client_order_id"), {"c": coids}
            ).all()
        )  # fmt: skip
        audit = dict(
            conn.execute(
                text("select client_order_id, count(*) from audit.orders where account = :a group by 1"), {"a": account}
            ).all()
        )
        fills = dict(
            conn.execute(
                text("select client_order_id, count(*) from audit.fills where account = :a group by 1"), {"a": account}
            ).all()
        )
        held = conn.execute(
            text("select coalesce(sum(quantity), 0) from audit.positions where account = :a"), {"a": account}
        ).scalar_one()
    lost = [c for c in coids if venue.get(c, 0) == 0 or audit.get(c, 0) == 0]
    doubled = [c for c in coids if venue.get(c, 0) > 1 or audit.get(c, 0) > 1 or fills.get(c, 0) > 1]
    assert (lost, doubled) == ([], [])
    assert all(fills.get(c) == 1 for c in coids)
    assert Decimal(held) == sum((i.quantity for i in intents), Decimal(0))


def test_100_in_process_faults_lose_nothing_and_double_nothing(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _setup(engine, 100, tag)
    rng = random.Random(20240501)
    faults = {client_order_id_for(i.decision_id, 0): rng.choice(["before_submit", "after_submit"]) for i in intents}
    planned = dict(faults)
    settings = Settings(risk=RiskSettings(max_orders_per_run=1000))
    crashes = 0
    broker = FaultyBroker(
        PaperBroker(fee_bps=Decimal(10), slippage_bps=Decimal(5), kill_switch=lambda: OFF,
                    venue=PostgresPaperVenue(engine)), faults
    )  # fmt: skip
    for intent in intents:
        try:
            with engine.begin() as conn:
                execute(conn, [intent], run_id=run_id, broker=broker, settings=settings, event_time=T0)
        except SimulatedCrash:
            crashes += 1
    assert crashes == 100
    # "Restart": a new broker and venue handle, and the same intents again.
    restarted = FaultyBroker(
        PaperBroker(fee_bps=Decimal(10), slippage_bps=Decimal(5), kill_switch=lambda: OFF,
                    venue=PostgresPaperVenue(engine)), {}
    )  # fmt: skip
    with engine.begin() as conn:
        result = execute(conn, intents, run_id=run_id, broker=restarted, settings=settings, event_time=T0)
    after_submit = sum(1 for f in planned.values() if f == "after_submit")
    assert 0 < after_submit < 100
    # orders the venue already had were recovered by lookup; only the never-seen ones were sent now
    assert len(result.recovered) == after_submit and restarted.submits == 100 - after_submit
    _assert_exactly_once(engine, account, intents)


def test_three_sigkills_of_a_worker_lose_nothing_and_double_nothing(engine: Engine, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, intents = _setup(engine, 12, tag)
    base = {
        "account": account,
        "run_id": run_id,
        "event_time": T0.isoformat(),
        "intents": [{"decision_id": i.decision_id, "symbol": i.symbol, "side": i.side.value,
                     "quantity": str(i.quantity), "price": str(i.reference_price)} for i in intents],
    }  # fmt: skip
    rng = random.Random(7)
    points = sorted(rng.sample(range(len(intents)), 3))
    for round_, (stop_at, stage) in enumerate(
        zip(points, ["after_submit", "before_commit", "after_journal"], strict=True)
    ):
        signal_file = tmp_path / f"parked-{round_}"
        proc = run_worker({**base, "stop_at": stop_at, "stage": stage, "signal": str(signal_file)}, tmp_path,
                           f"kill-{round_}")  # fmt: skip
        wait_for(signal_file, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)  # waits for it and closes its pipes
        assert proc.returncode == -signal.SIGKILL
    final = run_worker({**base, "stop_at": -1, "stage": "none", "signal": ""}, tmp_path, "final")
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0 and "done" in out, err
    _assert_exactly_once(engine, account, intents)
