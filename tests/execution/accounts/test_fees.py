"""Fees booked in the currency the venue charged them in (issue 12, item 2): binance takes a buy's commission out of
the coins bought, so the position is the quantity less that fee, and a full-position sell asks for exactly what the
venue holds; a commission paid in BNB leaves the position whole and is a BNB balance. Recorded binance responses fed
to ccxt's binance class (``ccxt_replay``), real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from support.ccxt_replay import BinanceSpotVenue, VenueReplay, mount

from alphaloom.domain import ClientOrderId, DecisionId, Fill, OrderIntent, OrderStatus, Side, Symbol
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.reporting.account_summary import account_summary
from alphaloom.settings import RiskSettings, Settings
from alphaloom.venues.ccxt_exchange import make_exchange
from execution.accounts.registry import ensure_account
from execution.brokers.base import OrderRequest
from execution.brokers.ccxt_broker import CcxtBroker
from execution.submit import execute

D = Decimal
T0 = datetime(2026, 1, 1, 1, tzinfo=UTC)


def _broker(venue: BinanceSpotVenue) -> tuple[CcxtBroker, VenueReplay]:
    exchange = make_exchange(
        "binance",
        {"enableRateLimit": False, "apiKey": "test-key", "secret": "test-secret",
         "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}},
    )  # fmt: skip
    replay = mount(exchange, venue.routes())
    return CcxtBroker(exchange, kill_switch=lambda: KillSwitchState(False, "", ""), symbols=("BTC/USDT",)), replay


def _sent_quantities(replay: VenueReplay) -> list[tuple[str, str]]:
    return [(q["side"], q["quantity"]) for m, p, q in replay.requests if (m, p) == ("POST", "/api/v3/order")]


def _account(engine: Engine) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    account, run_id = f"fee-{tag}", f"run-fee-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", "live", D(1_000_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
    return account, run_id


def _intent(engine: Engine, account: str, run_id: str, side: Side, quantity: Decimal, n: int) -> OrderIntent:
    decision_id = DecisionId(f"d-{account}-{n}")
    with engine.begin() as conn:
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                  score, config_version, inputs)
                    values (:d, :r, :a, 'BTC/USDT', '1h', :t, :s, 1.0, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "t": T0, "s": side.value},
        )  # fmt: skip
    return OrderIntent(decision_id, account, "BTC/USDT", side, quantity, D("87500"))


def _held(engine: Engine, account: str) -> tuple[Decimal, dict[str, Decimal]]:
    with engine.connect() as conn:
        quantity = conn.execute(
            text("select quantity from audit.positions where account = :a and symbol = 'BTC/USDT'"), {"a": account}
        ).scalar()
        balances = dict(
            conn.execute(text("select currency, amount from audit.balances where account = :a"), {"a": account}).all()
        )
    return D(quantity), {c: D(a) for c, a in balances.items()}


def test_fee_currency_is_where_the_venue_charged_it() -> None:
    from execution.accounts.holdings import FeeIn, Holding, apply_fill, cash_change, fee_charged_in

    assert fee_charged_in("BTC/USDT", "USDT") is FeeIn.QUOTE
    assert fee_charged_in("BTC/USDT", "BTC") is FeeIn.BASE
    assert fee_charged_in("BTC/USDT", "BNB") is FeeIn.OTHER
    held = apply_fill(Holding.flat(), side=Side.BUY, quantity=D("0.01"), price=D(100), fee=D("0.00001"),
                      fee_in=FeeIn.BASE)  # fmt: skip
    assert held.quantity == D("0.00999") and held.quantity * held.avg_price == D(1)  # cost: what was paid
    assert cash_change(side=Side.BUY, quantity=D("0.01"), price=D(100), fee=D("0.00001"), fee_in=FeeIn.BASE) == -1


def test_binance_fill_with_the_fee_in_the_base_coin_holds_what_the_venue_holds(engine: Engine) -> None:
    account, run_id = _account(engine)
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"}, fee_asset="base")
    broker, replay = _broker(venue)
    settings = Settings(risk=RiskSettings(max_orders_per_run=1000))
    buy = _intent(engine, account, run_id, Side.BUY, D("0.01"), 0)
    with engine.begin() as conn:
        (outcome,) = execute(conn, [buy], run_id=run_id, broker=broker, settings=settings, event_time=T0).submitted
    (fill,) = outcome.fills
    assert (fill.fee, fill.fee_currency) == (D("0.00001"), "BTC")  # as the venue charged it, not converted
    quantity, balances = _held(engine, account)
    assert quantity == D("0.00999")  # 0.01 bought, 0.00001 BTC commission taken out of it by the venue
    assert balances["USDT"] == D(1_000_000) - D("0.01") * D("87512")  # no fee in the quote cash
    with engine.connect() as conn:
        booked = conn.execute(
            text("select fee, fee_currency from audit.fills where account = :a"), {"a": account}
        ).one()
    assert (D(booked.fee), booked.fee_currency) == (D("0.00001"), "BTC")
    with engine.connect() as conn:  # the account view values coins taken as fee at their fill's price: no BTC rate
        view = account_summary(conn, account, exchange="binance", timeframe="1h", bar="3600 seconds", as_of=T0)
    assert view is not None and view.fees_paid == D("0.00001") * D("87512")
    assert [(p.symbol, p.quantity) for p in view.positions] == [("BTC/USDT", D("0.00999"))]

    venue.fee_asset = "quote"  # binance charges a sell's commission in the quote it pays out
    sell = _intent(engine, account, run_id, Side.SELL, quantity, 1)
    with engine.begin() as conn:
        result = execute(conn, [sell], run_id=run_id, broker=broker, settings=settings, event_time=T0)
    assert [o.status for o in result.submitted] == [OrderStatus.FILLED] and result.refused == []
    assert _sent_quantities(replay) == [("BUY", "0.01"), ("SELL", "0.00999")]  # exactly what the venue holds
    assert _held(engine, account)[0] == 0


def test_binance_fill_with_the_fee_in_bnb_is_a_bnb_balance(engine: Engine) -> None:
    account, run_id = _account(engine)
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"}, fee_asset="BNB")
    broker, _ = _broker(venue)
    buy = _intent(engine, account, run_id, Side.BUY, D("0.01"), 0)
    with engine.begin() as conn:
        result = execute(conn, [buy], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
    (outcome,) = result.submitted
    assert outcome.status is OrderStatus.FILLED
    assert [(f.fee, f.fee_currency) for f in outcome.fills] == [(D("0.00001"), "BNB")]
    quantity, balances = _held(engine, account)
    assert quantity == D("0.01")  # the venue took the fee from BNB: the coins bought are all held
    assert balances == {"USDT": D(1_000_000) - D("0.01") * D("87512"), "BNB": -D("0.00001")}
    with engine.connect() as conn:
        avg = D(conn.execute(text("select avg_price from audit.positions where account = :a"), {"a": account}).scalar())
    assert avg == D("87512")  # the BNB fee is not a quote cost


@pytest.mark.parametrize("fee_asset", ["base", "BNB"])
def test_broker_reports_the_fee_in_the_currency_charged(fee_asset: str) -> None:
    broker, _ = _broker(BinanceSpotVenue({"BTCUSDT": "87512.00"}, fee_asset=fee_asset))
    request = OrderRequest(ClientOrderId(f"al-fee-{fee_asset}"), "acct", "BTC/USDT", Side.BUY, D("0.01"), D(87500), T0)
    (fill,) = broker.submit(request).fills
    assert (fill.fee, fill.fee_currency) == (D("0.00001"), "BTC" if fee_asset == "base" else "BNB")


def test_a_base_currency_fee_at_a_cash_charging_venue_is_paid_from_cash_not_from_the_position() -> None:
    """Forex and stock brokers charge fees to the account's cash: a USD fee on USD/JPY is a USD balance change (like
    a fee in a third asset), never units out of the position; crypto venues keep taking base fees from the coins."""
    from execution.accounts.holdings import FeeIn, Holding, apply_fill, fee_cash, fee_charged_in

    assert fee_charged_in("USD/JPY", "USD", from_units=False) is FeeIn.OTHER
    assert fee_charged_in("EUR/USD", "USD", from_units=False) is FeeIn.QUOTE
    assert fee_charged_in("EUR/JPY", "USD", from_units=False) is FeeIn.OTHER
    assert fee_charged_in("BTC/USDT", "BTC") is FeeIn.BASE  # crypto unchanged
    fill = Fill(ClientOrderId("c-1"), Symbol("USD/JPY"), Side.BUY, D(1000), D("155.135"), D("0.05"), "USD", D(0),
                T0, fee_from_units=False)  # fmt: skip
    assert fee_cash(fill) == ("USD", D("-0.05"))
    held = apply_fill(Holding.flat(), side=Side.BUY, quantity=D(1000), price=D("155.135"), fee=D("0.05"),
                      fee_in=fee_charged_in("USD/JPY", "USD", from_units=False))  # fmt: skip
    assert held.quantity == D(1000)
