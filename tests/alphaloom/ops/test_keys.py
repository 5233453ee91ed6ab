"""Credentials: encrypted at rest, never printed, logged or stored in audit rows (a planted key is searched for)."""

from __future__ import annotations

import logging
import os
import stat
import uuid
from pathlib import Path

import keyring
import pytest
from cryptography.fernet import Fernet
from keyring.backend import KeyringBackend
from keyring.backends import fail
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.errors import ConfigError
from alphaloom.ops.secrets import Credentials, load_credentials, load_key, store_credentials
from alphaloom.settings import OpsSettings, Settings, get_settings

runner = CliRunner()


def test_key_file_is_created_0600_and_a_loose_one_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, ops=OpsSettings(secret_key=None, secret_key_store="file"))
    key = load_key(settings)
    assert stat.S_IMODE(settings.secret_key_file.stat().st_mode) == 0o600 and load_key(settings) == key
    os.chmod(settings.secret_key_file, 0o644)
    with pytest.raises(ConfigError, match="0600"):
        load_key(settings)
    with pytest.raises(ConfigError, match="not a valid Fernet key"):
        load_key(Settings(home=tmp_path, ops=OpsSettings(secret_key="not-a-key")))


class SessionKeyring(KeyringBackend):
    """A keyring backend living in this process: the stand-in for an OS keyring (Keychain, Secret Service)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture()
def os_keyring():  # type: ignore[no-untyped-def]
    previous = keyring.get_keyring()
    backend = SessionKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_the_key_lives_in_the_os_keyring_where_one_exists_and_takes_over_an_existing_key_file(
    tmp_path: Path, os_keyring
) -> None:
    fresh = Settings(home=tmp_path / "fresh", ops=OpsSettings(secret_key=None, secret_key_store="auto"))
    key = load_key(fresh)
    assert load_key(fresh) == key and not fresh.secret_key_file.exists(), "kept in the keyring, no file written"
    assert list(os_keyring.entries.values()) == [key.decode()]

    older = Settings(home=tmp_path / "older", ops=OpsSettings(secret_key=None, secret_key_store="file"))
    file_key = load_key(older)  # credentials were encrypted with the file's key before the keyring was used
    assert load_key(older.model_copy(update={"ops.secret_key_store": "auto"})) == file_key
    assert file_key.decode() in os_keyring.entries.values()
    assert load_key(fresh.model_copy(update={"ops.secret_key_store": "file"})) != key, "'file' ignores the keyring"


def test_asking_for_the_keyring_where_there_is_no_backend_is_a_clear_error(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(ConfigError, match="no OS keyring backend"):
            load_key(Settings(home=tmp_path, ops=OpsSettings(secret_key=None, secret_key_store="keyring")))
        auto = Settings(home=tmp_path, ops=OpsSettings(secret_key=None, secret_key_store="auto"))
        assert load_key(auto) == auto.secret_key_file.read_bytes().strip(), "auto falls back to the 0600 file"
    finally:
        keyring.set_keyring(previous)


def test_credentials_round_trip_encrypted_and_a_wrong_key_is_a_clear_error(engine: Engine) -> None:
    settings = Settings(ops=OpsSettings(secret_key=Fernet.generate_key().decode()))
    account = f"keys-{uuid.uuid4().hex[:8]}"
    creds = Credentials("binance", account, "AK-visible-nowhere", "SK-visible-nowhere")
    assert "visible-nowhere" not in repr(creds)
    with engine.begin() as conn:
        store_credentials(conn, settings, creds)
        stored = conn.execute(
            text("select ciphertext from secrets.credentials where account = :a"), {"a": account}
        ).scalar_one()
        assert "visible-nowhere" not in stored
        assert load_credentials(conn, settings, "binance", account) == creds
        with pytest.raises(ConfigError, match="cannot be decrypted"):
            load_credentials(
                conn, Settings(ops=OpsSettings(secret_key=Fernet.generate_key().decode())), "binance", account
            )


def test_keys_add_prompts_without_echo_and_the_planted_key_is_nowhere(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys
) -> None:
    planted_key, planted_secret = f"PLANTED{uuid.uuid4().hex}", f"PLANTEDSECRET{uuid.uuid4().hex}"
    account = f"keys-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("ALPHALOOM_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    caplog.set_level(logging.DEBUG)
    try:
        result = runner.invoke(app, ["keys", "add", "binance", "--account", account],
                               input=f"{planted_key}\n{planted_secret}\n\n")  # fmt: skip
        listing = runner.invoke(app, ["keys", "list"])
        with engine.connect() as conn:
            creds = load_credentials(conn, get_settings(), "binance", account)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert creds is not None and creds.api_key == planted_key and creds.secret == planted_secret
    assert listing.exit_code == 0 and account in listing.output
    captured = capsys.readouterr()
    for text_seen in (result.output, listing.output, caplog.text, captured.out, captured.err):
        assert planted_key not in text_seen and planted_secret not in text_seen
    # every row of every table in the audit, raw and secrets schemas, as text
    with engine.connect() as conn:
        tables = conn.execute(
            text("select table_schema, table_name from information_schema.tables "
                 "where table_schema in ('audit', 'raw', 'secrets', 'paper_venue') and table_type = 'BASE TABLE'")
        ).all()  # fmt: skip
        for schema, table in tables:
            hits = conn.execute(
                text(f'select count(*) from "{schema}"."{table}" t where t::text like :k or t::text like :s'),
                {"k": f"%{planted_key}%", "s": f"%{planted_secret}%"},
            ).scalar_one()
            assert hits == 0, f"{schema}.{table}"
