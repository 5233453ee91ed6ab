"""Quote venues in smart routing: Alpaca and OANDA show no order book, so each offers its best bid/ask (with the size
where it gives one) and its fee schedule, read as a one-level book. The router compares them with ccxt books on the
all-in cost in the account's base currency, leaves out a venue whose quote is missing, untradeable or stale (recorded
with the reason, never a guessed price), and the legs go out through the real adapters (alpaca-py, the v20 client)
against their stand-ins on 127.0.0.1, the plan in PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text
from support.alpaca_standin import AlpacaStandIn, broker_on, iso
from support.eurusd_venue import eur_usd_broker, eur_usd_venue
from support.oanda_standin import ACCOUNT_ID, TOKEN, OandaStandIn

from alphaloom.domain import DecisionId, OrderIntent, Side, Symbol, client_order_id_for
from alphaloom.errors import VenueTemporaryError
from alphaloom.fx import store_rate
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import RiskSettings, Settings
from alphaloom.venues.oanda_client import OandaClient, OandaConfig
from execution.accounts.registry import ensure_account
from execution.algos.quotes import Quote, QuoteFees, quote_book, quote_problem
from execution.algos.routing import EXCLUDED, QuoteVenueBroker, RoutingBroker, plan_legs
from execution.algos.splitting import VenueBook, route_by_depth
from execution.brokers.alpaca_broker import AlpacaBroker
from execution.brokers.alpaca_mapping import SELL_FEES
from execution.brokers.oanda_broker import OandaBroker
from execution.submit import execute

D = Decimal
OFF = KillSwitchState(False, "", "")
FX_T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)  # the OANDA stand-in's clock: a Wednesday, the forex week open
SETTINGS = Settings(risk=RiskSettings(max_order_notional=D(100_000), max_position_notional=D(100_000),
                                      max_orders_per_run=1000))  # fmt: skip


# -- pure: a quote as a one-level book ---------------------------------------------------------------------------------


def _quote(**changes: Any) -> Quote:
    fields: dict[str, Any] = {"venue": "alpaca", "symbol": Symbol("AAPL"), "bid": D("187.23"), "ask": D("187.28"),
                              "at": FX_T0, "currency": "USD", "bid_size": D(200), "ask_size": D(300)}  # fmt: skip
    return Quote(**{**fields, **changes})


def test_a_quote_is_a_one_level_book_with_its_fees_in_bps() -> None:
    now, age = FX_T0 + timedelta(seconds=5), timedelta(seconds=30)
    buy = quote_book(_quote(), Side.BUY, SELL_FEES, quantity=D(1000), now=now, max_age=age)
    assert buy == VenueBook("alpaca", ((D("187.28"), D(300)),), D(0), currency="USD")  # commission-free buying
    sell = quote_book(_quote(), Side.SELL, SELL_FEES, quantity=D(1000), now=now, max_age=age)
    # selling pays Section 31 (0.278 bps) and FINRA's $0.000166 a share: 0.000166 / 187.23 * 10000 bps more
    assert sell.levels == ((D("187.23"), D(200)),)
    assert sell.fee_bps == D("0.278") + D("0.000166") / D("187.23") * 10000
    # no size given (a venue that shows none): the whole quantity at that price
    sizeless = quote_book(_quote(ask_size=None), Side.BUY, QuoteFees(), quantity=D(7), now=now, max_age=age)
    assert sizeless.levels == ((D("187.28"), D(7)),)
    assert QuoteFees(commission_bps=D(5)).bps(Side.BUY, D(10)) == D(5)


@pytest.mark.parametrize(
    ("changes", "side", "reason"),
    [
        ({"ask": None}, Side.BUY, "alpaca: no ask quoted for AAPL"),
        ({"bid": D(0)}, Side.SELL, "alpaca: no bid quoted for AAPL"),
        ({"ask_size": D(0)}, Side.BUY, "alpaca: no size at the ask of AAPL"),
        ({"at": None}, Side.BUY, "alpaca: the AAPL quote has no time"),
        ({"at": FX_T0 - timedelta(minutes=2)}, Side.BUY, "is stale: 125 s old, more than 30 s"),
        ({"tradeable": False}, Side.SELL, "alpaca: the AAPL quote is not tradeable now"),
    ],
)
def test_a_missing_stale_or_untradeable_quote_is_refused_with_its_reason(
    changes: dict[str, Any], side: Side, reason: str
) -> None:
    now, age = FX_T0 + timedelta(seconds=5), timedelta(seconds=30)
    problem = quote_problem(_quote(**changes), side, now=now, max_age=age)
    assert problem is not None and reason in problem
    with pytest.raises(VenueTemporaryError, match=reason.split(": ")[-1]):
        quote_book(_quote(**changes), side, QuoteFees(), quantity=D(1), now=now, max_age=age)
    assert quote_problem(_quote(), side, now=now, max_age=age) is None


def test_venues_pricing_in_different_currencies_are_ranked_in_the_base_currency() -> None:
    # a USD account: venue a asks 100 USD; venue b asks 95 EUR, at 1.10 USD per EUR 104.5 USD: a is cheaper
    a = VenueBook("a", ((D(100), D(1)),), D(0), currency="USD")
    b = VenueBook("b", ((D(95), D(5)),), D(0), currency="EUR", rate=D("1.10"))
    intent = OrderIntent(DecisionId("d-ccy"), "acct", "XYZ/USD", Side.BUY, D(3), D(100))
    legs = plan_legs(intent, [a, b])
    # a's 1 first, then b's 2 (its price stays in EUR); each leg's arrival in its venue's own currency
    assert [(leg.venue, leg.quantity, leg.venue_price) for leg in legs] == [("a", D(1), D(100)), ("b", D(2), D(95))]
    assert legs[0].arrival_price == D(100) and legs[1].arrival_price == D(100) / D("1.10")
    # at 1.00 USD per EUR, b is the cheaper one and takes everything it shows
    cheap = route_by_depth(D(3), Side.BUY, [a, VenueBook("b", ((D(95), D(5)),), D(0), currency="EUR")])
    assert [(s.venue, s.quantity) for s in cheap] == [("b", D(3))]
    with pytest.raises(ValueError, match="rate into the base currency must be positive"):
        VenueBook("c", ((D(1), D(1)),), D(0), rate=D(0))


# -- the real adapters against their stand-ins -------------------------------------------------------------------------


@pytest.fixture
def fx_venue() -> Iterator[OandaStandIn]:
    standin = OandaStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def stocks() -> Iterator[AlpacaStandIn]:
    standin = AlpacaStandIn().start()
    yield standin
    standin.stop()


def _oanda(standin: OandaStandIn) -> OandaBroker:
    client = OandaClient(OandaConfig(standin.url, TOKEN, ACCOUNT_ID), timeout=5)
    return OandaBroker(client, kill_switch=lambda: OFF, settle_seconds=0, sleep=lambda s: None)


def _fx_account(engine: Engine, tag: str, decisions: int) -> tuple[str, str, list[DecisionId]]:
    account, run_id = f"qroute-{tag}", f"run-qroute-{tag}"
    ids = [DecisionId(f"d-qroute-{tag}-{n}") for n in range(decisions)]
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "oanda", "USD", "live", D(1_000_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        for decision_id in ids:
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, 'EUR/USD', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
                {"d": decision_id, "r": run_id, "a": account, "t": FX_T0},
            )  # fmt: skip
    return account, run_id, ids


def _plan(engine: Engine, decision_id: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(text("select venue, quantity, venue_price, fee_bps, effective_price, arrival_price "
                                 "from audit.route_legs where decision_id = :d order by leg"),
                            {"d": decision_id}).all()  # fmt: skip
    return [tuple(r) for r in rows]


def _trips(engine: Engine, account: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(text("select client_order_id, guard, reason, numbers->>'venue' from audit.guard_trips "
                                 "where account = :a order by id"), {"a": account}).all()  # fmt: skip
    return [tuple(r) for r in rows]


def test_oanda_and_a_ccxt_venue_the_cheaper_all_in_leg_wins_and_a_stale_quote_is_left_out_with_its_reason(
    engine: Engine, fx_venue: OandaStandIn
) -> None:
    """OANDA asks 1.08420 with no commission; the ccxt venue asks 1.08400 but charges 10 bps (1.08508 all in): the
    whole buy goes to OANDA. Then OANDA's price is two minutes old: it is left out, recorded with the reason, and the
    order goes to the ccxt venue; OANDA is never asked to trade on a price it did not quote now."""
    tag = uuid.uuid4().hex[:8]
    account, run_id, (first, second) = _fx_account(engine, tag, 2)
    binance = eur_usd_venue()
    bn, bn_replay = eur_usd_broker(binance)
    oanda = _oanda(fx_venue)
    assert isinstance(oanda, QuoteVenueBroker) and not isinstance(bn, QuoteVenueBroker)
    router = RoutingBroker({"binance": bn, "oanda": oanda}, fee_bps={"binance": D(10)}, clock=lambda: fx_venue.clock)

    intent = OrderIntent(first, account, "EUR/USD", Side.BUY, D(1000), D("1.0841"))
    with engine.begin() as conn:
        result = execute(conn, [intent], run_id=run_id, broker=router, settings=SETTINGS, event_time=FX_T0,
                         last_prices={"EUR/USD": D("1.0841")})  # fmt: skip
    leg = client_order_id_for(first, 1)
    assert [o.client_order_id for o in result.submitted] == [leg]
    assert _plan(engine, first) == [("oanda", D(1000), D("1.08420"), D(0), D("1.08420"), D("1.08400"))]
    assert fx_venue.count(leg) == 1 and binance.count(leg) == 0
    # OANDA's price read twice: by the plan, then by the price band just before the leg left
    assert [q["instruments"] for m, p, q in fx_venue.requests if p.endswith("/pricing")] == ["EUR_USD"] * 2
    assert _trips(engine, account) == []  # every venue was usable

    fx_venue.price_times["EUR_USD"] = fx_venue.clock - timedelta(minutes=2)
    intent = OrderIntent(second, account, "EUR/USD", Side.BUY, D(1000), D("1.0841"))
    with engine.begin() as conn:
        execute(conn, [intent], run_id=run_id, broker=router, settings=SETTINGS, event_time=FX_T0,
                last_prices={"EUR/USD": D("1.0841")})  # fmt: skip
    leg = client_order_id_for(second, 1)
    assert _plan(engine, second) == [("binance", D(1000), D("1.08400"), D(10), D("1.08508400"), D("1.08400"))]
    assert binance.count(leg) == 1 and fx_venue.count(leg) == 0
    [(parent, guard, reason, venue)] = _trips(engine, account)
    assert (parent, guard, venue) == (client_order_id_for(second, 0), EXCLUDED, "oanda")
    assert "EUR/USD quote of 2024-05-01T08:58:00+00:00 is stale: 120 s old, more than 30 s" in reason
    with engine.connect() as conn:
        venues = dict(conn.execute(text("select client_order_id, venue from audit.orders where account = :a"),
                                   {"a": account}).all())  # fmt: skip
    assert venues == {client_order_id_for(first, 1): "oanda", client_order_id_for(second, 1): "binance"}
    assert [q["newClientOrderId"] for m, p, q in bn_replay.requests if (m, p) == ("POST", "/api/v3/order")] == [leg]


def test_an_untradeable_quote_alone_sends_nothing_and_says_why(engine: Engine, fx_venue: OandaStandIn) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, (decision_id,) = _fx_account(engine, tag, 1)
    fx_venue.untradeable.add("EUR_USD")
    router = RoutingBroker({"oanda": _oanda(fx_venue)}, clock=lambda: fx_venue.clock)
    intent = OrderIntent(decision_id, account, "EUR/USD", Side.SELL, D(500), D("1.0841"))
    with pytest.raises(VenueTemporaryError, match="EUR/USD quote is not tradeable now"), engine.begin() as conn:
        execute(conn, [intent], run_id=run_id, broker=router, settings=SETTINGS, event_time=FX_T0,
                last_prices={"EUR/USD": D("1.0841")})  # fmt: skip
    assert _plan(engine, decision_id) == [] and fx_venue.creates(client_order_id_for(decision_id, 1)) == 0
    assert [(g, v) for _, g, _, v in _trips(engine, account)] == [(EXCLUDED, "oanda")]


def test_a_venue_pricing_in_another_currency_is_compared_at_the_rate_known_now_or_left_out(
    engine: Engine, fx_venue: OandaStandIn
) -> None:
    """The ccxt venue's EUR/USD book is configured as priced in USDT: with 1 USDT = 0.998 USD stored, its 1.08400
    costs 1.08183 USD and beats OANDA's 1.08420; with no USDT rate known it is left out (recorded), never taken 1:1."""
    tag = uuid.uuid4().hex[:8]
    account, run_id, (first,) = _fx_account(engine, tag, 1)
    binance = eur_usd_venue()
    bn, _ = eur_usd_broker(binance)
    ccy = f"U{tag[:5].upper()}"  # a currency of this test alone: no other test's rate is known for it
    router = RoutingBroker({"binance": bn, "oanda": _oanda(fx_venue)}, currencies={"binance": ccy},
                           fee_bps={"binance": D(0)}, clock=lambda: fx_venue.clock)  # fmt: skip
    with engine.begin() as conn:
        books, _ = router.books(Symbol("EUR/USD"), Side.BUY, D(1000))
        kept, skipped = router.in_base_currency(conn, account, Symbol("EUR/USD"), books)
    assert [b.venue for b in kept] == ["oanda"] and f"no fx rate from {ccy} into {account}" in skipped["binance"]
    with engine.begin() as conn:
        store_rate(conn, ccy, "USD", D("0.998"), fx_venue.clock - timedelta(hours=1))
        store_rate(conn, ccy, "USD", D("2"), fx_venue.clock + timedelta(hours=1))  # not known yet: never used
    intent = OrderIntent(first, account, "EUR/USD", Side.BUY, D(1000), D("1.0841"))
    with engine.begin() as conn:
        execute(conn, [intent], run_id=run_id, broker=router, settings=SETTINGS, event_time=FX_T0,
                last_prices={"EUR/USD": D("1.0841")})  # fmt: skip
    # the best touch in USD is binance's 1.08400 * 0.998; in its own currency that is its ask
    assert _plan(engine, first) == [("binance", D(1000), D("1.08400"), D(0), D("1.08400"), D("1.08400"))]
    assert _trips(engine, account) == []
    # the audit keeps what the leg was ranked at: its venue's currency and the rate into the account's currency
    with engine.connect() as conn:
        ranked = conn.execute(text("select currency, base_rate from audit.route_legs where decision_id = :d"),
                              {"d": first}).all()  # fmt: skip
    assert [tuple(r) for r in ranked] == [(ccy, D("0.998"))]


