"""Start-of-session reconciliation of a live account with the venue (ccxt's binance class on recorded responses):
every difference is recorded in audit.reconciliations and shown."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from support.binance_broker import T0, binance_broker
from support.ccxt_replay import BinanceSpotVenue
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.domain import ClientOrderId, Side
from alphaloom.errors import ConfigError
from execution.accounts.reconcile import Difference, compare_holdings, latest_reconciliation, reconcile_account
from execution.accounts.registry import ensure_account
from execution.brokers.base import OrderRequest

runner = CliRunner()
D = Decimal


def test_compare_holdings_by_currency() -> None:
    diffs = compare_holdings({"USDT": D("10000")}, {"BTC/USDT": D("0.01"), "ETH/USDT": D("1")},
                             {"USDT": D("9120.5"), "BTC": D("0.01"), "SOL": D("3")})  # fmt: skip
    assert diffs == [
        Difference("balance", "USDT", D("10000"), D("9120.5")),
        Difference("position", "ETH", D("1"), D("0")),
        Difference("position", "SOL", D("0"), D("3")),
    ]
    assert diffs[0].difference == D("-879.5")
    assert compare_holdings({"USDT": D("1")}, {}, {"USDT": D("1.004")}, tolerance=D("0.01")) == []


def _live(engine: Engine, mode: str = "live") -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    account, run_id = f"rec-{tag}", f"run-rec-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "binance", "USDT", mode, D(10000), run_id)
        conn.execute(
            text("insert into audit.positions (account, symbol, quantity, avg_price, realized_pnl, run_id) "
                 "values (:a, 'BTC/USDT', 0.01, 87000, 0, :r)"), {"a": account, "r": run_id})  # fmt: skip
    return account, run_id


def test_a_live_account_is_reconciled_and_each_difference_recorded(engine: Engine) -> None:
    account, run_id = _live(engine)
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"}, balances={"USDT": "9120.50", "BTC": "0.01", "ETH": "0.5"})
    broker, _ = binance_broker(venue)
    venue.resting.add("by-hand-7")
    broker.submit(OrderRequest(ClientOrderId("by-hand-7"), account, "BTC/USDT", Side.BUY, D("0.01"), D("80000"), T0))
    with engine.begin() as conn:
        diffs = reconcile_account(conn, broker, account, run_id=run_id)
        rows = latest_reconciliation(conn, account)
    assert [(d.kind, d.item, d.difference) for d in diffs] == [
        ("balance", "USDT", D("-879.5")), ("position", "ETH", D("0.5")), ("order", "by-hand-7", None)]  # fmt: skip
    assert [(r["kind"], r["item"], r["ours"], r["venue"]) for r in rows] == [
        ("balance", "USDT", D("10000"), D("9120.5")), ("position", "ETH", D(0), D("0.5")),
        ("order", "by-hand-7", None, None)]  # fmt: skip
    assert rows[2]["details"]["problem"] == "open at the venue, not open in our books"
    assert rows[0]["details"]["venue"] == "binance"


def test_a_clean_account_gets_one_ok_row_and_a_paper_account_is_refused(engine: Engine) -> None:
    account, run_id = _live(engine)
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"}, balances={"USDT": "10000", "BTC": "0.01"})
    broker, _ = binance_broker(venue)
    with engine.begin() as conn:
        assert reconcile_account(conn, broker, account, run_id=run_id) == []
        assert [r["kind"] for r in latest_reconciliation(conn, account)] == ["ok"]
        ensure_account(conn, f"{account}-paper", "paper", "USDT", "paper", D(1), run_id)
        with pytest.raises(ConfigError, match="is a paper account"):
            reconcile_account(conn, broker, f"{account}-paper", run_id=run_id)


def test_cli_reconcile_says_what_is_missing(engine: Engine) -> None:
    account, _ = _live(engine)
    result = runner.invoke(app, ["reconcile", account])
    assert result.exit_code == 1 and f"no credentials stored for binance/{account}" in result.output
    paper = runner.invoke(app, ["reconcile", "nobody-here"])
    assert paper.exit_code == 1 and "does not exist" in paper.output


def test_our_open_orders_are_looked_up_first_and_what_filled_meanwhile_is_booked(engine: Engine) -> None:
    from alphaloom.domain import DecisionId, OrderIntent, client_order_id_for
    from alphaloom.settings import Settings
    from execution.submit import execute

    account, run_id = _live(engine)
    decision_id = DecisionId(f"d-{account}")
    with engine.begin() as conn:
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        conn.execute(
            text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score,
                                                 config_version, inputs)
                    values (:d, :r, :a, 'BTC/USDT', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
            {"d": decision_id, "r": run_id, "a": account, "t": T0},
        )  # fmt: skip
    coid = client_order_id_for(decision_id, 0)
    venue = BinanceSpotVenue({"BTCUSDT": "87000.00"}, balances={"USDT": "9129.13", "BTC": "0.02"})
    broker, _ = binance_broker(venue)
    venue.resting.add(coid)  # the order rests at the venue when the session ends
    with engine.begin() as conn:
        execute(conn, [OrderIntent(decision_id, account, "BTC/USDT", Side.BUY, D("0.01"), D("87000"))],
                run_id=run_id, broker=broker, settings=Settings(), event_time=T0)  # fmt: skip
    venue.trigger(coid, "87000.00")  # ... and fills while nothing runs
    restarted, _ = binance_broker(venue)
    with engine.begin() as conn:
        diffs = reconcile_account(conn, restarted, account, run_id=run_id, event_time=T0)
        status = conn.execute(text("select status from audit.orders where client_order_id = :c"), {"c": coid}).scalar()
        held = conn.execute(text("select quantity from audit.positions where account = :a"), {"a": account}).scalar()
    assert status == "filled" and held == D("0.02")
    (diff,) = diffs  # balances agree once the fill is booked; only the order's catch-up is reported
    assert diff.kind == "order" and diff.details["problem"].startswith("was submitted in our books, filled")


def test_an_order_reconciled_after_an_unknown_outcome_gets_its_slippage_versus_arrival(engine: Engine) -> None:
    """Both ways an unknown outcome is resolved later (a rerun of execute, the start-of-session reconciliation) book
    the venue's fills with their slippage versus the arrival price kept in audit.orders."""
    from alphaloom.domain import DecisionId, OrderIntent, client_order_id_for
    from alphaloom.settings import Settings
    from execution.submit import execute

    account, run_id = _live(engine)
    intents = []
    with engine.begin() as conn:
        conn.execute(text("update audit.accounts set live_enabled = true where id = :a"), {"a": account})
        for n in (1, 2):
            decision_id = DecisionId(f"d-{account}-{n}")
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, 'BTC/USDT', '1h', :t, 'buy', 1.0, 'test', '{}'::jsonb)"""),
                {"d": decision_id, "r": run_id, "a": account, "t": T0},
            )  # fmt: skip
            intents.append(OrderIntent(decision_id, account, "BTC/USDT", Side.BUY, D("0.01"), D("87500")))
    coids = [client_order_id_for(i.decision_id, 0) for i in intents]
    venue = BinanceSpotVenue({"BTCUSDT": "87512.00"}, balances={"USDT": "9124.878", "BTC": "0.03"})
    broker, replay = binance_broker(venue)
    lookups = replay.routes["GET /api/v3/order"]
    replay.routes["GET /api/v3/order"] = lambda q: (503, "Service Unavailable")  # answers lost, lookups fail too
    for coid in coids:
        venue.timeouts[coid] = "after_accept"
    with engine.begin() as conn:
        result = execute(conn, intents, run_id=run_id, broker=broker, settings=Settings(), event_time=T0,
                         last_prices={"BTC/USDT": D("87500")})  # fmt: skip
    assert result.unknown == coids
    replay.routes["GET /api/v3/order"] = lookups  # the venue answers again
    with engine.begin() as conn:
        rerun = execute(conn, intents[:1], run_id=run_id, broker=broker, settings=Settings(), event_time=T0)
        reconcile_account(conn, broker, account, run_id=run_id, event_time=T0)
        finals = dict(conn.execute(
            text("select client_order_id, details from audit.order_events where event = 'filled' "
                 "and client_order_id = any(:c)"), {"c": coids}).all())  # fmt: skip
    assert rerun.broker_submits == 0 and venue.count(coids[0]) == venue.count(coids[1]) == 1
    for coid in coids:  # 87512 against the 87500 arrival: 12 / 87500 = 1.3714 bps worse
        assert finals[coid]["arrival_price"] == "87500" and finals[coid]["slippage_bps_vs_arrival"] == "1.3714"
