"""Operator arguments checked before anything starts (no Prefect, no run record, no alert).

A mistake is answered with one line on stderr naming the input and the problem, and exit code 2 (``refuse``). Only
failures of the system become failed runs and alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NoReturn

import typer
from rich.console import Console

from alphaloom.ops.catalog import SeriesRange

_err = Console(stderr=True, width=200)


def refuse(message: str) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with code 2."""
    _err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def utc(value: datetime | None) -> datetime | None:
    """A naive command-line time is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def positive(value: int, option: str) -> int:
    if value < 1:
        refuse(f"{option} must be at least 1, got {value}")
    return value


def one_of(value: str, option: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        refuse(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def symbol_list(value: str | None) -> list[str] | None:
    chosen = [s.strip() for s in value.split(",") if s.strip()] if value else []
    return chosen or None


def _fmt(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def stored_symbols(
    chosen: list[str], stored: dict[str, SeriesRange], *, exchange: str, timeframe: str, option: str = "--symbols"
) -> list[str]:
    """``chosen`` when every one has bars stored; otherwise refuse, saying which are stored (and a case fix)."""
    if not stored:
        refuse(f"no {timeframe} bars stored on exchange {exchange!r}: run `alphaloom ingest prices` first")
    unknown = [s for s in chosen if s not in stored]
    if unknown:
        hints = {s: next((k for k in stored if k.upper() == s.upper()), None) for s in unknown}
        said = ", ".join(f"{s} (did you mean {hints[s]}?)" if hints[s] else s for s in unknown)
        refuse(f"{option}: no {timeframe} bars stored on {exchange} for {said}; stored: {', '.join(stored)}")
    return chosen


def known_by(when: datetime, chosen: list[str], stored: dict[str, SeriesRange], option: str) -> None:
    """Refuse a time before every chosen symbol's first bar closed (nothing could be decided then), saying the range."""
    ranges = [stored[s] for s in chosen if s in stored]
    if ranges and all(when < r.first_close for r in ranges):
        first, last = min(r.first_close for r in ranges), max(r.last_close for r in ranges)
        refuse(f"{option} {_fmt(when)} is before any data: bars of {', '.join(chosen)} close from {_fmt(first)} "
               f"to {_fmt(last)}")  # fmt: skip


def iso_time(value: str, option: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        refuse(f"{option} must be an ISO time such as 2026-01-31T12:00:00+00:00, got {value!r}")
    if when.tzinfo is None:
        refuse(f"{option} must include a timezone (e.g. +00:00), got {value!r}")
    return when