def test_alpaca_quotes_its_latest_quote_in_shares_and_prices_sells_with_the_regulatory_fees(
    engine: Engine, stocks: AlpacaStandIn
) -> None:
    alpaca = broker_on(stocks)
    assert isinstance(alpaca, AlpacaBroker) and isinstance(alpaca, QuoteVenueBroker)
    quote = alpaca.venue_quote(Symbol("AAPL"))
    # the documented shape: ap/bp with as/bs in round lots of 100 shares, t the quote's time
    assert quote == Quote("alpaca", Symbol("AAPL"), D("187.23"), D("187.28"), stocks.now, "USD", D(200), D(300))
    assert alpaca.quote_fees(Symbol("AAPL")) == SELL_FEES
    router = RoutingBroker({"alpaca": alpaca}, clock=lambda: stocks.now)
    [sell], skipped = router.books(Symbol("AAPL"), Side.SELL, D(50))
    assert skipped == {} and sell.fee_bps == SELL_FEES.bps(Side.SELL, D("187.23")) and sell.currency == "USD"
    # a quote Alpaca left out (no quote for the symbol), a zero ask, an old one: the venue is left out, with why
    stocks.unquoted.add("AAPL")
    _, skipped = router.read_books(Symbol("AAPL"), Side.BUY, D(50))
    assert "alpaca: no ask quoted for AAPL" in skipped["alpaca"]
    stocks.unquoted.clear()
    stocks.quotes["AAPL"] = {"ap": 0}
    _, skipped = router.read_books(Symbol("AAPL"), Side.BUY, D(50))
    assert "alpaca: no ask quoted for AAPL" in skipped["alpaca"]
    stocks.quotes["AAPL"] = {"t": iso(stocks.now - timedelta(minutes=5))}
    with pytest.raises(VenueTemporaryError, match="is stale: 300 s old"):
        router.books(Symbol("AAPL"), Side.BUY, D(50))
    assert [p for _, p, _, _ in stocks.requests if "quotes" in p] == ["/v2/stocks/quotes/latest"] * 5


