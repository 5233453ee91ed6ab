"""Shadow mode: the paper broker beside a live one (ccxt's binance class on recorded responses) on the same intents;
per-order drift recorded in audit.shadow_drift and summarised by `alphaloom drift`."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import Engine, text
from support.binance_broker import T0, binance_broker, creates
from support.ccxt_replay import BinanceSpotVenue
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.domain import ClientOrderId, DecisionId, Fill, OrderIntent, OrderStatus, Side, client_order_id_for
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import Settings
from execution.accounts.registry import ensure_account
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.paper import PaperBroker
from execution.brokers.shadow import Observation, ShadowBroker, order_drift, record_drift, summarise
from execution.submit import execute

D = Decimal
runner = CliRunner()
OFF = KillSwitchState(False, "", "")


def _fill(qty: str, price: str, side: Side = Side.BUY) -> Fill:
    return Fill(ClientOrderId("c"), "BTC/USDT", side, D(qty), D(price), D(0), "USDT", D(0), T0)


def test_order_drift_by_hand() -> None:
    request = OrderRequest(ClientOrderId("c"), "a", "BTC/USDT", Side.BUY, D(2), D(100), T0)
    live = BrokerReport(ClientOrderId("c"), OrderStatus.FILLED, None, (_fill("1", "101"), _fill("1", "103")))
    paper = BrokerReport(ClientOrderId("c"), OrderStatus.EXPIRED, None, (_fill("1", "100.5"),))
    d = order_drift(Observation(request, live, paper))
    assert (d.live_price, d.paper_price, d.live_filled, d.paper_filled) == (D(102), D("100.5"), D(2), D(1))
    assert d.live_slippage_bps == D(200) and d.paper_slippage_bps == D(50)  # a buy paying up is positive
    assert round(d.price_drift_bps, 4) == round((D(102) - D("100.5")) / D("100.5") * 10000, 4)
    sell = order_drift(Observation(OrderRequest(ClientOrderId("s"), "a", "BTC/USDT", Side.SELL, D(1), D(100), T0),
                                   BrokerReport(ClientOrderId("s"), OrderStatus.FILLED, None,
                                                (_fill("1", "99", Side.SELL),)), None))  # fmt: skip
    assert sell.live_slippage_bps == D(100) and sell.paper_price is None and sell.price_drift_bps is None
    (row,) = summarise([{"account": "a", "symbol": "BTC/USDT", "quantity": D(2), "live_filled": D(2),
                         "paper_filled": D(1), "price_drift_bps": D(10), "live_slippage_bps": D(200),
                         "paper_slippage_bps": D(50)}])  # fmt: skip
    assert (row["live_fill_rate"], row["paper_fill_rate"], row["orders"]) == (D(1), D("0.5"), 1)


def test_shadow_account_sends_live_records_live_and_measures_the_paper_drift(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id = f"shadow-{tag}", f"run-shadow-{tag}"
    intents = []
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", "shadow", D(1_000_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        for i in range(3):
            decision_id = DecisionId(f"d-shadow-{tag}-{i}")
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, 'BTC/USDT', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
                {"d": decision_id, "r": run_id, "a": account, "t": T0},
            )  # fmt: skip
            intents.append(OrderIntent(decision_id, account, "BTC/USDT", Side.BUY, D("0.01"), D("87500")))
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"})
    live, replay = binance_broker(venue)
    paper = PaperBroker(fee_bps=D(10), slippage_bps=D(5), kill_switch=lambda: OFF)
    shadow = ShadowBroker(live, paper)
    with engine.begin() as conn:
        result = execute(conn, intents, run_id=run_id, broker=shadow, settings=Settings(), event_time=T0,
                         last_prices={"BTC/USDT": D("87500")})  # fmt: skip
        drifts = record_drift(conn, shadow.take_observations())
        venues = set(conn.execute(text("select venue from audit.orders where account = :a"), {"a": account}).scalars())
        booked = conn.execute(text("select distinct price from audit.fills where account = :a"), {"a": account}).all()
    assert len(result.submitted) == 3 and len(creates(replay)) == 3 and venues == {"binance"}
    assert booked == [(D("87512.0"),)]  # the audit books the live fills, not the paper ones
    assert len(drifts) == 3
    d = drifts[0]
    assert d.live_price == D("87512.0") and d.paper_price == D("87500") * (1 + D(5) / 10000)
    assert d.live_slippage_bps == D(12) / D(87500) * 10000 and d.live_filled == d.paper_filled == D("0.01")
    assert d.price_drift_bps is not None and d.price_drift_bps < 0  # live filled better than paper assumed

    out = runner.invoke(app, ["drift", "--account", account])
    assert out.exit_code == 0, out.output
    line = next(row for row in out.output.splitlines() if account in row)
    assert "BTC/USDT" in line and " 3 " in line and "100.0%" in line and "+1.37" in line  # 12/87500 bps
    assert client_order_id_for(intents[0].decision_id, 0) == d.client_order_id
    unknown = runner.invoke(app, ["drift", "--account", "nobody"])  # an operator's typo: one line, exit 2 (issue 15)
    assert unknown.exit_code == 2 and "no account 'nobody'" in unknown.output
