"""The price band guards the send, not the decision's own bar: before a live send the venue's current price is
fetched through the broker (ccxt ticker on binance's class fed recorded responses) and the order is refused when the
market moved beyond the band since the decision; a protective exit that gapped through the band still exits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text
from support.binance_broker import binance_broker, creates
from support.ccxt_replay import BinanceSpotVenue

from alphaloom.domain import DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.settings import RiskSettings, Settings
from execution.accounts.registry import ensure_account
from execution.brokers.factory import paper_broker
from execution.safety.protective import arm_exit, check_exits
from execution.submit import execute

D = Decimal
T0 = datetime(2026, 3, 2, 0, tzinfo=UTC)


def _live_account(engine: Engine, tag: str) -> tuple[str, str, Settings]:
    account, run_id = f"band-{tag}", f"run-band-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", "live", D(100_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
    return (
        account,
        run_id,
        Settings(exchange=f"exband-{tag}", timeframe="1h", risk=RiskSettings(max_orders_per_run=1000)),
    )


def _decision(engine: Engine, run_id: str, account: str, tag: str, price: str) -> DecisionId:
    decision_id = DecisionId(f"dec-band-{tag}-{price}")
    with engine.begin() as conn:
        conn.execute(
            text("insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score, "
                 "config_version, inputs) values (:d, :r, :a, 'BTC/USDT', '1h', :t, 'buy', 1, 'test', '{}')"),
            {"d": decision_id, "r": run_id, "a": account, "t": T0},
        )  # fmt: skip
    return decision_id


def test_a_live_send_is_refused_when_the_venue_moved_beyond_the_band_since_the_decision(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, settings = _live_account(engine, tag)
    venue = BinanceSpotVenue({"BTCUSDT": "100000.00"}, {"USDT": "100000"})
    broker, replay = binance_broker(venue)
    stale = OrderIntent(_decision(engine, run_id, account, tag, "94000"), account, "BTC/USDT", Side.BUY, D("0.05"),
                        D(94000))  # decided at 94,000; the venue is at 100,000 now (+6.4%, band 5%)  # fmt: skip
    fresh = OrderIntent(_decision(engine, run_id, account, tag, "99000"), account, "BTC/USDT", Side.BUY, D("0.05"),
                        D(99000))  # fmt: skip
    with engine.begin() as conn:
        result = execute(conn, [stale, fresh], run_id=run_id, broker=broker, settings=settings, event_time=T0)
    (refusal,) = result.refused
    assert refusal.intent == stale and [b.limit for b in refusal.breaches] == ["price_band"]
    assert "100000" in refusal.breaches[0].reason
    assert [o.client_order_id for o in result.submitted] == [client_order_id_for(fresh.decision_id, 0)]
    assert [q["newClientOrderId"] for q in creates(replay)] == [client_order_id_for(fresh.decision_id, 0)]
    with engine.connect() as conn:
        numbers = dict(conn.execute(
            text("select decision_id, numbers from audit.risk_checks where decision_id = any(:d) "
                 "and check_name = 'execution_guard'"),
            {"d": [stale.decision_id, fresh.decision_id]},
        ).all())  # fmt: skip
    assert D(numbers[stale.decision_id]["venue_price"]) == D(100000)
    assert D(numbers[fresh.decision_id]["venue_price"]) == D(100000)


def test_a_protective_exit_that_gapped_through_the_band_still_exits(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol, exchange = f"gap-{tag}", f"run-gap-{tag}", f"G{tag.upper()}/USDT", f"exgap-{tag}"
    settings = Settings(exchange=exchange, timeframe="1h", risk=RiskSettings(max_orders_per_run=1000))
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", D(10_000), run_id)
        conn.execute(
            text("insert into audit.positions (account, symbol, quantity, avg_price, realized_pnl, run_id) "
                 "values (:a, :s, 3, 100, 0, :r)"), {"a": account, "s": symbol, "r": run_id})  # fmt: skip
        # the bar opens at 94 below the stop at 95 and closes at 86: the exit's reference (94) is 9% off the close
        conn.execute(
            text("insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) "
                 "values (:e, :s, '1h', :t, 94, 94.5, 85, 86, 1000000, :r)"),
            {"e": exchange, "s": symbol, "t": T0, "r": run_id},
        )  # fmt: skip
    broker = paper_broker(engine, settings)
    with engine.begin() as conn:
        arm_exit(conn, account=account, symbol=symbol, quantity=D(3), entry_price=D(100), stop_price=D(95),
                 take_profit_price=None, broker=broker)  # fmt: skip
        result = check_exits(conn, broker=broker, settings=settings, run_id=run_id, as_of=T0 + timedelta(hours=1))
        held = conn.execute(text("select quantity from audit.positions where account = :a"), {"a": account}).scalar()
    assert result.refused == [] and result.broker_submits == 1 and held == 0
