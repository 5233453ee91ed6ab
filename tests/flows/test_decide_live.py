"""The decision flow on a live account: a real Prefect flow run whose broker is the account's own ccxt broker (ccxt's
binance class on recorded responses, built from the stored credentials), reconciled with the venue before any order.
A clean reconciliation lets the orders go to the venue with our client ids; a difference stops the run before any
order, recorded and alerted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from support.ccxt_replay import BinanceSpotVenue, VenueReplay, mount
from support.features import FEATURES_DDL

from agents.team import FEATURE_COLUMNS
from alphaloom.domain import client_order_id_for
from alphaloom.ops.secrets import Credentials, store_credentials
from alphaloom.settings import get_settings
from alphaloom.venues.ccxt_exchange import make_exchange
from execution.accounts.registry import ensure_account
from execution.brokers.factory import use_exchange_maker
from flows.decide import decide_flow

HOUR = timedelta(hours=1)
# a live decision is about the current bar (older ones are refused: ALPHALOOM_LIVE_MAX_DECISION_AGE_BARS)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - HOUR
BULLISH = {"close": 87500.0, "ema_10": 88000.0, "ema_50": 87000.0, "macd_hist": 50.0, "rsi_14": 60.0}


@dataclass
class LiveAccount:
    engine: Engine
    account: str
    venues: dict[str, BinanceSpotVenue]  # ccxt exchange id -> its stand-in
    replays: list[VenueReplay]

    @property
    def venue(self) -> BinanceSpotVenue:
        return self.venues["binance"]

    def run(self, as_of: datetime | None = None) -> dict[str, int]:
        def stand_in(exchange_id: str, config: object) -> object:
            exchange = make_exchange(exchange_id, {**dict(config), "enableRateLimit": False,  # type: ignore[call-overload]
                                                   "options": {"fetchMarkets": {"types": ["spot"]},
                                                               "fetchCurrencies": False, "fetchMargins": False}})  # fmt: skip
            self.replays.append(mount(exchange, self.venues[exchange_id].routes()))
            return exchange

        with use_exchange_maker(stand_in):  # type: ignore[arg-type]
            state = decide_flow(symbols=["BTC/USDT"], as_of=as_of or T0 + HOUR, account=self.account, return_state=True)
        assert state.is_completed(), state
        return state.result()

    def creates(self) -> list[dict[str, str]]:
        return [q for r in self.replays for m, p, q in r.requests if (m, p) == ("POST", "/api/v3/order")]

    def rows(self, sql: str) -> list:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), {"a": self.account}).all()


@pytest.fixture()
def live(engine: Engine, prefect_harness, receiver, monkeypatch) -> Iterator[LiveAccount]:
    tag = uuid.uuid4().hex[:8]
    account, run_id, exchange = f"live-{tag}", f"run-live-{tag}", f"test-live-{tag}"
    monkeypatch.setenv("ALPHALOOM_EXCHANGE", exchange)  # the features' exchange (the data), not the venue
    monkeypatch.setenv("ALPHALOOM_TIMEFRAME", "1h")
    monkeypatch.setenv("ALPHALOOM_SYMBOLS", "BTC/USDT")
    monkeypatch.setenv("ALPHALOOM_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    with engine.begin() as conn:
        conn.execute(text(FEATURES_DDL))
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", "live", Decimal(10000), run_id)
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        store_credentials(conn, get_settings(), Credentials("binance", account, "test-key", "test-secret"))
        row = {c: BULLISH.get(c) for c in FEATURE_COLUMNS}
        conn.execute(
            text(f"""insert into marts.features (exchange, symbol, timeframe, ts, known_at, {", ".join(FEATURE_COLUMNS)},
                                                 dbt_invocation_id)
                     values (:e, 'BTC/USDT', '1h', :ts, :k, {", ".join(":" + c for c in FEATURE_COLUMNS)}, 'inv')"""),
            {"e": exchange, "ts": T0, "k": T0 + HOUR, **row},
        )  # fmt: skip
    try:
        yield LiveAccount(engine, account, {"binance": BinanceSpotVenue({"BTCUSDT": "87512.00"})}, [])
    finally:
        # the credentials were encrypted with this test's key: leave none behind for whole-system commands
        # (the kill switch's cancel of open orders builds every live account's broker)
        with engine.begin() as conn:
            conn.execute(text("delete from secrets.credentials where account = :a"), {"a": account})
        get_settings.cache_clear()


def test_a_clean_reconciliation_lets_the_orders_go_to_the_venue_with_our_client_ids(live: LiveAccount) -> None:
    live.venue.balances = {"USDT": "10000"}  # exactly our books
    totals = live.run()
    assert totals["submitted"] == 1 and totals["trading_refused"] == 0
    (decision_id,) = live.rows("select decision_id from audit.decisions where account = :a")[0]
    (sent,) = live.creates()
    assert sent["newClientOrderId"] == client_order_id_for(decision_id, 0) and sent["symbol"] == "BTCUSDT"
    (order,) = live.rows("select client_order_id, venue, status from audit.orders where account = :a")
    assert tuple(order) == (sent["newClientOrderId"], "binance", "filled")
    assert [r.kind for r in live.rows("select kind from audit.reconciliations where account = :a")] == ["ok"]
    # reconciled before the order: the venue saw the balance request first
    paths = [(m, p) for r in live.replays for m, p, _ in r.requests]
    assert paths.index(("GET", "/api/v3/account")) < paths.index(("POST", "/api/v3/order"))


def test_a_difference_stops_the_run_before_any_order_recorded_and_alerted(live: LiveAccount, receiver) -> None:
    live.venue.balances = {"USDT": "9000", "ETH": "0.5"}  # 1000 USDT gone, ETH we never bought
    totals = live.run()
    assert totals["trading_refused"] == 1 and totals["submitted"] == 0
    assert live.creates() == []
    assert live.rows("select 1 from audit.orders where account = :a") == []
    diffs = live.rows("select kind, item, difference from audit.reconciliations where account = :a order by id")
    assert [tuple(d) for d in diffs] == [("balance", "USDT", Decimal(-1000)), ("position", "ETH", Decimal("0.5"))]
    (trip,) = live.rows("select guard, reason, numbers from audit.guard_trips where account = :a")
    assert trip.guard == "reconciliation" and "differs from binance beyond tolerance" in trip.reason
    assert [d["item"] for d in trip.numbers["differences"]] == ["USDT", "ETH"]
    alerts = [a for a in receiver.received if a["kind"] == "reconciliation"]
    assert len(alerts) == 1 and live.account in alerts[0]["reason"]


def test_an_unarmed_live_account_is_refused_without_calling_the_venue(live: LiveAccount, receiver) -> None:
    with live.engine.begin() as conn:
        conn.execute(text("update audit.accounts set live_enabled = false where id = :a"), {"a": live.account})
    totals = live.run()
    assert totals["trading_refused"] == 1 and live.replays == []  # no exchange was even built
    (trip,) = live.rows("select guard from audit.guard_trips where account = :a")
    assert trip.guard == "live_not_armed"
    assert [a["kind"] for a in receiver.received] == ["live_refused"]


def test_a_live_account_with_route_venues_routes_each_order_across_them(live: LiveAccount, monkeypatch) -> None:
    monkeypatch.setenv("ALPHALOOM_ROUTE_VENUES", "binanceus")
    monkeypatch.setenv("ALPHALOOM_ROUTE_FEE_BPS", '{"binance": 10, "binanceus": 0}')
    get_settings.cache_clear()
    with live.engine.begin() as conn:
        store_credentials(conn, get_settings(), Credentials("binanceus", live.account, "us-key", "us-secret"))
    live.venues["binance"] = BinanceSpotVenue({"BTCUSDT": "87500.00"}, balances={"USDT": "6000"})
    live.venues["binanceus"] = BinanceSpotVenue({"BTCUSDT": "87510.00"}, balances={"USDT": "4000"})
    live.venues["binance"].book["BTCUSDT"] = {"asks": [["87500.00", "1.0"]], "bids": [["87490.00", "1.0"]]}
    live.venues["binanceus"].book["BTCUSDT"] = {"asks": [["87510.00", "0.01"]], "bids": [["87495.00", "1.0"]]}
    totals = live.run()  # reconciled against both venues' balances together (6000 + 4000 = our 10000)
    assert totals["trading_refused"] == 0 and totals["submitted"] == 2
    (decision_id,) = live.rows("select decision_id from audit.decisions where account = :a")[0]
    orders = live.rows("select client_order_id, venue, quantity from audit.orders where account = :a order by leg")
    # risk shrinks the buy to 0.028571 (the per-asset exposure limit: 2500 here); binance.us first (no fee for us),
    # up to its 0.01 at the top; the rest to binance
    assert [tuple(o) for o in orders] == [(client_order_id_for(decision_id, 1), "binanceus", Decimal("0.01")),
                                         (client_order_id_for(decision_id, 2), "binance", Decimal("0.018571"))]  # fmt: skip
    assert live.venues["binanceus"].count(orders[0].client_order_id) == 1
    assert live.venues["binance"].count(orders[1].client_order_id) == 1


def test_a_shadow_account_sends_live_and_records_the_paper_drift_per_order(live: LiveAccount) -> None:
    with live.engine.begin() as conn:
        conn.execute(text("update audit.accounts set mode = 'shadow' where id = :a"), {"a": live.account})
    live.venue.balances = {"USDT": "10000"}
    totals = live.run()
    assert totals["submitted"] == 1 and len(live.creates()) == 1
    (order,) = live.rows("select client_order_id, venue from audit.orders where account = :a")
    (drift,) = live.rows("select client_order_id, live_price, paper_price from audit.shadow_drift where account = :a")
    assert order.venue == "binance" and drift.client_order_id == order.client_order_id
    assert drift.live_price == Decimal("87512") and drift.paper_price is not None  # the paper side filled too


def test_a_live_decision_about_a_past_bar_is_refused_and_recorded(live: LiveAccount) -> None:
    past = T0 - 5 * HOUR  # a bar of five hours ago, decided now: more than 2 bars old
    with live.engine.begin() as conn:
        row = {c: BULLISH.get(c) for c in FEATURE_COLUMNS}
        conn.execute(
            text(f"""insert into marts.features (exchange, symbol, timeframe, ts, known_at, {", ".join(FEATURE_COLUMNS)},
                                                 dbt_invocation_id)
                     values (:e, 'BTC/USDT', '1h', :ts, :k, {", ".join(":" + c for c in FEATURE_COLUMNS)}, 'inv')"""),
            {"e": get_settings().exchange, "ts": past, "k": past + HOUR, **row},
        )  # fmt: skip
    live.venue.balances = {"USDT": "10000"}
    totals = live.run(as_of=past + HOUR)
    assert totals["intents"] == 1 and totals["submitted"] == 0 and live.creates() == []
    (trip,) = live.rows("select guard, reason, numbers from audit.guard_trips where account = :a")
    assert trip.guard == "decision_age" and "never sent for a past bar" in trip.reason
    assert trip.numbers["max_bars"] == "2"
    (check,) = live.rows("select approved, reason from audit.risk_checks where account = :a "
                         "and check_name = 'execution_guard'")  # fmt: skip
    assert not check.approved and check.reason == trip.reason


def test_a_decision_run_before_the_llm_training_cutoff_is_refused(live: LiveAccount, monkeypatch) -> None:
    monkeypatch.setenv("ALPHALOOM_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ALPHALOOM_LLM_MODEL", "gpt-4o-mini")  # training cutoff 2023-10-01
    get_settings.cache_clear()
    state = decide_flow(symbols=["BTC/USDT"], as_of=datetime(2023, 6, 1, tzinfo=UTC), account=live.account,
                        return_state=True)  # fmt: skip
    assert state.is_failed()
    with pytest.raises(Exception, match="before gpt-4o-mini's training cutoff 2023-10-01"):
        state.result()
    assert live.rows("select 1 from audit.decisions where account = :a") == []


def test_a_decision_run_about_the_past_with_a_model_of_unknown_cutoff_is_refused(
    live: LiveAccount, monkeypatch
) -> None:
    """Its exposure cannot be judged, as in a backtest (a decision about the present is allowed: test_llm_cost)."""
    monkeypatch.setenv("ALPHALOOM_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ALPHALOOM_LLM_MODEL", "mystery-model")
    get_settings.cache_clear()
    state = decide_flow(symbols=["BTC/USDT"], as_of=datetime(2025, 6, 1, tzinfo=UTC), account=live.account,
                        return_state=True)  # fmt: skip
    assert state.is_failed()
    with pytest.raises(Exception, match="no training cutoff configured for LLM model 'mystery-model' \\(analyst\\)"):
        state.result()
    assert live.rows("select 1 from audit.decisions where account = :a") == []
