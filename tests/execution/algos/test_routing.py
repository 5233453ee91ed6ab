"""Smart routing across two venues (ccxt's binance and binanceus classes, each on its own recorded stand-in): several
levels of each order book are walked from the best price after fees, one leg per venue at its size-weighted expected
price, the plan is saved before any send, and a crash after the first leg leaves a rerun sending only the missing
leg, to the venue its plan names."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from support.binance_broker import OFF, T0
from support.ccxt_replay import BinanceSpotVenue, Handler, VenueReplay, mount, recorded

from alphaloom.domain import DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.settings import RiskSettings, Settings
from alphaloom.venues.ccxt_exchange import make_exchange
from execution.accounts.reconcile import reconcile_account
from execution.accounts.registry import ensure_account
from execution.algos.routing import RoutingBroker, plan_legs
from execution.algos.splitting import BookTop, VenueBook, route_by_depth
from execution.brokers.base import LegRoutingBroker
from execution.brokers.ccxt_broker import CcxtBroker
from execution.brokers.paper import PaperBroker
from execution.submit import execute

D = Decimal


class SimulatedCrash(Exception):
    """The process dies: nothing catches it, the caller's transaction rolls back."""


def test_the_router_is_a_broker_wrapper_execute_asks_for_legs() -> None:
    paper = PaperBroker(fee_bps=D(0), slippage_bps=D(0), kill_switch=lambda: OFF)
    router = RoutingBroker({"binance": paper})  # type: ignore[dict-item]
    assert isinstance(router, LegRoutingBroker) and not router.live  # live when a venue is: a paper one is not
    assert not isinstance(paper, LegRoutingBroker)


def test_plan_legs_by_hand_best_after_fees_first_split_by_depth() -> None:
    intent = OrderIntent(DecisionId("d-route"), "acct", "BTC/USDT", Side.BUY, D("0.5"), D(87500))
    tops = [BookTop("binance", D(87500), D(1), D(10)), BookTop("binanceus", D(87510), D("0.3"), D(0))]
    legs = plan_legs(intent, tops)
    # after fees: binance 87500 * 1.001 = 87587.5, binanceus 87510: binanceus first, up to its 0.3 at the top
    assert [(leg.venue, leg.quantity, leg.leg, leg.effective_price) for leg in legs] == [
        ("binanceus", D("0.3"), 1, D(87510)), ("binance", D("0.2"), 2, D("87587.5"))]  # fmt: skip
    assert {leg.arrival_price for leg in legs} == {D(87500)}  # the best raw touch when planned
    assert legs[0].client_order_id == client_order_id_for(intent.decision_id, 1)
    sell = plan_legs(OrderIntent(DecisionId("d-s"), "acct", "BTC/USDT", Side.SELL, D(2), D(87500)),
                     [BookTop("a", D(100), D(1), D(0)), BookTop("b", D(101), D(1), D(200))])  # fmt: skip
    # selling: a receives 100, b 101 * 0.98 = 98.98: a first; what the tops cannot take goes to the best venue
    assert [(leg.venue, leg.quantity) for leg in sell] == [("a", D(1)), ("b", D(1))]
    assert sell[0].arrival_price == D(101)


