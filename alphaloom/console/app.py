"""The operator console: a FastAPI app of server-rendered pages (Jinja2, inline SVG), live by short polling.

``create_app(config)`` builds it; ``alphaloom console`` and ``alphaloom serve`` run it under uvicorn.

Security, as a caller can rely on it:
- Viewing needs a login unless the console is bound to a loopback address (``ConsoleConfig.open_to_view``); every
  action needs a login, always. Without a stored user (``alphaloom console set-password``) nothing can be changed.
- The session cookie is HttpOnly, SameSite=Strict, Secure over HTTPS; every POST carries the session's CSRF token
  (the login form a double-submit token), else 403 and nothing changes.
- Pages show explicitly chosen values only; no setting object, credential or key is ever passed to a template.

Live updates: every element marked ``data-live`` is refreshed by ``static/console.js``, which fetches the same URL
every few seconds and swaps those elements in place (no reload, nothing else on the page touched); action forms are
posted with ``fetch`` and their answer shown in place, and still work as plain forms without JavaScript.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from alphaloom.console import charts, queries
from alphaloom.console.actions import ActionResult, Actor, ConsoleActions, record_action
from alphaloom.console.auth import Session, Sessions, check_login, csrf_matches, has_users
from alphaloom.errors import NotFoundError
from alphaloom.reporting.explain import explain_decision, explain_order, price_window
from alphaloom.reporting.explain_html import price_chart_svg, render_html
from alphaloom.settings import Settings

HERE = Path(__file__).parent
COOKIE = "alphaloom_console"
LOGIN_CSRF_COOKIE = "alphaloom_console_login"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-ancestors 'self'; form-action 'self'; base-uri 'none'")  # fmt: skip


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ConsoleConfig:
    engine: Engine
    settings: Settings
    actions: ConsoleActions
    host: str = "127.0.0.1"
    prefect_ui: str | None = None
    poll_seconds: float = 3.0
    sessions: Sessions = field(default_factory=Sessions)

    @property
    def open_to_view(self) -> bool:
        return is_loopback(self.host)


def _money(value: Any) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _ts(value: Any) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def create_app(config: ConsoleConfig) -> FastAPI:
    app = FastAPI(title="AlphaLoom console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["money"] = _money
    templates.env.filters["ts"] = _ts
    templates.env.filters["qs"] = lambda v: quote(str(v), safe="")
    sessions, engine, settings = config.sessions, config.engine, config.settings

    def session_of(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(COOKIE))

    def client(request: Request) -> str | None:
        return request.client.host if request.client else None

    def require_view(request: Request) -> Session | None:
        session = session_of(request)
        if session is None and not config.open_to_view:
            raise HTTPException(status_code=303, headers={"Location": f"/login?next={quote(request.url.path)}"})
        return session

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        session = require_view(request)
        with engine.connect() as conn:
            ks = queries.kill_switch_state(conn)
            halt = queries.halt_state(conn, settings.account)
        response = templates.TemplateResponse(
            request, name,
            {"session": session, "csrf": session.csrf if session else "", "kill_switch": ks, "halt": halt,
             "account": settings.account, "poll_ms": int(config.poll_seconds * 1000), "prefect_ui": config.prefect_ui,
             "path": request.url.path, "can_act": session is not None,
             "rendered_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), **context},
        )  # fmt: skip
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(HTTPException)
    async def redirects(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 303 and exc.headers:
            if request.headers.get("x-console-live"):
                return JSONResponse({"login": True}, status_code=401)
            return RedirectResponse(exc.headers["Location"], status_code=303)
        body = f"<h1>{exc.status_code}</h1><p>{escape(str(exc.detail))}</p><p><a href='/'>back to the console</a></p>"
        return HTMLResponse(body, status_code=exc.status_code)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # Scripts only from the console itself: text from the audit trail (headlines, rationales) can never run.
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", errors="replace")
        return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}

    # --- login ---------------------------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/", error: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        with engine.connect() as conn:
            users = has_users(conn)
        response = templates.TemplateResponse(
            request, "login.html",
            {"csrf": token, "next": next if next.startswith("/") and not next.startswith("//") else "/",
             "error": error, "users": users, "session": None, "kill_switch": None, "halt": None, "path": "/login",
             "poll_ms": 0, "can_act": False, "account": settings.account, "rendered_at": ""},
        )  # fmt: skip
        secure = request.url.scheme == "https"
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/login")
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        data = await form(request)
        cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        if not cookie_token or not secrets.compare_digest(cookie_token, data.get("csrf", "")):
            raise HTTPException(status_code=403, detail="CSRF token missing or wrong: reload the login page")
        username, password = data.get("username", "").strip(), data.get("password", "")
        with engine.begin() as conn:
            ok = check_login(conn, username, password)
            record_action(conn, Actor(username or "-", client(request)), "login", None, "",
                          ActionResult(ok, "logged in" if ok else "wrong user name or password", {}))  # fmt: skip
        next_url = data.get("next", "/")
        if not next_url.startswith("/") or next_url.startswith("//"):
            next_url = "/"
        if not ok:
            return RedirectResponse(f"/login?error=1&next={quote(next_url)}", status_code=303)
        sid, _ = sessions.create(username)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                            max_age=int(sessions.ttl), path="/")  # fmt: skip
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        session = session_of(request)
        data = await form(request)
        if not csrf_matches(session, data.get("csrf")):
            raise HTTPException(status_code=403, detail="CSRF token missing or wrong")
        sessions.drop(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # --- pages -----------------------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def now(request: Request, range: str = "all") -> Response:
        span = range if range in queries.RANGES else "all"
        with engine.connect() as conn:
            view = queries.now_view(conn, settings, span)
        equity = view.equity
        dd = list(zip([t for t, _ in equity], charts.drawdown([v for _, v in equity]), strict=True))
        return page(
            request, "now.html", now=view, span=span, ranges=list(queries.RANGES),
            equity_svg=charts.line_svg(equity, title=f"equity marked at each decision ({view.view.base_currency if view.view else ''})"),
            drawdown_svg=charts.line_svg(dd, title="drawdown from peak", fill=True, unit="%"),
        )  # fmt: skip

    @app.get("/decisions", response_class=HTMLResponse)
    def decisions(request: Request, symbol: str = "", action: str = "") -> Response:
        with engine.connect() as conn:
            latest = queries.latest_decisions(conn, settings.account)
            rows = queries.decisions(conn, settings.account, symbol=symbol, action=action)
            symbols = queries.symbols(conn, settings.account)
        return page(request, "decisions.html", latest=latest, rows=rows, symbols=symbols, symbol=symbol,
                    action=action)  # fmt: skip

    @app.get("/decisions/{decision_id}", response_class=HTMLResponse)
    def decision(request: Request, decision_id: str) -> Response:
        with engine.connect() as conn:
            try:
                chain = explain_decision(conn, decision_id)
            except NotFoundError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from None
            d = chain.decision
            key = chain.features.key if chain.features else {}
            window = price_window(conn, exchange=key.get("exchange", settings.exchange), symbol=d.symbol,
                                  timeframe=d.timeframe, as_of=d.as_of)  # fmt: skip
        chart = price_chart_svg(window, d.as_of, None) if window else ""
        return page(request, "decision.html", chain=chain, d=d, chart=chart)

    @app.get("/orders/{client_order_id}", response_class=HTMLResponse)
    def order(request: Request, client_order_id: str) -> Response:
        require_view(request)
        with engine.connect() as conn:
            try:
                chain = explain_order(conn, client_order_id)
            except NotFoundError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from None
            window = []
            if chain.decision is not None:
                key = chain.features.key if chain.features else {}
                window = price_window(conn, exchange=key.get("exchange", settings.exchange), symbol=chain.order.symbol,
                                      timeframe=chain.decision.timeframe, as_of=chain.decision.as_of)  # fmt: skip
        return HTMLResponse(render_html(chain, window, prefect_ui=config.prefect_ui))

    @app.get("/risk", response_class=HTMLResponse)
    def risk(request: Request) -> Response:
        with engine.connect() as conn:
            view = queries.now_view(conn, settings)
            r = queries.risk_view(conn, settings, view)
        return page(
            request, "risk.html", r=r, var_check=r.var_check, base=view.view.base_currency if view.view else "",
            limits={"asset": settings.risk.max_asset_exposure_pct, "class": settings.risk.max_class_exposure_pct,
                    "gross": settings.risk.max_gross_leverage, "net": settings.risk.max_net_leverage,
                    "var": settings.risk.max_var_pct, "cluster": settings.risk.max_cluster_exposure_pct},
            equity=view.view.equity if view.view else None,
            dd_gauge=charts.gauge_svg(r.drawdown_pct, [("reduce", float(settings.risk.drawdown_reduce_pct)),
                                                       ("halt", float(settings.risk.drawdown_halt_pct))]),
        )  # fmt: skip

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request) -> Response:
        with engine.connect() as conn:
            rows = queries.recent_runs(conn)
        return page(request, "runs.html", runs=rows, reports=queries.reports(settings.home))

    @app.get("/reports/{run_id}/{name}")
    def report(request: Request, run_id: str, name: str) -> Response:
        require_view(request)
        path = queries.report_file(settings.home, run_id, name)
        if path is None:
            raise HTTPException(status_code=404, detail="no such report file")
        return FileResponse(path)

    @app.get("/actions", response_class=HTMLResponse)
    def actions_page(request: Request, message: str = "") -> Response:
        with engine.connect() as conn:
            accounts = queries.accounts(conn)
            done = queries.recent_actions(conn)
        return page(request, "actions.html", accounts=accounts, done=done,
                    prefect_api=bool(config.actions.prefect_api_url), message=message)  # fmt: skip

    # --- actions ---------------------------------------------------------------------------------------------------

    async def acting(request: Request) -> tuple[Actor, dict[str, str]]:
        session = session_of(request)
        if session is None:
            raise HTTPException(status_code=401, detail="log in to act (alphaloom console set-password makes a user)")
        data = await form(request)
        if not csrf_matches(session, data.get("csrf")):
            raise HTTPException(status_code=403, detail="CSRF token missing or wrong: nothing was changed")
        return Actor(session.username, client(request)), data

    def answer(request: Request, result: ActionResult) -> Response:
        if request.headers.get("x-console-live"):
            return JSONResponse({"ok": result.ok, "message": result.message}, status_code=200 if result.ok else 409)
        return RedirectResponse(f"/actions?message={quote(result.message)}", status_code=303)

    @app.post("/actions/kill-switch")
    async def kill_switch(request: Request) -> Response:
        actor, data = await acting(request)
        if data.get("state") not in ("on", "off"):
            raise HTTPException(status_code=400, detail="state must be on or off")
        if data.get("confirm") != "yes":
            result = ActionResult(False, "confirm the change (tick the box)", {})
            with engine.begin() as conn:
                record_action(conn, actor, f"kill_switch_{data['state']}", None, data.get("reason", ""), result)
            return answer(request, result)
        return answer(request, config.actions.kill_switch(actor, data["state"] == "on", data.get("reason", "")))

    @app.post("/actions/arm")
    async def arm(request: Request) -> Response:
        actor, data = await acting(request)
        if data.get("state") not in ("on", "off") or not data.get("account"):
            raise HTTPException(status_code=400, detail="account and state (on or off) are required")
        if data.get("confirm") != "yes":
            return answer(request, ActionResult(False, "confirm the change (tick the box)", {}))
        return answer(
            request, config.actions.arm(actor, data["account"], data["state"] == "on", data.get("reason", ""))
        )

    @app.post("/actions/decide")
    async def decide(request: Request) -> Response:
        actor, data = await acting(request)
        return answer(request, config.actions.trigger_decision(actor, data.get("reason", "")))

    return app
