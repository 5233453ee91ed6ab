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
from alphaloom.errors import DataUnavailableError
from alphaloom.fx import convert, rate_at, rate_between, store_rate
from alphaloom.portfolio import account_view
from execution.accounts import ensure_account

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
            account_view(conn, account, exchange="fxtest", timeframe="1h", bar="3600 seconds", as_of=T0)
        store_rate(conn, "EUR", "USDT", D("1.25"), T0 - timedelta(days=1))  # 1 USDT = 0.8 EUR
        view = account_view(conn, account, exchange="fxtest", timeframe="1h", bar="3600 seconds", as_of=T0)
    assert view is not None and view.base_currency == "EUR"
    (position,) = view.positions
    assert (position.mark, position.quote_currency, position.fx_rate) == (D(110), "USDT", D("0.8"))
    assert position.market_value == D("176.0")  # 2 * 110 USDT * 0.8
    assert position.unrealized_pnl == D("15.84")  # (220 - 200.2) * 0.8
    assert view.cash == D("1000") + D("-200.2") * D("0.8")
    assert view.equity == D("1015.84") and view.pnl == D("15.84")  # = the unrealized P&L, in EUR


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
