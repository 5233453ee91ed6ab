"""P&L and equity in the account's base currency: stored fx rates (audit.fx_rates), the newest at or before as_of,
a clear error when a rate is missing; the account view and `alphaloom pnl` / `alphaloom fx-rate` use them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.domain import DecisionId, OrderIntent, Side
from alphaloom.errors import DataUnavailableError
from alphaloom.fx import convert, rate_at, rate_between, store_rate
from alphaloom.ops.kill_switch import KillSwitchState, kill_switch_state
from alphaloom.reporting.account_summary import account_summary
from alphaloom.settings import PaperSettings, RiskSettings, Settings
from execution.accounts.registry import ensure_account
from execution.brokers.paper import PaperBroker
from execution.submit import execute

D = Decimal
T0 = datetime(2026, 2, 1, tzinfo=UTC)
runner = CliRunner()


def test_conversion_is_direct_inverse_or_identity_and_never_guessed() -> None:
    rates = {("USDT", "EUR"): D("0.8")}
    assert convert(D("100"), "USDT", "EUR", rates) == D("80.0")
    assert convert(D("80"), "EUR", "USDT", rates) == D("100")
    assert rate_between(rates, "EUR", "EUR") == 1
    with pytest.raises(DataUnavailableError, match="no fx rate to convert GBP into EUR"):
        convert(D(1), "GBP", "EUR", rates)


def test_the_newest_rate_known_at_as_of_is_used(engine: Engine) -> None:
    ccy = f"X{uuid.uuid4().hex[:5].upper()}"
    with engine.begin() as conn:
        store_rate(conn, ccy, "EUR", D("2"), T0)
        store_rate(conn, ccy, "EUR", D("3"), T0 + timedelta(hours=2))
        store_rate(conn, "EUR", ccy, D("0.2"), T0 + timedelta(hours=4))  # the opposite pair, newer: 1/0.2
        assert rate_at(conn, ccy, "EUR", T0 + timedelta(hours=1)) == D("2")
        assert rate_at(conn, ccy, "EUR", T0 + timedelta(hours=2)) == D("3")
        assert rate_at(conn, ccy, "EUR", T0 + timedelta(hours=5)) == D("5")
        assert rate_at(conn, "EUR", ccy, T0 + timedelta(hours=1)) == D("0.5")
        with pytest.raises(DataUnavailableError, match=rf"{ccy} into EUR known at 2026-01-31T23:00:00\+00:00"):
            rate_at(conn, ccy, "EUR", T0 - timedelta(hours=1))
        assert rate_at(conn, "USD", "USDT", T0) == 1  # the shipped peg, stored as a visible rate


def _eur_account(engine: Engine) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol = f"fx-{tag}", f"run-fx-{tag}", f"FX{tag.upper()}/USDT"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "EUR", "paper", D(1000), run_id)
        # bought 2 units at 100 USDT (fee 0.2 USDT) out of USDT cash: 1000 EUR left, -200.2 USDT
        conn.execute(text("insert into audit.balances (account, currency, amount) values (:a, 'USDT', -200.2)"),
                     {"a": account})  # fmt: skip
        conn.execute(
            text("insert into audit.positions (account, symbol, quantity, avg_price, realized_pnl, run_id) "
                 "values (:a, :s, 2, 100.1, 0, :r)"), {"a": account, "s": symbol, "r": run_id})  # fmt: skip
        conn.execute(
            text("insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) "
                 "values ('fxtest', :s, '1h', :t, 110, 110, 110, 110, 1, :r)"),
            {"s": symbol, "t": T0 - timedelta(hours=1), "r": run_id},
        )  # fmt: skip
    return account, symbol


def test_account_view_is_in_the_base_currency(engine: Engine) -> None:
    account, _ = _eur_account(engine)
    with engine.begin() as conn:
        with pytest.raises(DataUnavailableError, match="USDT into EUR"):
            account_summary(conn, account, exchange="fxtest", timeframe="1h", bar="3600 seconds", as_of=T0)
        store_rate(conn, "EUR", "USDT", D("1.25"), T0 - timedelta(days=1))  # 1 USDT = 0.8 EUR
        view = account_summary(conn, account, exchange="fxtest", timeframe="1h", bar="3600 seconds", as_of=T0)
    assert view is not None and view.base_currency == "EUR"
    (position,) = view.positions
    assert (position.mark, position.quote_currency, position.fx_rate) == (D(110), "USDT", D("0.8"))
    assert position.market_value == D("176.0")  # 2 * 110 USDT * 0.8
    assert position.unrealized_pnl == D("15.84")  # (220 - 200.2) * 0.8
    assert view.cash == D("1000") + D("-200.2") * D("0.8")
    assert view.equity == D("1015.84") and view.pnl == D("15.84")  # = the unrealized P&L, in EUR


def test_realized_pnl_is_converted_at_the_rate_of_its_fill_and_unrealized_at_the_current_rate(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol = f"fx-real-{tag}", f"run-fx-real-{tag}", f"FR{tag.upper()}/USDT"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "EUR", "paper", D(100000), run_id)
        # 1 EUR = 1.25 USDT (1 USDT = 0.8 EUR) from the day before; 1 EUR = 1.6 USDT (0.625) from T0 + 2h; 2 (0.5)
        # from T0 + 4h
        for rate, hours in (("1.25", -24), ("1.6", 2), ("2", 4)):
            store_rate(conn, "EUR", "USDT", D(rate), T0 + timedelta(hours=hours), source=f"test-{tag}")
        conn.execute(
            text("insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) "
                 "values ('fxtest', :s, '1h', :t, 150, 150, 150, 150, 1, :r)"),
            {"s": symbol, "t": T0 + timedelta(hours=3), "r": run_id},
        )  # fmt: skip
    settings = Settings(
        paper=PaperSettings(fee_bps=D(0), slippage_bps=D(0)),
        risk=RiskSettings(max_order_notional=D(100000), max_position_notional=D(100000)),
    )

    def switch() -> KillSwitchState:
        with engine.connect() as c:
            return kill_switch_state(c)

    broker = PaperBroker(fee_bps=D(0), slippage_bps=D(0), kill_switch=switch)
    # buy 2 at 100 USDT at T0; sell 1 at 120 at T0 + 1h (realises 20 USDT while 1 USDT = 0.8 EUR: 16 EUR); sell 0.5
    # at 140 at T0 + 3h (realises 20 USDT while 1 USDT = 0.625 EUR: 12.5 EUR)
    for n, (side, qty, price, hours) in enumerate(
        ((Side.BUY, "2", "100", 0), (Side.SELL, "1", "120", 1), (Side.SELL, "0.5", "140", 3))
    ):
        decision_id = DecisionId(f"d-fx-real-{tag}-{n}")
        with engine.begin() as conn:
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, :s, '1h', :t, :act, 1.0, 'test', '{}'::jsonb)"""),
                {"d": decision_id, "r": run_id, "a": account, "s": symbol, "t": T0 + timedelta(hours=hours),
                 "act": side.value},
            )  # fmt: skip
            execute(conn, [OrderIntent(decision_id, account, symbol, side, D(qty), D(price))], run_id=run_id,
                    broker=broker, settings=settings, event_time=T0 + timedelta(hours=hours),
                    last_prices={symbol: D(price)})  # fmt: skip
    with engine.begin() as conn:
        recorded = conn.execute(text("select side, realized_pnl from audit.fills where account = :a order by ts"),
                                {"a": account}).all()  # fmt: skip
        # valued at T0 + 5h: 1 USDT = 0.5 EUR now, mark 150
        view = account_summary(conn, account, exchange="fxtest", timeframe="1h", bar="3600 seconds",
                            as_of=T0 + timedelta(hours=5))  # fmt: skip
        assert view is not None
        (position,) = view.positions
        assert [(r.side, r.realized_pnl) for r in recorded] == [("buy", None), ("sell", D(20)), ("sell", D(20))]
        assert (position.quantity, position.realized_pnl_quote, position.fx_rate) == (D("0.5"), D(40), D("0.5"))
        assert position.realized_pnl == D("28.5")  # 16 + 12.5, not 40 * 0.5 = 20 at today's rate
        assert position.unrealized_pnl == D("12.5")  # 0.5 * (150 - 100) = 25 USDT at today's 0.5
        assert position.market_value == D("37.5")  # 0.5 * 150 * 0.5
        # realised P&L booked before fills recorded it (here 4 USDT) is converted at the view's rate: + 2 EUR
        conn.execute(text("update audit.positions set realized_pnl = realized_pnl + 4 where account = :a"),
                     {"a": account})  # fmt: skip
        view = account_summary(conn, account, exchange="fxtest", timeframe="1h", bar="3600 seconds",
                            as_of=T0 + timedelta(hours=5))  # fmt: skip
        assert view is not None and view.positions[0].realized_pnl == D("30.5")
        # a realisation with no rate known at its time is named, never converted at a guess
        conn.execute(text("delete from audit.fx_rates where source = :s and as_of < :t"),
                     {"s": f"test-{tag}", "t": T0})  # fmt: skip
        with pytest.raises(DataUnavailableError, match="USDT into EUR known at 2026-02-01T01:00:00"):
            account_summary(conn, account, exchange="fxtest", timeframe="1h", bar="3600 seconds",
                         as_of=T0 + timedelta(hours=5))  # fmt: skip


def test_cli_fx_rate_stores_and_shows_and_pnl_names_a_missing_rate(engine: Engine) -> None:
    ccy = f"Y{uuid.uuid4().hex[:5].upper()}"
    missing = runner.invoke(app, ["fx-rate", ccy, "EUR"])
    assert missing.exit_code == 1 and f"no fx rate to convert {ccy} into EUR" in missing.output
    stored = runner.invoke(app, ["fx-rate", ccy, "EUR", "0.92", "--as-of", "2026-01-01T00:00:00+00:00"])
    assert stored.exit_code == 0 and f"1 {ccy} = 0.92 EUR" in stored.output
    bad = runner.invoke(app, ["fx-rate", ccy, "EUR", "0"])
    assert bad.exit_code != 0 and "positive" in bad.output
    account, _ = _eur_account(engine)
    with engine.begin() as conn:  # an account holding a currency with no rate into its base
        conn.execute(text("insert into audit.balances (account, currency, amount) values (:a, :c, 5)"),
                     {"a": account, "c": f"Z{ccy}"})  # fmt: skip
    pnl = runner.invoke(app, ["pnl", "--account", account])
    assert pnl.exit_code == 1 and f"cannot value {account} in its base currency" in pnl.output
