"""Is AlphaLoom healthy? Database, migrations, Prefect API, last runs per flow, data freshness, kill switch.

``check_health`` returns one ``Check`` per concern; ``Report.healthy`` is False when any check failed (warnings do not
count), and the CLI exits non-zero then. Stale data also raises a ``stale_data`` alert (``alphaloom.ops.alerts``).

What "fail" means, check by check:
- database: it cannot be reached.
- migrations: its revision is not the head of this code's migrations.
- prefect_api: ``PREFECT_API_URL`` is set and ``/health`` does not answer OK (unset: warn, the ephemeral API is used).
- runs: the latest finished run of some flow failed (each flow's last successful run is listed).
- freshness: some configured symbol has no new bar within N bar lengths of *session* time before ``now``: the time
  since its last bar closed counts only while its market trades (``alphaloom.ingest.calendars``: crypto 24/7, forex
  weekdays, stocks exchange hours; the market's class from the venue's metadata in ``raw.markets`` or
  ``ALPHALOOM_ASSET_CLASSES``, as the trader reads it, an unclassified one 24/7), so a stock is not stale at the weekend or overnight. N is
  ``ALPHALOOM_STALE_AFTER_BARS``, or per market ``ALPHALOOM_STALE_AFTER_BARS_BY_MARKET`` (JSON, keys
  ``exchange:asset_class``, ``exchange`` or ``asset_class``, most specific first), e.g. ``{"stocks": 2}``.
- kill_switch: the kill switch is engaged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from sqlalchemy import Engine, text

from alphaloom.domain import bar_close, timeframe_delta
from alphaloom.ingest.calendars import calendar_class_of, calendar_for
from alphaloom.markets import market_specs
from alphaloom.ops.alerts import alert
from alphaloom.records.runs import flow_outcomes
from alphaloom.settings import Settings
from alphaloom.settings import prefect_api_url as configured_prefect_api_url

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    checks: list[Check]

    @property
    def healthy(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def get(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)


def _database(engine: Engine) -> Check:
    try:
        with engine.connect() as conn:
            version = conn.execute(text("show server_version")).scalar()
    except Exception as exc:
        return Check("database", "fail", f"unreachable: {type(exc).__name__}")
    return Check("database", "ok", f"PostgreSQL {version}", {"url": engine.url.render_as_string(hide_password=True)})


def _migrations(engine: Engine) -> Check:
    from alphaloom.db.migrate import current_revision, head_revision

    try:
        current, head = current_revision(engine), head_revision()
    except Exception as exc:
        return Check("migrations", "fail", f"cannot read the revision: {type(exc).__name__}")
    if current != head:
        return Check("migrations", "fail", f"at {current}, code expects {head}", {"current": current, "head": head})
    return Check("migrations", "ok", f"at head {head}")


def _prefect(api_url: str | None, timeout: float) -> Check:
    if not api_url:
        return Check("prefect_api", "warn", "PREFECT_API_URL unset: flows use a temporary local API")
    try:
        response = httpx.get(api_url.rstrip("/") + "/health", timeout=timeout)
    except httpx.HTTPError as exc:
        return Check("prefect_api", "fail", f"{api_url} unreachable: {type(exc).__name__}")
    if response.status_code != 200:
        return Check("prefect_api", "fail", f"{api_url}/health answered HTTP {response.status_code}")
    return Check("prefect_api", "ok", f"{api_url} healthy")


def _runs(engine: Engine) -> Check:
    with engine.connect() as conn:
        rows = flow_outcomes(conn)
    details = {
        r.flow: {"last_success": r.last_success.isoformat() if r.last_success else None, "last_status": r.last_status}
        for r in rows
    }
    failing = [r.flow for r in rows if r.last_status == "failed"]
    if not rows:
        return Check("runs", "warn", "no flow has run yet", details)
    if failing:
        return Check("runs", "fail", f"latest run failed: {', '.join(failing)}", details)
    return Check("runs", "ok", f"{len(rows)} flows, latest runs succeeded", details)


def stale_limit_for(exchange: str, asset_class: str, by_market: Mapping[str, int], default: int) -> int:
    """The staleness limit in bars of one market: ``exchange:asset_class``, else ``exchange``, else ``asset_class``
    in ``by_market``, else ``default``."""
    for key in (f"{exchange}:{asset_class}", exchange, asset_class):
        if key in by_market:
            return by_market[key]
    return default


def _freshness(
    engine: Engine,
    exchange: str,
    timeframe: str,
    symbols: Sequence[str],
    now: datetime,
    stale_after_bars: int,
    by_market: Mapping[str, int] | None = None,
    asset_classes: Mapping[str, str] | None = None,
) -> Check:
    bar = timeframe_delta(timeframe)
    with engine.connect() as conn:
        specs = market_specs(conn, exchange=exchange, symbols=symbols, asset_classes=asset_classes or {},
                             quantity_steps={})  # fmt: skip
        latest = dict(
            conn.execute(
                text(
                    """select symbol, max(ts) from raw.ohlcv
                       where exchange = :e and timeframe = :tf and symbol = any(:s) group by symbol"""
                ),
                {"e": exchange, "tf": timeframe, "s": list(symbols)},
            ).all()
        )
    stale: dict[str, str] = {}
    markets: dict[str, dict[str, Any]] = {}
    for symbol in symbols:
        asset_class = calendar_class_of(specs[symbol])  # the venue's metadata or configuration, as the trader's
        limit = stale_limit_for(exchange, asset_class, by_market or {}, stale_after_bars)
        ts = latest.get(symbol)
        market: dict[str, Any] = {"asset_class": asset_class, "market_class": specs[symbol].asset_class,
                                  "stale_after_bars": limit}  # fmt: skip
        markets[symbol] = market
        if ts is None:
            stale[symbol] = "no bars"
            continue
        # Only session time counts: a stock's last Friday bar is not overdue on Sunday.
        closed = bar_close(ts, timeframe)  # a month bar closes at the next month's start
        overdue = calendar_for(asset_class).session_time_between(closed, now, timeframe) / bar
        market["session_bars_since_last"] = round(overdue, 2)
        if overdue > limit:
            stale[symbol] = (
                f"last bar closed {closed:%Y-%m-%d %H:%M} UTC, {overdue:.1f} {asset_class} session bars ago"
                f" (limit {limit})"
            )
    details = {"exchange": exchange, "timeframe": timeframe, "stale_after_bars": stale_after_bars,
               "by_market": dict(by_market or {}), "markets": markets, "stale": stale}  # fmt: skip
    if stale:
        summary = (
            f"{len(stale)}/{len(symbols)} symbols stale (no new {timeframe} bar within their markets' session limits)"
        )
        alert("stale_data", f"{summary}: {', '.join(sorted(stale))}", details)
        return Check("freshness", "fail", summary, details)
    return Check("freshness", "ok", f"{len(symbols)} symbols fresh", details)


def _kill_switch(engine: Engine) -> Check:
    from alphaloom.ops.kill_switch import kill_switch_state

    with engine.connect() as conn:
        state = kill_switch_state(conn)
    if state.engaged:
        return Check("kill_switch", "fail", f"ENGAGED: {state.reason} (by {state.changed_by})")
    return Check("kill_switch", "ok", "off")


def check_health(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    symbols: Sequence[str] | None = None,
    prefect_api_url: str | None = None,
) -> Report:
    """Run every check; later checks are skipped (failed) when the database is unreachable."""
    now = now or datetime.now(UTC)
    api_url = prefect_api_url if prefect_api_url is not None else configured_prefect_api_url()
    checks = [_database(engine)]
    if checks[0].status == "fail":
        return Report([*checks, Check("migrations", "fail", "database unreachable")])
    checks.append(_migrations(engine))
    checks.append(_prefect(api_url, settings.ops.alert_timeout_seconds))
    later = {
        "runs": lambda: _runs(engine),
        "freshness": lambda: _freshness(
            engine,
            settings.exchange,
            settings.timeframe,
            symbols or settings.symbols,
            now,
            settings.ops.stale_after_bars,
            settings.ops.stale_after_bars_by_market,
            settings.asset_classes,
        ),
        "kill_switch": lambda: _kill_switch(engine),
    }
    for name, check in later.items():
        try:
            checks.append(check())
        except Exception as exc:  # e.g. a missing table before migrations: report it, keep checking
            checks.append(Check(name, "fail", f"{type(exc).__name__}: {exc}"[:200]))
    return Report(checks)
