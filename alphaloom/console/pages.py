"""The console's pages (GET): now, decisions and orders traced back, risk, runs and reports, and the actions page.

Each reads through ``alphaloom.console.queries`` or ``alphaloom.reporting.explain`` and passes chosen values only to its
template (``ConsoleWeb.page``), never a settings object or a credential.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import Connection

from alphaloom.console import charts, queries
from alphaloom.console.web import web_of
from alphaloom.errors import NotFoundError
from alphaloom.reporting.explain import BarRow, FeatureLink, explain_decision, explain_order, price_window
from alphaloom.reporting.explain_html import price_chart_svg, render_html
from alphaloom.settings import Settings

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def now(request: Request, range: str = "all") -> Response:
    """The account now: equity and drawdown over the chosen range, positions, open orders."""
    web = web_of(request)
    span = range if range in queries.RANGES else "all"
    with web.engine.connect() as conn:
        view = queries.now_view(conn, web.settings, span)
    equity = view.equity
    dd = list(zip([t for t, _ in equity], charts.drawdown([v for _, v in equity]), strict=True))
    return web.page(
        request, "now.html", now=view, span=span, ranges=list(queries.RANGES),
        equity_svg=charts.line_svg(equity, title=f"equity marked at each decision ({view.view.base_currency if view.view else ''})"),
        drawdown_svg=charts.line_svg(dd, title="drawdown from peak", fill=True, unit="%"),
    )  # fmt: skip


@router.get("/decisions", response_class=HTMLResponse)
def decisions(request: Request, symbol: str = "", action: str = "") -> Response:
    """The latest decision per symbol and the decisions filtered by symbol and action."""
    web = web_of(request)
    account = web.settings.account
    with web.engine.connect() as conn:
        latest = queries.latest_decisions(conn, account)
        rows = queries.decisions(conn, account, symbol=symbol, action=action)
        symbols = queries.symbols(conn, account)
    return web.page(request, "decisions.html", latest=latest, rows=rows, symbols=symbols, symbol=symbol,
                    action=action)  # fmt: skip


def _window(conn: Connection, settings: Settings, features: FeatureLink | None, symbol: str, timeframe: str,
            as_of: Any) -> list[BarRow]:  # fmt: skip
    """The bars around a decision, on the exchange its features were read from (else the configured one)."""
    key = features.key if features else {}
    return price_window(conn, exchange=key.get("exchange", settings.exchange), symbol=symbol, timeframe=timeframe,
                        as_of=as_of)  # fmt: skip


@router.get("/decisions/{decision_id}", response_class=HTMLResponse)
def decision(request: Request, decision_id: str) -> Response:
    """One decision traced back to its inputs, with the price around it."""
    web = web_of(request)
    with web.engine.connect() as conn:
        try:
            chain = explain_decision(conn, decision_id)
        except NotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        d = chain.decision
        window = _window(conn, web.settings, chain.features, d.symbol, d.timeframe, d.as_of)
    chart = price_chart_svg(window, d.as_of, None) if window else ""
    return web.page(request, "decision.html", chain=chain, d=d, chart=chart)


@router.get("/orders/{client_order_id}", response_class=HTMLResponse)
def order(request: Request, client_order_id: str) -> Response:
    """One order traced back to the decision, features and news behind it (the explain page)."""
    web = web_of(request)
    web.require_view(request)
    with web.engine.connect() as conn:
        try:
            chain = explain_order(conn, client_order_id)
        except NotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        window: list[BarRow] = []
        if chain.decision is not None:
            window = _window(conn, web.settings, chain.features, chain.order.symbol, chain.decision.timeframe,
                             chain.decision.as_of)  # fmt: skip
    return HTMLResponse(render_html(chain, window, prefect_ui=web.config.prefect_ui))


@router.get("/risk", response_class=HTMLResponse)
def risk(request: Request) -> Response:
    """Exposure against the configured limits, value at risk and the drawdown gauge."""
    web = web_of(request)
    settings = web.settings
    with web.engine.connect() as conn:
        view = queries.now_view(conn, settings)
        r = queries.risk_view(conn, settings, view)
    return web.page(
        request, "risk.html", r=r, var_check=r.var_check, base=view.view.base_currency if view.view else "",
        limits={"asset": settings.risk.max_asset_exposure_pct, "class": settings.risk.max_class_exposure_pct,
                "gross": settings.risk.max_gross_leverage, "net": settings.risk.max_net_leverage,
                "var": settings.risk.max_var_pct, "cluster": settings.risk.max_cluster_exposure_pct},
        equity=view.view.equity if view.view else None,
        dd_gauge=charts.gauge_svg(r.drawdown_pct, [("reduce", float(settings.risk.drawdown_reduce_pct)),
                                                   ("halt", float(settings.risk.drawdown_halt_pct))]),
    )  # fmt: skip


@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request) -> Response:
    """Recent flow runs and the reports written under the home folder."""
    web = web_of(request)
    with web.engine.connect() as conn:
        rows = queries.recent_runs(conn)
    return web.page(request, "runs.html", runs=rows, reports=queries.reports(web.settings.home))


@router.get("/reports/{run_id}/{name}")
def report(request: Request, run_id: str, name: str) -> Response:
    """One file of a run's report (only files the report folder holds)."""
    web = web_of(request)
    web.require_view(request)
    path = queries.report_file(web.settings.home, run_id, name)
    if path is None:
        raise HTTPException(status_code=404, detail="no such report file")
    return FileResponse(path)


@router.get("/actions", response_class=HTMLResponse)
def actions_page(request: Request, message: str = "") -> Response:
    """The accounts, the recent actions and the forms to act."""
    web = web_of(request)
    with web.engine.connect() as conn:
        accounts = queries.accounts(conn)
        done = queries.recent_actions(conn)
    return web.page(request, "actions.html", accounts=accounts, done=done,
                    prefect_api=bool(web.config.actions.prefect_api_url), message=message)  # fmt: skip