def test_a_routed_alpaca_sell_goes_out_through_alpaca_and_a_stale_quote_sends_nothing(
    engine: Engine, stocks: AlpacaStandIn
) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id = f"qroute-alpaca-{tag}", f"run-qroute-alpaca-{tag}"
    ids = [DecisionId(f"d-qroute-alpaca-{tag}-{n}") for n in range(2)]
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "alpaca", "USD", "live", D(100_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        for decision_id in ids:
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, 'AAPL', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
                {"d": decision_id, "r": run_id, "a": account, "t": stocks.now},
            )  # fmt: skip
    router = RoutingBroker({"alpaca": broker_on(stocks)}, clock=lambda: stocks.now)
    intent = OrderIntent(ids[0], account, "AAPL", Side.BUY, D(4), D("187.20"))
    with engine.begin() as conn:
        result = execute(conn, [intent], run_id=run_id, broker=router, settings=SETTINGS, event_time=stocks.now,
                         last_prices={"AAPL": D("187.20")})  # fmt: skip
    leg = client_order_id_for(ids[0], 1)
    assert [o.client_order_id for o in result.submitted] == [leg] and stocks.by_client_id(leg) is not None
    assert _plan(engine, ids[0]) == [("alpaca", D(4), D("187.28"), D(0), D("187.28"), D("187.28"))]

    stocks.quotes["AAPL"] = {"t": iso(stocks.now - timedelta(minutes=1))}
    creates = len(stocks.creates())
    intent = OrderIntent(ids[1], account, "AAPL", Side.SELL, D(4), D("187.20"))
    with pytest.raises(VenueTemporaryError, match="stale"), engine.begin() as conn:
        execute(conn, [intent], run_id=run_id, broker=router, settings=SETTINGS, event_time=stocks.now,
                last_prices={"AAPL": D("187.20")})  # fmt: skip
    assert len(stocks.creates()) == creates and _plan(engine, ids[1]) == []
    [(parent, guard, reason, venue)] = _trips(engine, account)
    assert (parent, guard, venue) == (client_order_id_for(ids[1], 0), EXCLUDED, "alpaca") and "60 s old" in reason


