"""Issue 12, items 1 and 3: every notional in the account's base currency at the point-in-time fx rate (the trader's
sizing, the risk limits, the execution guard and the backtest's equity alike; a missing rate is a refusal naming the
pair), and each market's asset class and quantity step from the venue's metadata or explicit configuration, never
from the spelling of its quote currency. Real PostgreSQL; the venue is ccxt's kraken class fed recorded responses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from support.ccxt_replay import kraken_routes, mount
from support.decision_world import HOUR, T0, CountingBroker, World
from support.features import BULLISH, FEATURES_DDL

from agents.risk import check_intent
from agents.sentiment import LexiconScorer
from agents.trader import order_intents
from alphaloom.backtest.equity_curve import equity_curve
from alphaloom.domain import Action, DecisionId, OrderIntent, Side, client_order_id_for
from alphaloom.errors import DataUnavailableError
from alphaloom.fx import store_rate
from alphaloom.guards import HardLimits
from alphaloom.ingest.ccxt_prices import CcxtPriceSource, SeriesSpec, fetch_series
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import LlmSettings, Settings
from alphaloom.venues.ccxt_exchange import make_exchange
from execution.accounts.registry import ensure_account
from execution.brokers.paper import PaperBroker

D = Decimal
OFF = KillSwitchState(False, "", "")


@pytest.fixture()
def world(engine: Engine) -> World:
    """A USDT paper account on its own exchange name, hand-made features (``support.decision_world.World``)."""
    tag = uuid.uuid4().hex[:8].upper()
    settings = Settings(exchange=f"test-{tag}", timeframe="1h", order_notional=D(5000), llm=LlmSettings(base_url=None))
    run_id, account = f"run-{tag}", f"acct-{tag}"
    with engine.begin() as conn:
        conn.execute(text(FEATURES_DDL))
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", D(100000), run_id)
    broker = CountingBroker(PaperBroker(fee_bps=D(10), slippage_bps=D(5), kill_switch=lambda: OFF))
    return World(engine, settings, account, run_id, tag, broker, LexiconScorer())


def _record_decision(world: World, decision_id: str, symbol: str) -> None:
    with world.engine.begin() as conn:
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                  score, config_version, inputs)
                    values (:d, :r, :a, :s, '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": world.run_id, "a": world.account, "s": symbol, "t": T0 + HOUR},
        )  # fmt: skip


# --- item 1: one currency for every limit -------------------------------------------------------------------------


def test_eth_btc_is_sized_to_the_order_notional_in_the_base_currency(world: World) -> None:
    btc = f"B{world.tag}"  # this test's own "BTC", so no other test's rates interfere
    symbol = world.symbol("ETH", quote=btc)
    with world.engine.begin() as conn:
        store_rate(conn, btc, "USDT", D(60000), T0 - timedelta(days=1))
    world.features(symbol, T0, {**BULLISH, "close": 0.05})
    [decision] = world.decide([symbol], T0 + HOUR)
    [intent] = decision.intents
    # 5000 USDT / (0.05 BTC x 60000 USDT/BTC) = 1.6666..., not 5000 / 0.05 = 100,000 ETH (3e8 USDT)
    assert (intent.quantity, intent.reference_price) == (D("1.666666"), D("0.05"))
    [numbers] = world.query(
        "select numbers from audit.risk_checks where decision_id = :d and check_name = 'max_order_notional'",
        d=decision.decision_id,
    )
    assert D(numbers[0]["notional"]) == D("1.666666") * D("0.05") * 60000 and numbers[0]["quote_rate"] == "60000"


def test_an_order_over_the_limit_in_base_terms_is_refused_by_risk_and_by_execution(world: World) -> None:
    btc = f"B{world.tag}"
    symbol = world.symbol("ETH", quote=btc)
    with world.engine.begin() as conn:
        store_rate(conn, btc, "USDT", D(60000), T0 - timedelta(days=1))
    huge = OrderIntent(DecisionId(f"d-huge-{world.tag}"), world.account, symbol, Side.BUY, D(100000), D("0.05"))
    _record_decision(world, huge.decision_id, symbol)
    result = world.execute([huge], T0 + HOUR)
    assert world.broker.submits == 0 and result.submitted == []
    [refusal] = result.refused
    assert {b.limit for b in refusal.breaches} == {"max_order_notional", "max_position_notional"}
    assert "order notional 300000000.00 exceeds the limit 10000" in "; ".join(b.reason for b in refusal.breaches)

    from alphaloom.fx import QuoteRate

    verdicts = check_intent(huge, limits=HardLimits(D(10000), D(20000), D(5)), current_quantity=D(0),
                            last_price=D("0.05"), kill_switch=OFF,
                            quote_rate=QuoteRate(btc, "USDT", D(60000)))  # fmt: skip
    denied = {v.check_name: v for v in verdicts if not v.approved}
    assert set(denied) == {"max_order_notional", "max_position_notional"}
    assert D(denied["max_order_notional"].numbers["notional"]) == D(300_000_000)  # 100000 x 0.05 x 60000


def test_a_missing_rate_is_a_refusal_naming_the_pair(world: World) -> None:
    nowhere = f"N{world.tag}"  # no rate into USDT was ever stored
    symbol = world.symbol("ETH", quote=nowhere)
    world.features(symbol, T0, {**BULLISH, "close": 0.05})
    with pytest.raises(DataUnavailableError, match=rf"no fx rate to convert {nowhere} into USDT known at"):
        world.decide([symbol], T0 + HOUR)

    intent = OrderIntent(DecisionId(f"d-norate-{world.tag}"), world.account, symbol, Side.BUY, D(1), D("0.05"))
    _record_decision(world, intent.decision_id, symbol)
    result = world.execute([intent], T0 + HOUR)
    assert world.broker.submits == 0
    [refusal] = result.refused
    [breach] = refusal.breaches
    assert breach.limit == "fx_rate" and f"no fx rate to convert {nowhere} into USDT" in breach.reason

    from alphaloom.fx import QuoteRate
    from alphaloom.markets import MarketSpec

    missing = QuoteRate(nowhere, "USDT", None, T0)
    with pytest.raises(DataUnavailableError, match=f"{nowhere} into USDT"):
        order_intents(decision_id=intent.decision_id, account=world.account, symbol=symbol, action=Action.BUY,
                      position_quantity=D(0), price=D("0.05"), order_notional=D(5000),
                      market=MarketSpec(symbol, "crypto", D("0.000001")), quote_rate=missing)  # fmt: skip
    verdicts = check_intent(intent, limits=HardLimits(D(10000), D(20000), D(5)), current_quantity=D(0),
                            last_price=D("0.05"), kill_switch=OFF, quote_rate=missing)  # fmt: skip
    [fx] = [v for v in verdicts if not v.approved]
    assert fx.check_name == "fx_rate" and f"no fx rate to convert {nowhere} into USDT" in fx.reason


def test_twap_and_iceberg_thresholds_compare_base_currency_notionals(world: World) -> None:
    """An ETH/BTC order is split when its notional in USDT (the account's base) is above the threshold, whatever its
    notional in BTC; an iceberg child shows at most the visible notional in USDT; without a rate nothing is split
    and the order is refused naming the pair."""
    btc = f"B{world.tag}"
    symbol = world.symbol("ETH", quote=btc)
    with world.engine.begin() as conn:
        store_rate(conn, btc, "USDT", D(60000), T0 - timedelta(days=1))
    world.settings = world.settings.model_copy(
        update={"split.above_notional": D(1000), "split.slices": 4, "split.twap_duration_minutes": 0}
    )
    # 1.2 ETH at 0.05 BTC: 0.06 BTC, but 3600 USDT > 1000; 0.3 ETH: 900 USDT < 1000
    above = OrderIntent(DecisionId(f"d-above-{world.tag}"), world.account, symbol, Side.BUY, D("1.2"), D("0.05"))
    below = OrderIntent(DecisionId(f"d-below-{world.tag}"), world.account, symbol, Side.BUY, D("0.3"), D("0.05"))
    for intent in (above, below):
        _record_decision(world, intent.decision_id, symbol)
    world.execute([above, below], T0 + HOUR)

    def legs(intent: OrderIntent) -> list[tuple[int, Decimal]]:
        rows = world.query("select leg, quantity from audit.orders where decision_id = :d order by leg",
                           d=intent.decision_id)  # fmt: skip
        return [(r.leg, D(r.quantity)) for r in rows]

    assert legs(above) == [(1, D("0.3")), (2, D("0.3")), (3, D("0.3")), (4, D("0.3"))]
    assert legs(below) == [(0, D("0.3"))]

    # iceberg: at most 1000 USDT shown = 1000 / (0.05 x 60000) = 0.3 ETH per child (in the quantity's 0.1 step), not
    # 1000 / 0.05 = 20000 ETH (one child: nothing split)
    world.settings = world.settings.model_copy(update={"split.method": "iceberg", "split.visible_notional": D(1000)})
    berg = OrderIntent(DecisionId(f"d-berg-{world.tag}"), world.account, symbol, Side.BUY, D("1.2"), D("0.05"))
    _record_decision(world, berg.decision_id, symbol)
    world.execute([berg], T0 + HOUR)
    [first] = legs(berg)  # one shown at a time
    assert first == (1, D("0.3"))
    [(planned,)] = world.query(
        "select count(*) from audit.scheduled_slices where parent_client_order_id = :p",
        p=client_order_id_for(berg.decision_id, 0),
    )
    assert planned == 4  # 4 x 0.3: the rest wait for the one before to fill

    # no rate known for the quote currency: the order is not split, and refused naming the pair
    nowhere = f"N{world.tag}"
    unrated = world.symbol("ETH", quote=nowhere)
    lost = OrderIntent(DecisionId(f"d-norate-{world.tag}"), world.account, unrated, Side.BUY, D("1.2"), D("0.05"))
    _record_decision(world, lost.decision_id, unrated)
    result = world.execute([lost], T0 + HOUR)
    [refusal] = result.refused
    assert refusal.intent == lost and {b.limit for b in refusal.breaches} == {"fx_rate"}
    assert world.query("select 1 from audit.orders where decision_id = :d", d=lost.decision_id) == []


def test_backtest_equity_converts_cash_and_positions_across_quote_currencies() -> None:
    times = pd.date_range("2025-01-01", periods=4, freq="h", tz="UTC")
    fills = pd.DataFrame({"ts": [times[1]], "symbol": ["ETH/BTC"], "side": ["buy"], "quantity": [2.0],
                          "price": [0.05], "fee": [0.0001], "currency": ["BTC"], "fee_currency": ["BTC"]})  # fmt: skip
    closes = pd.DataFrame({"ETH/BTC": [0.05, 0.05, 0.06, 0.06]}, index=times)
    rates = pd.DataFrame({"BTC": [60000.0, 60000.0, 60000.0, 70000.0]}, index=times)
    equity = equity_curve(fills, closes, 10000.0, base_currency="USDT", rates=rates)
    # paid 0.1001 BTC for 2 ETH: cash -0.1001 BTC, the position marked in BTC, both counted in USDT at each time
    assert equity.tolist() == pytest.approx([10000.0, 10000 - 6.0, 10000 + (0.12 - 0.1001) * 60000,
                                             10000 + (0.12 - 0.1001) * 70000])  # fmt: skip
    with pytest.raises(DataUnavailableError, match="no fx rate to convert BTC into USDT"):
        equity_curve(fills, closes, 10000.0, base_currency="USDT", rates=pd.DataFrame(index=times))


# --- item 3: asset class and quantity step from the venue or configuration ---------------------------------------


def _kraken() -> CcxtPriceSource:
    exchange = make_exchange("kraken", {"enableRateLimit": False})
    # the venue's clock after the recorded bars: closure is judged by the venue's time (issue 12 item 14)
    mount(exchange, kraken_routes(server_time_s=int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp())))
    return CcxtPriceSource(exchange)


def test_the_ccxt_ingest_carries_the_venues_market_metadata() -> None:
    [result] = fetch_series([SeriesSpec("kraken", "BTC/USD", "1h")], {}, source_for=lambda _: _kraken())
    assert result.market is not None
    market = result.market
    assert (market.asset_class, market.quantity_step, market.min_quantity) == ("crypto", D("1E-8"), D("0.00005"))
    assert (market.instrument_type, market.source) == ("spot", "venue")


def test_btc_usd_on_a_crypto_venue_is_fractional_and_a_configured_stock_whole_shares(world: World) -> None:
    from alphaloom.markets import store_specs

    with world.engine.begin() as conn:  # what the ccxt ingest stores for the venue the account trades on
        store_specs(conn, world.settings.exchange, [_kraken().market_spec("BTC/USD")], world.run_id)
    world.settings = world.settings.model_copy(
        update={"asset_classes": {"AAPL/USD": "equity", "ETH/USD": "crypto"}}  # a file source, configured
    )
    world.features("BTC/USD", T0, {**BULLISH, "close": 60000.0})
    world.features("AAPL/USD", T0, {**BULLISH, "close": 187.30})
    world.features("ETH/USD", T0, {**BULLISH, "close": 3000.0})
    decisions = {d.symbol: d for d in world.decide(["BTC/USD", "AAPL/USD", "ETH/USD"], T0 + HOUR)}
    quantities = {s: [i.quantity for i in d.intents] for s, d in decisions.items()}
    # 5000 / 60000 = 0.0833... in the venue's 1e-8 step, not zero whole coins; 5000 / 187.30 = 26 whole shares;
    # ETH/USD configured as crypto on a file source: 1e-6 units
    assert quantities == {"BTC/USD": [D("0.08333333")], "AAPL/USD": [D(26)], "ETH/USD": [D("1.666666")]}
    [klass] = world.query(
        "select numbers->>'used' from audit.risk_checks where decision_id = :d and check_name = 'class_exposure'",
        d=decisions["BTC/USD"].decision_id,
    )
    [reason] = world.query(
        "select reason from audit.risk_checks where decision_id = :d and check_name = 'class_exposure'",
        d=decisions["BTC/USD"].decision_id,
    )
    assert "class 'crypto'" in reason[0] and klass[0] == "0.00"
