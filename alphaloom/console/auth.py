"""Console login: scrypt password hashes in ``audit.console_users``, server-side sessions, CSRF tokens.

What a caller can rely on:
- ``hash_password``/``verify_password``: ``scrypt$n$r$p$salt$hash`` (hex), compared in constant time; the password
  itself is never stored or logged.
- ``Sessions``: a session id is 32 random bytes (URL-safe) held only in this process (a restart logs everyone out,
  which is the safe direction); each session has its own CSRF token, and expires after ``ttl`` seconds idle.
- The cookie carrying the session id is set HttpOnly, SameSite=Strict and, when served over HTTPS, Secure (``app``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import Connection

from alphaloom.records import console as console_records

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(digest) // 2
        )
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def set_password(conn: Connection, username: str, password: str) -> None:
    """Store (or replace) ``username``'s password hash; ``ValueError`` for an empty name or a short password."""
    if not username.strip():
        raise ValueError("the user name must not be empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    console_records.upsert_user(conn, username.strip(), hash_password(password))


def check_login(conn: Connection, username: str, password: str) -> bool:
    stored = console_records.password_hash(conn, username)
    if stored is None:
        verify_password(password, hash_password("timing-equaliser"))  # same cost whether the user exists or not
        return False
    return verify_password(password, stored)


def has_users(conn: Connection) -> bool:
    return console_records.has_users(conn)


@dataclass
class Session:
    username: str
    csrf: str
    last_seen: float


@dataclass
class Sessions:
    ttl: float = 8 * 3600
    _by_id: dict[str, Session] = field(default_factory=dict)

    def create(self, username: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        session = Session(username, secrets.token_urlsafe(32), time.monotonic())
        self._by_id[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        session = self._by_id.get(sid or "")
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.ttl:
            self._by_id.pop(sid or "", None)
            return None
        session.last_seen = now
        return session

    def drop(self, sid: str | None) -> None:
        self._by_id.pop(sid or "", None)


def csrf_matches(session: Session | None, token: str | None) -> bool:
    return session is not None and bool(token) and hmac.compare_digest(session.csrf, token or "")