def test_plan_legs_walks_several_levels_of_each_book_by_hand() -> None:
    a = VenueBook("a", ((D(100), D(1)), (D(101), D(3))), D(10))  # after fees: 100.1, 101.101
    b = VenueBook("b", ((D("100.05"), D("0.5")), (D("100.5"), D(1)), (D(102), D("4.5"))), D(0))  # 100.05, 100.5, 102
    intent = OrderIntent(DecisionId("d-depth"), "acct", "BTC/USDT", Side.BUY, D("3.5"), D(100))
    legs = plan_legs(intent, [a, b])
    # walk: b 0.5 @ 100.05, a 1 @ 100 (100.1 after fees), b 1 @ 100.5, a 1 @ 101 (101.101 after fees): done
    # b: (50.025 + 100.5) / 1.5 = 100.35; a: (100 + 101) / 2 = 100.5, after its fee 100.5 * 1.001 = 100.6005
    assert [(leg.venue, leg.quantity, leg.venue_price, leg.effective_price, leg.leg) for leg in legs] == [
        ("b", D("1.5"), D("100.35"), D("100.35"), 1), ("a", D(2), D("100.5"), D("100.6005"), 2)]  # fmt: skip
    assert {leg.arrival_price for leg in legs} == {D(100)}  # a's best ask, before fees
    assert sum(leg.quantity for leg in legs) == intent.quantity
    # 12 is more than both books show (4 + 6): the 2 left go to the best venue (b, 100.05 after fees) priced at the
    # worst level read there: b = (50.025 + 100.5 + 459 + 2 * 102) / 8 = 101.690625; a = (100 + 303) / 4 = 100.75
    over = route_by_depth(D(12), Side.BUY, [a, b])
    assert [(s.venue, s.quantity, s.price) for s in over] == [("b", D(8), D("101.690625")), ("a", D(4), D("100.75"))]
    # selling 2: b's second bid after its 20 bps fee (99.2 * 0.998 = 99.0016) still beats a's best (99, no fee)
    sell = plan_legs(OrderIntent(DecisionId("d-depth-s"), "acct", "BTC/USDT", Side.SELL, D(2), D(99)),
                     [VenueBook("a", ((D(99), D(1)), (D(98), D(5))), D(0)),
                      VenueBook("b", ((D("99.5"), D(1)), (D("99.2"), D(3))), D(20))])  # fmt: skip
    assert [(leg.venue, leg.quantity, leg.venue_price, leg.effective_price) for leg in sell] == [
        ("b", D(2), D("99.35"), D("99.1513"))]  # fmt: skip
    assert sell[0].arrival_price == D("99.5")  # the highest bid
    with pytest.raises(ValueError, match="empty: the book has no levels"):
        VenueBook("empty", (), D(0))
    with pytest.raises(ValueError, match="neg: book level"):
        VenueBook("neg", ((D(-1), D(1)),), D(0))
    with pytest.raises(ValueError, match="positive quantity"):
        route_by_depth(D(0), Side.BUY, [a])


def test_the_router_reads_depth_levels_of_each_venue_book_and_plans_across_them() -> None:
    depth = recorded("binance_depth.json")  # Binance's documented /api/v3/depth shape, four levels a side
    binance, binanceus = BinanceSpotVenue({"BTCUSDT": "87500.00"}), BinanceSpotVenue({"BTCUSDT": "87560.00"})
    binance.book["BTCUSDT"] = {"asks": depth["asks"], "bids": depth["bids"]}  # type: ignore[index]
    binanceus.book["BTCUSDT"] = {"asks": [["87560.00", "0.4"], ["87590.00", "2.0"]], "bids": [["87400.00", "1"]]}
    bn, bn_replay = _venue("binance", binance)
    us, _ = _venue("binanceus", binanceus)
    router = RoutingBroker({"binance": bn, "binanceus": us}, fee_bps={"binance": D(10), "binanceus": D(0)}, depth=3)
    books, skipped = router.books("BTC/USDT", Side.BUY)
    assert skipped == {}
    assert [q.get("limit") for m, p, q in bn_replay.requests if p == "/api/v3/depth"] == ["3"]
    assert books[0] == VenueBook(
        "binance", ((D(87500), D("0.5")), (D(87502), D("0.5")), (D(87510), D("1.5"))), D(10), currency="USDT"
    )  # priced in the symbol's quote currency
    intent = OrderIntent(DecisionId("d-depth-live"), "acct", "BTC/USDT", Side.BUY, D("1.4"), D(87500))
    legs = plan_legs(intent, books)
    # after fees: binance 87587.5, 87589.502, 87597.51; binance.us 87560, 87590. binance.us 0.4 @ 87560 first, then
    # binance 0.5 @ 87500 and 0.5 @ 87502 (both below binance.us' 87590): binance's leg at (87500 + 87502) / 2 = 87501
    assert [(leg.venue, leg.quantity, leg.venue_price) for leg in legs] == [
        ("binanceus", D("0.4"), D(87560)), ("binance", D(1), D(87501))]  # fmt: skip
    assert legs[1].effective_price == D("87588.501") and legs[0].arrival_price == D(87500)
    sells, _ = router.books("BTC/USDT", Side.SELL)
    assert sells[0].levels[0] == (D(87490), D("0.4")) and len(sells[0].levels) == 3
    # a venue whose side of the book is empty is left out of the plan, with the reason
    binanceus.book["BTCUSDT"] = {"asks": [], "bids": [["87400.00", "1"]]}
    books, skipped = router.books("BTC/USDT", Side.BUY)
    assert [b.venue for b in books] == ["binance"] and "the BTC/USDT book has no asks" in skipped["binanceus"]


