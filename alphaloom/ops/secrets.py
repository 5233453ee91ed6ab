"""Venue credentials encrypted at rest (Fernet) in ``secrets.credentials``.

The key comes from ``ALPHALOOM_SECRET_KEY`` (urlsafe base64 Fernet key); else, where the OS keyring has a backend
(``keyring``: macOS Keychain, Windows Credential Locker, Secret Service) and ``secret_key_store`` allows it, from the
keyring entry ``alphaloom-secret-key`` / ``settings.home`` (created on first use, or taken over from an existing key
file so stored credentials stay readable); else from the file ``settings.home / secret.key``, created with mode 0600 on
first use and refused when its mode lets others read it. Headless servers usually have no keyring backend and use the
file. Plaintext credentials exist only in memory, inside
``Credentials``, whose repr hides them; they are never logged, printed or written to audit rows.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, text

from alphaloom.errors import ConfigError
from alphaloom.settings import Settings


@dataclass(frozen=True)
class Credentials:
    """An exchange's API key and secret (and passphrase where the venue has one). ``repr`` never shows them."""

    exchange: str
    account: str
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    password: str | None = field(default=None, repr=False)

    def ccxt_config(self) -> dict[str, str]:
        config = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            config["password"] = self.password
        return config


# Venues reached through their own client rather than ccxt (``alphaloom keys add alpaca|oanda``): no passphrase.
NATIVE_VENUES: tuple[str, ...] = ("alpaca", "oanda")

KEYRING_SERVICE = "alphaloom-secret-key"


def load_key(settings: Settings) -> bytes:
    """The Fernet key: the environment's, else the OS keyring's (where allowed and a backend exists), else the 0600
    key file (created when absent)."""
    if settings.ops.secret_key is not None:
        key = settings.ops.secret_key.get_secret_value().encode()
    elif (backend := _keyring_backend(settings)) is not None:
        key = _key_from_keyring(backend, settings)
    else:
        key = _key_from_file(settings)
    try:
        Fernet(key)
    except ValueError:
        raise ConfigError("ALPHALOOM_SECRET_KEY / the stored key is not a valid Fernet key") from None
    return key


def _keyring_backend(settings: Settings) -> Any | None:
    """The OS keyring backend to keep the key in, or None to use the key file."""
    if settings.ops.secret_key_store == "file":
        return None
    try:
        import keyring
    except ImportError:
        backend = None
    else:
        backend = keyring.get_keyring()
        if getattr(backend, "priority", 0) <= 0:  # keyring's fail / null backends: nothing to store in
            backend = None
    if backend is None and settings.ops.secret_key_store == "keyring":
        raise ConfigError("ALPHALOOM_SECRET_KEY_STORE=keyring but no OS keyring backend is available here "
                          "(set it to 'file' or 'auto', or provide ALPHALOOM_SECRET_KEY)")  # fmt: skip
    return backend


def _key_from_keyring(backend: Any, settings: Settings) -> bytes:
    entry = str(settings.home.resolve())
    stored = backend.get_password(KEYRING_SERVICE, entry)
    if stored is None:
        existing = settings.secret_key_file
        stored = _key_from_file(settings).decode() if existing.exists() else Fernet.generate_key().decode()
        backend.set_password(KEYRING_SERVICE, entry, stored)
    return stored.encode()


def _key_from_file(settings: Settings) -> bytes:
    path = settings.secret_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{path} must be readable by its owner only (mode 0600), found {oct(mode)}")
    return path.read_bytes().strip()


def store_credentials(conn: Connection, settings: Settings, credentials: Credentials) -> None:
    """Encrypt and upsert ``credentials`` for (exchange, account)."""
    payload = json.dumps(
        {"api_key": credentials.api_key, "secret": credentials.secret, "password": credentials.password}
    ).encode()
    token = Fernet(load_key(settings)).encrypt(payload).decode()
    conn.execute(
        text(
            """insert into secrets.credentials (exchange, account, ciphertext) values (:e, :a, :c)
               on conflict (exchange, account) do update set ciphertext = excluded.ciphertext, created_at = now()"""
        ),
        {"e": credentials.exchange, "a": credentials.account, "c": token},
    )


def load_credentials(conn: Connection, settings: Settings, exchange: str, account: str) -> Credentials | None:
    """The decrypted credentials, or None when none are stored. A wrong key is a ``ConfigError``."""
    token = conn.execute(
        text("select ciphertext from secrets.credentials where exchange = :e and account = :a"),
        {"e": exchange, "a": account},
    ).scalar()
    if token is None:
        return None
    try:
        data = json.loads(Fernet(load_key(settings)).decrypt(token.encode()))
    except InvalidToken:
        raise ConfigError(f"credentials for {exchange}/{account} cannot be decrypted with the configured key") from None
    return Credentials(exchange, account, data["api_key"], data["secret"], data.get("password"))


def list_credentials(conn: Connection) -> list[tuple[str, str, object]]:
    """(exchange, account, created_at) of every stored credential; never the secrets."""
    return [
        (r.exchange, r.account, r.created_at)
        for r in conn.execute(text("select exchange, account, created_at from secrets.credentials order by 1, 2"))
    ]


def delete_credentials(conn: Connection, exchange: str, account: str) -> bool:
    return (
        conn.execute(
            text("delete from secrets.credentials where exchange = :e and account = :a returning 1"),
            {"e": exchange, "a": account},
        ).first()
        is not None
    )
