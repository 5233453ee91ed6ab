"""The account view's "fees paid" values each fee in the currency the venue charged it in (issue 20): a forex or stock
broker charges its fees to the account's cash, so a USD commission on a USD/JPY fill is USD, never USD "coins" valued
at the fill's JPY price (the crypto rule of a fee taken out of the traded units). Real OANDA broker against the local
v20 stand-in, real PostgreSQL, rates from ``audit.fx_rates``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from support.oanda_standin import ACCOUNT_ID, T0, TOKEN, OandaStandIn

from alphaloom.domain import AccountId, DecisionId, OrderIntent, Side
from alphaloom.fx import store_rate
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.reporting.account_summary import account_summary
from alphaloom.settings import RiskSettings, Settings
from alphaloom.venues.oanda_client import OandaClient, OandaConfig
from execution.accounts.registry import ensure_account
from execution.brokers.oanda_broker import OandaBroker
from execution.submit import execute

D = Decimal
# A JPY account's notional limits are in JPY: 1000 USD/JPY is about 155,000 JPY.
SETTINGS = Settings(risk=RiskSettings(max_orders_per_run=10, max_order_notional=D(10**9),
                                      max_position_notional=D(10**9)))  # fmt: skip
USD_JPY = D("150")  # the rate stored: unlike the fill's price (155.135), so a fee valued at the fill's price shows


@pytest.fixture
def venue() -> Iterator[OandaStandIn]:
    standin = OandaStandIn(commission="0.0500").start()
    yield standin
    standin.stop()


def _usd_jpy_buy_with_a_usd_fee(engine: Engine, venue: OandaStandIn, base_currency: str) -> AccountId:
    tag = uuid.uuid4().hex[:8]
    account, run_id, decision_id = f"feepaid-{tag}", f"run-feepaid-{tag}", DecisionId(f"d-feepaid-{tag}")
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "oanda", base_currency, "live", D(100_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                 score, config_version, inputs)
                    values (:d, :r, :a, 'USD/JPY', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "t": T0},
        )  # fmt: skip
        store_rate(conn, "USD", "JPY", USD_JPY, T0 - timedelta(hours=1))
    client = OandaClient(OandaConfig(venue.url, TOKEN, ACCOUNT_ID), timeout=5)
    try:
        broker = OandaBroker(client, kill_switch=lambda: KillSwitchState(False, "", ""), settle_seconds=0,
                             sleep=lambda s: None)  # fmt: skip
        intent = OrderIntent(decision_id, account, "USD/JPY", Side.BUY, D(1000), D("155.13"))
        with engine.begin() as conn:
            (outcome,) = execute(conn, [intent], run_id=run_id, broker=broker, settings=SETTINGS,
                                 event_time=T0).submitted  # fmt: skip
    finally:
        client.close()
    (fill,) = outcome.fills
    assert (fill.price, fill.fee, fill.fee_currency, fill.fee_from_units) == (D("155.135"), D("0.05"), "USD", False)
    return AccountId(account)


def _fees_paid(engine: Engine, account: AccountId) -> Decimal:
    with engine.connect() as conn:
        view = account_summary(conn, account, exchange="oanda", timeframe="1h", bar="3600 seconds",
                               as_of=T0 + timedelta(hours=1))  # fmt: skip
    assert view is not None
    return view.fees_paid


def test_a_usd_fee_on_usd_jpy_is_paid_in_usd_in_a_usd_account(engine: Engine, venue: OandaStandIn) -> None:
    account = _usd_jpy_buy_with_a_usd_fee(engine, venue, "USD")
    assert _fees_paid(engine, account) == D("0.05")  # not 0.05 USD "coins" at 155.135 JPY, converted back
    with engine.connect() as conn:
        recorded = conn.execute(text("select fee, fee_currency, fee_from_units from audit.fills where account = :a"),
                                {"a": account}).one()  # fmt: skip
    assert (D(recorded.fee), recorded.fee_currency, recorded.fee_from_units) == (D("0.05"), "USD", False)


def test_a_usd_fee_on_usd_jpy_is_its_jpy_value_at_the_rate_in_a_jpy_account(
    engine: Engine, venue: OandaStandIn
) -> None:
    account = _usd_jpy_buy_with_a_usd_fee(engine, venue, "JPY")
    assert _fees_paid(engine, account) == D("0.05") * USD_JPY  # 7.5 JPY, not 0.05 * 155.135