def _venue(
    exchange_id: str, venue: BinanceSpotVenue, crash_after_accept: bool = False
) -> tuple[CcxtBroker, VenueReplay]:
    exchange = make_exchange(
        exchange_id,
        {"enableRateLimit": False, "apiKey": "test-key", "secret": "test-secret",
         "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}},
    )  # fmt: skip
    routes: dict[str, Handler] = venue.routes()
    if crash_after_accept:
        accept = routes["POST /api/v3/order"]

        def accept_then_die(q: dict[str, str]) -> tuple[int, object]:
            accept(q)  # the venue has the order ...
            raise SimulatedCrash("died after the venue accepted the first leg")  # ... we never hear back

        routes["POST /api/v3/order"] = accept_then_die
    broker = CcxtBroker(exchange, kill_switch=lambda: OFF, symbols=("BTC/USDT",), settle_seconds=0)
    return broker, mount(exchange, routes)


def _creates(replay: VenueReplay) -> list[dict[str, str]]:
    return [q for m, p, q in replay.requests if (m, p) == ("POST", "/api/v3/order")]


def _book(ask: str, size: str) -> dict[str, list[list[str]]]:
    # the second level is 100 above the first: worse than the other venue's top after fees, so each plan below takes
    # only the tops
    return {"asks": [[ask, size], [str(D(ask) + 100), "10"]], "bids": [[str(D(ask) - 20), "10"]]}


def test_routed_legs_best_venue_after_fees_plan_saved_first_and_a_crash_resends_only_the_missing_leg(
    engine: Engine,
) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, decision_id = f"route-{tag}", f"run-route-{tag}", DecisionId(f"d-route-{tag}")
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", "live", D(1_000_000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,
                                                 config_version, inputs)
                    values (:d, :r, :a, 'BTC/USDT', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "t": T0},
        )  # fmt: skip
    binance, binanceus = BinanceSpotVenue({"BTCUSDT": "87500.00"}), BinanceSpotVenue({"BTCUSDT": "87510.00"})
    binance.book["BTCUSDT"], binanceus.book["BTCUSDT"] = _book("87500.00", "1.0"), _book("87510.00", "0.3")
    fees = {"binance": D(10), "binanceus": D(0)}  # our fee tiers: binance.us charges us nothing
    intent = OrderIntent(decision_id, account, "BTC/USDT", Side.BUY, D("0.5"), D(87500))
    settings = Settings(risk=RiskSettings(max_order_notional=D(100_000), max_position_notional=D(100_000)))
    leg1, leg2 = client_order_id_for(decision_id, 1), client_order_id_for(decision_id, 2)

    bn, bn_replay = _venue("binance", binance)
    us, us_replay = _venue("binanceus", binanceus, crash_after_accept=True)
    router = RoutingBroker({"binance": bn, "binanceus": us}, fee_bps=fees)
    with pytest.raises(SimulatedCrash), engine.begin() as conn:
        execute(conn, [intent], run_id=run_id, broker=router, settings=settings, event_time=T0,
                last_prices={"BTC/USDT": D(87500)})  # fmt: skip
    with engine.connect() as conn:
        plan = conn.execute(text("select client_order_id, venue, quantity, arrival_price from audit.route_legs "
                                 "where decision_id = :d order by leg"), {"d": decision_id}).all()  # fmt: skip
        assert conn.execute(text("select count(*) from audit.orders where account = :a"), {"a": account}).scalar() == 0
    # the plan outlived the crash: binance.us first (best after fees) up to its 0.3 at the top, the rest to binance
    assert [tuple(r) for r in plan] == [(leg1, "binanceus", D("0.3"), D(87500)), (leg2, "binance", D("0.2"), D(87500))]
    assert binanceus.count(leg1) == 1 and _creates(bn_replay) == []
    # the plan was saved before the first send: the books were read, then the first leg went out
    assert [p for m, p, _ in us_replay.requests if p in ("/api/v3/depth", "/api/v3/order")] == [
        "/api/v3/depth", "/api/v3/order"]  # fmt: skip

    # Restart. Meanwhile the books moved (binance is now best even after fees): the saved plan still decides.
    binance.prices["BTCUSDT"], binance.book["BTCUSDT"] = "87400.00", _book("87400.00", "5.0")
    bn, bn_replay = _venue("binance", binance)
    us, us_replay = _venue("binanceus", binanceus)
    router = RoutingBroker({"binance": bn, "binanceus": us}, fee_bps=fees)
    with engine.begin() as conn:
        result = execute(conn, [intent], run_id=run_id, broker=router, settings=settings, event_time=T0,
                         last_prices={"BTC/USDT": D(87500)})  # fmt: skip
        again = execute(conn, [intent], run_id=run_id, broker=router, settings=settings, event_time=T0,
                        last_prices={"BTC/USDT": D(87500)})  # fmt: skip
        orders = conn.execute(text("select client_order_id, venue, quantity, status, arrival_price, "
                                   "parent_client_order_id from audit.orders where account = :a order by leg"),
                              {"a": account}).all()  # fmt: skip
        finals = dict(conn.execute(text("select client_order_id, details from audit.order_events where event = "
                                        "'filled' and client_order_id = any(:c)"), {"c": [leg1, leg2]}).all())  # fmt: skip
    assert [o.client_order_id for o in result.recovered] == [leg1]  # found at binance.us by client id, not resent
    assert [o.client_order_id for o in result.submitted] == [leg2]
    assert _creates(us_replay) == [] and binanceus.count(leg1) == 1
    assert [(q["newClientOrderId"], D(q["quantity"])) for q in _creates(bn_replay)] == [(leg2, D("0.2"))]
    assert again.broker_submits == 0 and len(again.duplicates) == 2  # a third run adds nothing
    parent = client_order_id_for(decision_id, 0)
    assert [(o.client_order_id, o.venue, o.quantity, o.status, o.arrival_price, o.parent_client_order_id)
            for o in orders] == [(leg1, "binanceus", D("0.3"), "filled", D(87500), parent),
                                 (leg2, "binance", D("0.2"), "filled", D(87500), parent)]  # fmt: skip
    # slippage versus the arrival price per leg: +10 / 87500 at binance.us, -100 / 87500 at binance
    assert finals[leg1]["slippage_bps_vs_arrival"] == "1.1429"
    assert finals[leg2]["slippage_bps_vs_arrival"] == "-11.4286"


def test_the_router_adds_up_the_venues_balances_for_reconciliation(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id = f"route-rec-{tag}", f"run-route-rec-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", "live", D(10000), run_id)
    bn, _ = _venue("binance", BinanceSpotVenue({"BTCUSDT": "1"}, balances={"USDT": "6000"}))
    us, _ = _venue("binanceus", BinanceSpotVenue({"BTCUSDT": "1"}, balances={"USDT": "4000"}))
    with engine.begin() as conn:
        assert reconcile_account(conn, RoutingBroker({"binance": bn, "binanceus": us}), account, run_id=run_id) == []
