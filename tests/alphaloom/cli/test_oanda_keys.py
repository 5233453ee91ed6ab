"""``alphaloom keys add oanda``: the token and the v20 account id prompted without echo and stored encrypted like ccxt
keys (the API address beside them); a wrong argument is one line and exit 2, before any prompt; ``alphaloom reconcile``
reaches OANDA with them."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.ops.secrets import load_credentials
from alphaloom.settings import get_settings
from alphaloom.venues.oanda_client import PRACTICE_URL, config_from_credentials

runner = CliRunner()


@pytest.mark.parametrize("url", [None, "http://127.0.0.1:9/"])
def test_keys_add_oanda_stores_token_account_and_address_encrypted(
    engine: Engine, capsys: pytest.CaptureFixture[str], url: str | None
) -> None:
    account, token, v20_id = f"fx-{uuid.uuid4().hex[:8]}", f"PLANTEDTOKEN{uuid.uuid4().hex}", "101-004-7654321-001"
    args = ["keys", "add", "oanda", "--account", account, *(["--url", url] if url else [])]
    result = runner.invoke(app, args, input=f"{token}\n{v20_id}\n")
    assert result.exit_code == 0, result.output
    assert f"stored encrypted credentials for oanda/{account}" in result.output and token not in result.output
    assert token not in capsys.readouterr().out
    with engine.connect() as conn:
        credentials = load_credentials(conn, get_settings(), "oanda", account)
        stored = conn.execute(text("select ciphertext from secrets.credentials where exchange = 'oanda' and "
                                   "account = :a"), {"a": account}).scalar_one()  # fmt: skip
    assert credentials is not None and token not in stored and v20_id not in stored
    config = config_from_credentials(credentials.api_key, credentials.secret, credentials.password)
    assert (config.token, config.account_id, config.base_url) == (token, v20_id, (url or PRACTICE_URL).rstrip("/"))
    assert token not in repr(config)


def test_keys_add_oanda_with_an_address_that_is_not_http_is_refused_in_one_line(engine: Engine) -> None:
    result = runner.invoke(app, ["keys", "add", "oanda", "--url", "api-fxtrade.oanda.com"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --url 'api-fxtrade.oanda.com': not an http(s) address")
    assert "Traceback" not in result.output and "token" not in result.output.lower()


def test_reconcile_of_an_oanda_account_reaches_oanda_with_the_stored_keys(engine: Engine) -> None:
    from support.oanda_standin import ACCOUNT_ID, TOKEN, OandaStandIn

    from alphaloom.audit import start_run
    from execution.accounts.registry import ensure_account

    account = f"fx-{uuid.uuid4().hex[:8]}"
    venue = OandaStandIn().start()
    try:
        run_id = start_run(engine, "test", {})
        with engine.begin() as conn:
            ensure_account(conn, account, "oanda", "USD", "live", Decimal(100_000), run_id)
        added = runner.invoke(app, ["keys", "add", "oanda", "--account", account, "--url", venue.url],
                              input=f"{TOKEN}\n{ACCOUNT_ID}\n")  # fmt: skip
        agrees = runner.invoke(app, ["reconcile", account])
        venue.balance += Decimal(7)
        differs = runner.invoke(app, ["reconcile", account])
    finally:
        venue.stop()
    assert added.exit_code == 0, added.output
    assert agrees.exit_code == 0 and f"{account} agrees with oanda" in agrees.output, agrees.output
    assert differs.exit_code == 1 and "+7" in differs.output, differs.output
