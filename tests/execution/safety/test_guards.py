"""Fat-finger checks, live arming, account halts and the paper venue's partial fills, through ``execute`` against
PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text

from alphaloom.domain import DecisionId, OrderIntent, OrderStatus, Side
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import RiskSettings, Settings
from execution.accounts.registry import ensure_account
from execution.brokers.base import OrderRequest
from execution.brokers.paper import PaperBroker, PostgresPaperVenue, paper_fill
from execution.safety.fatfinger import check_daily_loss, halt_state, set_halt
from execution.submit import execute

T0 = datetime(2024, 6, 3, 10, tzinfo=UTC)
OFF = KillSwitchState(False, "", "")


def _world(engine: Engine, mode: str = "paper") -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    account, run_id = f"guard-{tag}", f"run-guard-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", mode, Decimal(100000), run_id)
    return account, run_id


def _intents(engine: Engine, account: str, run_id: str, n: int, qty: str = "1") -> list[OrderIntent]:
    out = []
    with engine.begin() as conn:
        for i in range(n):
            d = DecisionId(f"d-{account}-{i}")
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, 'G/USDT', '1h', :t, 'buy', 1, 'test', '{}'::jsonb)"""),
                {"d": d, "r": run_id, "a": account, "t": T0},
            )  # fmt: skip
            out.append(OrderIntent(d, account, "G/USDT", Side.BUY, Decimal(qty), Decimal(100)))
    return out


def _broker(engine: Engine, **kwargs) -> PaperBroker:
    return PaperBroker(fee_bps=Decimal(10), slippage_bps=Decimal(5), kill_switch=lambda: OFF,
                       venue=PostgresPaperVenue(engine), **kwargs)  # fmt: skip


def _trips(engine: Engine, account: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("select guard from audit.guard_trips where account = :a order by id"), {"a": account}
            ).scalars()
        )


def test_orders_per_run_cap_stops_the_run_and_records_the_trip(engine: Engine) -> None:
    account, run_id = _world(engine)
    intents = _intents(engine, account, run_id, 4)
    with engine.begin() as conn:
        result = execute(conn, intents, run_id=run_id, broker=_broker(engine),
                         settings=Settings(risk=RiskSettings(max_orders_per_run=3)), event_time=T0)  # fmt: skip
    assert len(result.submitted) == 3 and [r.breaches[0].limit for r in result.refused] == ["max_orders_per_run"]
    assert _trips(engine, account) == ["max_orders_per_run"]


def test_daily_loss_limit_halts_the_account_until_released(engine: Engine) -> None:
    account, run_id = _world(engine)
    assert check_daily_loss(Decimal(100000), Decimal(96000), Decimal(5000)) is None
    assert check_daily_loss(Decimal(100000), Decimal(95000), Decimal(5000)).numbers["loss"] == "5000"
    with engine.begin() as conn:
        conn.execute(
            text("insert into audit.equity_marks (account, as_of, equity) values (:a, :t1, 100000), (:a, :t2, 94000)"),
            {"a": account, "t1": T0 - timedelta(hours=2), "t2": T0 - timedelta(hours=1)},
        )
    [first, second] = _intents(engine, account, run_id, 2)
    broker = _broker(engine)
    with engine.begin() as conn:
        result = execute(conn, [first], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
    assert result.broker_submits == 0 and result.refused[0].breaches[0].limit == "daily_loss_limit"
    with engine.begin() as conn:
        assert halt_state(conn, account).halted
        conn.execute(text("delete from audit.equity_marks where account = :a"), {"a": account})
        result = execute(conn, [second], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
        assert [b.limit for b in result.refused[0].breaches] == ["account_halted"]
        set_halt(conn, account, False, "reviewed")
        result = execute(conn, [second], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
    assert len(result.submitted) == 1
    assert _trips(engine, account) == ["daily_loss_limit", "account_halted"]


class LiveLikeBroker(PaperBroker):
    """A broker that declares itself live (the guard only looks at ``live``); it never reaches a venue here."""

    name = "live-like"
    live = True


def test_a_live_broker_needs_an_armed_live_account(engine: Engine) -> None:
    account, run_id = _world(engine, mode="live")
    [intent] = _intents(engine, account, run_id, 1)
    broker = LiveLikeBroker(fee_bps=Decimal(0), slippage_bps=Decimal(0), kill_switch=lambda: OFF)
    with engine.begin() as conn:
        refused = execute(conn, [intent], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        sent = execute(conn, [intent], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
    assert refused.broker_submits == 0 and refused.refused[0].breaches[0].limit == "live_not_armed"
    assert sent.broker_submits == 1


def test_paper_partial_fill_against_bar_volume_with_spread_and_impact(engine: Engine) -> None:
    request = OrderRequest("al-p", "a", "P/USDT", Side.BUY, Decimal(50), Decimal(100), T0, bar_volume=Decimal(100))
    # 5 bps slippage + 2/2 bps half spread + 50 bps * sqrt(10/100) = 15.8113883 bps impact: 21.8113883 bps
    fill = paper_fill(request, fee_bps=Decimal(10), slippage_bps=Decimal(5), spread_bps=Decimal(2),
                      impact_bps=Decimal(50), quantity=Decimal(10))  # fmt: skip
    assert fill.price.quantize(Decimal("0.000001")) == Decimal("100.218114")
    account, run_id = _world(engine)
    [intent] = _intents(engine, account, run_id, 1, qty="50")
    broker = _broker(engine, max_participation=Decimal("0.1"))
    with engine.begin() as conn:
        conn.execute(
            text("""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                    values ('demo', 'G/USDT', '1h', :ts, 100, 100, 100, 100, 100, :r)
                    on conflict do nothing"""),
            {"ts": T0 - timedelta(hours=1), "r": run_id},
        )  # fmt: skip
        result = execute(conn, [intent], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
        [outcome] = result.submitted
        events = conn.execute(
            text("select to_status from audit.order_events where client_order_id = :c order by id"),
            {"c": outcome.client_order_id},
        ).scalars()
        assert list(events) == ["new", "submitted", "expired"]
        arrival = conn.execute(
            text("select arrival_price, filled_quantity from audit.orders where client_order_id = :c"),
            {"c": outcome.client_order_id},
        ).one()
    assert outcome.status is OrderStatus.EXPIRED and outcome.fills[0].quantity == Decimal(10)  # 10% of 100
    assert (Decimal(arrival.arrival_price), Decimal(arrival.filled_quantity)) == (Decimal(100), Decimal(10))
    assert broker.lookup(outcome.client_order_id).status is OrderStatus.EXPIRED  # the durable venue remembers