def test_a_routed_leg_meets_the_price_band_at_its_venue_before_it_is_sent(engine: Engine) -> None:
    """The price band (the venue's price now against the decision's) guards routed legs too: the book the plan read
    shows 1.08400, but the venue's price now is 1.20000, 10.7% above the decision's 1.0841 (band 5%): the leg is
    refused with the numbers and nothing is sent. (Before, the router quoted nothing, so routed legs went out with no
    band at all.)"""
    tag = uuid.uuid4().hex[:8]
    account, run_id, (decision_id,) = _fx_account(engine, tag, 1)
    binance = eur_usd_venue()
    binance.prices["EURUSD"] = "1.20000"  # the ticker (and where a market order would fill) has moved away
    bn, bn_replay = eur_usd_broker(binance)
    router = RoutingBroker({"binance": bn}, fee_bps={"binance": D(10)})
    intent = OrderIntent(decision_id, account, "EUR/USD", Side.BUY, D(1000), D("1.0841"))
    with engine.begin() as conn:
        result = execute(conn, [intent], run_id=run_id, broker=router, settings=SETTINGS, event_time=FX_T0,
                         last_prices={"EUR/USD": D("1.0841")})  # fmt: skip
    assert result.submitted == [] and [(r.intent.leg, [b.limit for b in r.breaches]) for r in result.refused] == [
        (1, ["price_band"])]  # fmt: skip
    assert [p for m, p, q in bn_replay.requests if (m, p) == ("POST", "/api/v3/order")] == []
    assert binance.count(client_order_id_for(decision_id, 1)) == 0
    with engine.connect() as conn:
        guards = conn.execute(text("select guard, reason from audit.guard_trips where account = :a"),
                              {"a": account}).all()  # fmt: skip
    assert [g for g, _ in guards] == ["price_band"] and "1.2" in guards[0][1]
