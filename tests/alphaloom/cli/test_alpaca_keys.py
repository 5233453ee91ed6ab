"""``alphaloom keys add alpaca``: Alpaca's keys stored encrypted like a ccxt venue's (no passphrase asked), found by the
broker factory; a mistyped venue or a bad Alpaca setting is one line, exit 2."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.ops.secrets import load_credentials
from alphaloom.settings import get_settings

runner = CliRunner()


def _one_line_refusal(args: list[str], *expected: str) -> None:
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in expected:
        assert word in lines[0], lines[0]


def test_keys_add_alpaca_stores_them_encrypted_without_a_passphrase(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = f"alpaca-keys-{uuid.uuid4().hex[:8]}"
    planted_key, planted_secret = f"PK{uuid.uuid4().hex.upper()}", f"SECRET{uuid.uuid4().hex}"
    monkeypatch.setenv("ALPHALOOM_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["keys", "add", "alpaca", "--account", account],
                               input=f"{planted_key}\n{planted_secret}\n")  # fmt: skip
        with engine.connect() as conn:
            stored = load_credentials(conn, get_settings(), "alpaca", account)
            cipher = conn.execute(text("select ciphertext from secrets.credentials where exchange = 'alpaca' "
                                       "and account = :a"), {"a": account}).scalar_one()  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "Passphrase" not in result.output and f"alpaca/{account}" in result.output
    assert planted_key not in result.output and planted_secret not in result.output
    assert stored is not None and (stored.api_key, stored.secret, stored.password) == (planted_key, planted_secret,
                                                                                        None)  # fmt: skip
    assert planted_key not in cipher and planted_secret not in cipher


def test_a_mistyped_venue_is_refused_naming_alpaca(engine: Engine) -> None:
    _one_line_refusal(["keys", "add", "alpacca"], "'alpacca'", "not a ccxt exchange id", "alpaca")


def test_a_bad_alpaca_setting_is_one_line(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHALOOM_ALPACA_OUTSIDE_SESSION", "later")
    get_settings.cache_clear()
    try:
        _one_line_refusal(["keys", "list"], "ALPHALOOM_ALPACA_OUTSIDE_SESSION")
    finally:
        get_settings.cache_clear()
