"""Read-side queries of the console: everything a page shows, read from ``raw``/``audit`` (never written here).

Money is in the account's base currency through ``alphaloom.reporting.account_summary.account_summary`` (the same view as
``alphaloom pnl``). Equity history is ``audit.equity_marks`` (one mark per decision time); the ranges "day" and
"week" are counted back from the newest mark, so a replayed or paused account still shows its last day. Freshness is
the newest bar per symbol against the wall clock in bar lengths (no alert is raised from here: ``alphaloom health``
alerts). Nothing here returns a secret: credentials are never read, and settings are shown by explicit name only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.domain import timeframe_delta
from alphaloom.errors import DataUnavailableError
from alphaloom.markets import market_specs
from alphaloom.ops.kill_switch import KillSwitchState, kill_switch_state
from alphaloom.records import console as console_records
from alphaloom.records import runs
from alphaloom.records.decisions import (
    DecisionListing,
    decided_symbols,
    latest_checks_by_name,
    latest_listings,
    latest_var_check,
    listings,
)
from alphaloom.records.equity import equity_history
from alphaloom.records.guards import latest_halt, recent_trips
from alphaloom.records.llm_ledger import usage_since
from alphaloom.records.orders import OpenOrder, open_orders
from alphaloom.reporting.account_summary import AccountSummary, account_summary
from alphaloom.settings import Settings

RANGES = {"day": timedelta(days=1), "week": timedelta(days=7), "all": None}
REPORT_SUFFIXES = (".html", ".png", ".svg", ".csv", ".json")


@dataclass(frozen=True)
class NowView:
    account: str
    view: AccountSummary | None
    value_error: str | None
    equity: list[tuple[datetime, float]]
    kill_switch: KillSwitchState
    halt: dict[str, Any] | None
    armed: bool | None
    mode: str | None
    open_orders: list[OpenOrder]
    schedules: list[dict[str, Any]]
    freshness: list[dict[str, Any]]
    llm: dict[str, Any]
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))


def equity_marks(conn: Connection, account: str, span: str = "all") -> list[tuple[datetime, float]]:
    window = RANGES.get(span)
    return equity_history(conn, account, None if window is None else int(window.total_seconds()))


def halt_state(conn: Connection, account: str) -> dict[str, Any] | None:
    row = latest_halt(conn, account)
    return None if row is None else row._asdict()


def schedules(conn: Connection, account: str) -> list[dict[str, Any]]:
    """TWAP/iceberg parents with slices still scheduled: how many left, quantity left, the next due time."""
    rows = conn.execute(
        text(
            """select parent_client_order_id, symbol, side, count(*) as slices_left, sum(quantity) as quantity_left,
                      min(due_at) as next_due
               from audit.scheduled_slices where account = :a and status = 'scheduled'
               group by parent_client_order_id, symbol, side order by min(due_at)"""
        ),
        {"a": account},
    ).mappings()
    return [dict(r) for r in rows]


def freshness(conn: Connection, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    bar = timeframe_delta(settings.timeframe)
    rows = conn.execute(
        text(
            """select symbol, max(ts) as last_ts from raw.ohlcv where exchange = :e and timeframe = :tf
               group by symbol order by symbol"""
        ),
        {"e": settings.exchange, "tf": settings.timeframe},
    ).all()
    out = []
    for symbol, last_ts in rows:
        closed = last_ts + bar
        bars_ago = (now - closed) / bar
        out.append({"symbol": symbol, "last_close": closed, "bars_ago": bars_ago,
                    "stale": bars_ago > settings.ops.stale_after_bars})  # fmt: skip
    return out


def llm_spend(conn: Connection, settings: Settings, now: datetime) -> dict[str, Any]:
    row = usage_since(conn, now.replace(hour=0, minute=0, second=0, microsecond=0))
    return {**row, "cost_budget": settings.llm.daily_cost_budget, "token_budget": settings.llm.daily_token_budget}


def now_view(conn: Connection, settings: Settings, span: str = "all") -> NowView:
    account = settings.account
    now = datetime.now(UTC)
    bar = f"{int(timeframe_delta(settings.timeframe).total_seconds())} seconds"
    error = None
    try:
        view = account_summary(conn, account, exchange=settings.exchange, timeframe=settings.timeframe, bar=bar)
    except DataUnavailableError as exc:
        view, error = None, str(exc)
    meta = conn.execute(text("select mode, live_enabled from audit.accounts where id = :a"), {"a": account}).first()
    return NowView(
        account=account, view=view, value_error=error, equity=equity_marks(conn, account, span),
        kill_switch=kill_switch_state(conn), halt=halt_state(conn, account),
        armed=None if meta is None else bool(meta.live_enabled), mode=None if meta is None else meta.mode,
        open_orders=open_orders(conn, account), schedules=schedules(conn, account),
        freshness=freshness(conn, settings, now), llm=llm_spend(conn, settings, now), as_of=now,
    )  # fmt: skip


def _why_none(row: dict[str, Any]) -> str:
    if row["orders"]:
        return ""
    if row["denied"]:
        return f"denied by {row['denied']}"
    if row["action"] == "hold":
        return "hold: consensus below the threshold"
    return "no order: already long" if row["action"] == "buy" else "no order: nothing to sell"


def _with_why_none(rows: list[DecisionListing]) -> list[dict[str, Any]]:
    return [{**r._asdict(), "why_none": _why_none(r._asdict())} for r in rows]


def latest_decisions(conn: Connection, account: str) -> list[dict[str, Any]]:
    return _with_why_none(latest_listings(conn, account))


def decisions(
    conn: Connection, account: str, *, symbol: str | None = None, action: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    return _with_why_none(listings(conn, account, symbol=symbol, action=action, limit=limit))


def symbols(conn: Connection, account: str) -> list[str]:
    return decided_symbols(conn, account)


@dataclass(frozen=True)
class RiskView:
    drawdown_pct: float | None
    peak: float | None
    equity: float | None
    exposures: list[dict[str, Any]]
    by_class: list[dict[str, Any]]
    gross: Decimal
    net: Decimal
    latest_checks: list[dict[str, Any]]
    trips: list[dict[str, Any]]
    var_check: dict[str, Any] | None = None


def risk_view(conn: Connection, settings: Settings, now: NowView) -> RiskView:
    marks = equity_marks(conn, settings.account, "all")
    peak = max((e for _, e in marks), default=None)
    current = marks[-1][1] if marks else None
    dd = (peak - current) / peak * 100 if peak and current is not None else None
    exposures: list[dict[str, Any]] = []
    classes: dict[str, Decimal] = {}
    gross = net = Decimal(0)
    equity = now.view.equity if now.view is not None else Decimal(0)
    if now.view is not None:
        held = [p for p in now.view.positions if p.quantity != 0]
        # each market's class as the risk rules group it: venue metadata (raw.markets), else the configured class
        markets = market_specs(conn, exchange=settings.exchange, symbols=[p.symbol for p in held],
                               asset_classes=settings.asset_classes, quantity_steps=settings.quantity_steps)  # fmt: skip
        for p in held:
            klass = markets[p.symbol].asset_class
            pct = p.market_value / equity * 100 if equity else Decimal(0)
            exposures.append({"symbol": p.symbol, "class": klass, "value": p.market_value, "pct": pct})
            classes[klass] = classes.get(klass, Decimal(0)) + abs(p.market_value)
            gross += abs(p.market_value)
            net += p.market_value
    by_class = [{"class": k, "value": v, "pct": v / equity * 100 if equity else Decimal(0)} for k, v in classes.items()]
    checks = latest_checks_by_name(conn, settings.account)
    var = latest_var_check(conn, settings.account)
    trips = recent_trips(conn, settings.account, 20)
    return RiskView(dd, peak, current, exposures, by_class, gross, net, [c._asdict() for c in checks],
                    [dict(t) for t in trips], var._asdict() if var else None)  # fmt: skip


def recent_runs(conn: Connection, limit: int = 30) -> list[dict[str, Any]]:
    """The newest ``limit`` runs for the runs page (``alphaloom.records.runs.recent_runs``)."""
    return runs.recent_runs(conn, limit)


def reports(home: Path) -> list[dict[str, Any]]:
    """Report pages under ``<home>/reports/<run id>/`` (backtest ``report.html``, ``walk_forward.html``), newest
    first."""
    root = home / "reports"
    found = []
    if root.is_dir():
        for page in root.glob("*/*.html"):
            found.append({"run_id": page.parent.name, "name": page.name, "modified": datetime.fromtimestamp(
                page.stat().st_mtime, UTC)})  # fmt: skip
    return sorted(found, key=lambda r: r["modified"], reverse=True)


def report_file(home: Path, run_id: str, name: str) -> Path | None:
    """The file ``name`` of report ``run_id``, or None when it is not a plain report file inside that folder."""
    root = (home / "reports").resolve()
    candidate = (root / run_id / name).resolve()
    if candidate.parent.parent != root or candidate.suffix not in REPORT_SUFFIXES or not candidate.is_file():
        return None
    return candidate


def recent_actions(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` console actions (``alphaloom.records.console.recent_actions``)."""
    return console_records.recent_actions(conn, limit)


def accounts(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(text("select id, venue, mode, live_enabled, base_currency from audit.accounts order by id"))
    return [dict(r) for r in rows.mappings()]
