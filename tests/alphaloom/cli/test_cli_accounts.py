"""``alphaloom accounts add`` / ``list`` (issue 20): paper accounts, and shadow/live accounts at Alpaca, OANDA or a ccxt
exchange once their keys are stored; adding the same account again changes nothing, other settings are refused naming
the difference; a wrong venue, mode, currency or capital is one line, exit 2, no traceback; keys are never printed."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.domain import AccountId, AccountMode
from execution.accounts.registry import account_spec
from execution.accounts.spec import AccountSpec

runner = CliRunner()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _one_line_refusal(args: list[str], *expected: str) -> str:
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in expected:
        assert word in lines[0], lines[0]
    return lines[0]


def _spec(engine: Engine, name: str) -> AccountSpec | None:
    with engine.connect() as conn:
        return account_spec(conn, AccountId(name))


def test_a_paper_account_is_created_once_with_its_cash_and_listed(engine: Engine) -> None:
    name = _name("paper")
    args = ["accounts", "add", name, "--venue", "paper", "--mode", "paper", "--base-currency", "usd",
            "--capital", "25000.50"]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and f"created account {name}" in first.output, first.output
    assert _spec(engine, name) == AccountSpec("paper", AccountMode.PAPER, "USD", Decimal("25000.50"))
    with engine.connect() as conn:
        cash = conn.execute(text("select currency, amount, run_id is not null from audit.balances where account = :a"),
                            {"a": name}).all()  # fmt: skip
        run = conn.execute(text("select status from audit.runs where flow = 'accounts-add' "
                                "and parameters ->> 'account' = :a"), {"a": name}).scalar_one()  # fmt: skip
    assert [(c, Decimal(a), r) for c, a, r in cash] == [("USD", Decimal("25000.50"), True)] and run == "completed"

    again = runner.invoke(app, args)  # the same settings: a no-op
    assert again.exit_code == 0 and "already exists with these settings: nothing changed" in again.output
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from audit.accounts where id = :a"), {"a": name}).scalar_one() == 1

    listed = runner.invoke(app, ["accounts", "list"])
    assert listed.exit_code == 0, listed.output
    (row,) = [line for line in listed.output.splitlines() if name in line]
    assert "paper" in row and "USD" in row and "25,000.50" in row


def test_adding_an_existing_account_with_other_settings_is_refused_naming_the_difference(engine: Engine) -> None:
    name = _name("paper")
    assert runner.invoke(app, ["accounts", "add", name, "--base-currency", "USD", "--capital", "10000"]).exit_code == 0
    line = _one_line_refusal(["accounts", "add", name, "--base-currency", "EUR", "--capital", "5000"],
                             f"account {name} exists with other settings", "base currency USD (asked: EUR)",
                             "capital 10000 (asked: 5000)", "nothing changed")  # fmt: skip
    assert "venue" not in line and "mode" not in line
    assert _spec(engine, name) == AccountSpec("paper", AccountMode.PAPER, "USD", Decimal(10000))


@pytest.mark.parametrize("venue", ["alpaca", "oanda", "binance"])
@pytest.mark.parametrize("mode", ["live", "shadow"])
def test_a_live_or_shadow_account_needs_its_venues_keys_first(engine: Engine, venue: str, mode: str) -> None:
    name = _name(venue)
    args = ["accounts", "add", name, "--venue", venue, "--mode", mode, "--base-currency", "USD", "--capital", "1000"]
    _one_line_refusal(args, f"a {mode} account at {venue} needs its keys", f"none stored for {venue}/{name}",
                      f"alphaloom keys add {venue} --account {name}")  # fmt: skip
    assert _spec(engine, name) is None

    key, secret = f"PLANTEDKEY{uuid.uuid4().hex}", f"PLANTEDSECRET{uuid.uuid4().hex}"
    prompts = f"{key}\n{secret}\n" + ("\n" if venue == "binance" else "")  # ccxt asks for a passphrase too
    stored = runner.invoke(app, ["keys", "add", venue, "--account", name], input=prompts)
    assert stored.exit_code == 0, stored.output
    created = runner.invoke(app, args)
    assert created.exit_code == 0 and f"created account {name}: {mode} at {venue}" in created.output, created.output
    assert f"alphaloom arm {name}" in created.output
    assert _spec(engine, name) == AccountSpec(venue, AccountMode(mode), "USD", Decimal(1000))
    with engine.connect() as conn:  # created disarmed: live orders need `alphaloom arm`
        armed = conn.execute(text("select live_enabled from audit.accounts where id = :a"), {"a": name}).scalar_one()
    listed = runner.invoke(app, ["accounts", "list"])
    (row,) = [line for line in listed.output.splitlines() if name in line]
    assert armed is False and "stored" in row and mode in row
    for output in (created.output, listed.output):
        assert key not in output and secret not in output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--venue", "alpacca"], ["--venue 'alpacca'", "not paper, alpaca, oanda nor a ccxt exchange id"]),
        (["--mode", "real"], ["--mode 'real'", "paper, live, shadow"]),
        (["--venue", "paper", "--mode", "live"], ["--mode live", "trades at a real venue"]),
        (["--base-currency", "US DOLLARS"], ["--base-currency 'US DOLLARS'", "not a currency code"]),
        (["--venue", "alpaca", "--base-currency", "EUR"], ["--base-currency EUR", "alpaca accounts are in USD only"]),
        (["--capital", "-5"], ["--capital -5 is negative"]),
        (["--capital", "lots"], ["--capital 'lots' is not a number"]),
        (["--capital", "NaN"], ["--capital 'NaN' is not a finite number"]),
    ],
    ids=["venue", "mode", "paper-live", "currency", "alpaca-currency", "negative", "not-a-number", "nan"],
)
def test_a_wrong_argument_is_one_line_and_exit_2(engine: Engine, args: list[str], expected: list[str]) -> None:
    name = _name("bad")
    _one_line_refusal(["accounts", "add", name, *args], *expected)
    assert _spec(engine, name) is None


def test_a_bad_account_name_is_refused(engine: Engine) -> None:
    _one_line_refusal(["accounts", "add", "my account"], "NAME 'my account'", "an account id is")
