"""What every console route shares: the configuration, the templates, sessions, and the page and form helpers.

The routes themselves (``alphaloom/console/routes.py``) are thin: each reads through ``alphaloom.console.queries`` and
hands chosen values to a template through ``ConsoleWeb.page``, or turns a posted form into a ``ConsoleActions`` call
through ``ConsoleWeb.acting`` and ``ConsoleWeb.answer``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from alphaloom.console import queries
from alphaloom.console.actions import ActionResult, Actor, ConsoleActions
from alphaloom.console.auth import Session, Sessions, csrf_matches
from alphaloom.ops.kill_switch import kill_switch_state
from alphaloom.settings import Settings

HERE = Path(__file__).parent
COOKIE = "alphaloom_console"
LOGIN_CSRF_COOKIE = "alphaloom_console_login"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ConsoleConfig:
    """What the console app is built from: the database, settings, the actions it may take and how it is bound."""

    engine: Engine
    settings: Settings
    actions: ConsoleActions
    host: str = "127.0.0.1"
    prefect_ui: str | None = None
    poll_seconds: float = 3.0
    sessions: Sessions = field(default_factory=Sessions)

    @property
    def open_to_view(self) -> bool:
        """Viewing needs no login when the console is reachable from this machine only."""
        return is_loopback(self.host)


def _money(value: Any) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _ts(value: Any) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _qs(value: Any) -> str:
    return quote(str(value), safe="")


def console_templates() -> Jinja2Templates:
    """The console's Jinja2 templates with its filters (``money``, ``ts``, ``qs``)."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["money"] = _money
    templates.env.filters["ts"] = _ts
    templates.env.filters["qs"] = _qs
    return templates


async def read_form(request: Request) -> dict[str, str]:
    """A posted urlencoded form, the last value of each field."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def client_host(request: Request) -> str | None:
    """The address the request came from, if known."""
    return request.client.host if request.client else None


@dataclass
class ConsoleWeb:
    """The shared helpers of the console's routes, bound to one ``ConsoleConfig``."""

    config: ConsoleConfig
    templates: Jinja2Templates = field(default_factory=console_templates)

    @property
    def engine(self) -> Engine:
        """The database engine."""
        return self.config.engine

    @property
    def settings(self) -> Settings:
        """The settings the console was started with."""
        return self.config.settings

    def session_of(self, request: Request) -> Session | None:
        """The logged-in session the request's cookie names, if any."""
        return self.config.sessions.get(request.cookies.get(COOKIE))

    def require_view(self, request: Request) -> Session | None:
        """The session, or a redirect to the login page when viewing needs a login and there is none."""
        session = self.session_of(request)
        if session is None and not self.config.open_to_view:
            raise HTTPException(status_code=303, headers={"Location": f"/login?next={quote(request.url.path)}"})
        return session

    def page(self, request: Request, name: str, **context: Any) -> HTMLResponse:
        """Render template ``name`` with the banner every page shows (kill switch, halt, who is logged in)."""
        session = self.require_view(request)
        settings = self.settings
        with self.engine.connect() as conn:
            ks = kill_switch_state(conn)
            halt = queries.halt_state(conn, settings.account)
        response = self.templates.TemplateResponse(
            request, name,
            {"session": session, "csrf": session.csrf if session else "", "kill_switch": ks, "halt": halt,
             "account": settings.account, "poll_ms": int(self.config.poll_seconds * 1000),
             "prefect_ui": self.config.prefect_ui, "path": request.url.path, "can_act": session is not None,
             "rendered_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), **context},
        )  # fmt: skip
        response.headers["Cache-Control"] = "no-store"
        return response

    async def acting(self, request: Request) -> tuple[Actor, dict[str, str]]:
        """Who acts and the posted form: 401 without a login, 403 when the form's CSRF token is missing or wrong."""
        session = self.session_of(request)
        if session is None:
            raise HTTPException(status_code=401, detail="log in to act (alphaloom console set-password makes a user)")
        data = await read_form(request)
        if not csrf_matches(session, data.get("csrf")):
            raise HTTPException(status_code=403, detail="CSRF token missing or wrong: nothing was changed")
        return Actor(session.username, client_host(request)), data

    @staticmethod
    def answer(request: Request, result: ActionResult) -> Response:
        """An action's result: JSON for the page's script, else a redirect back to the actions page."""
        if request.headers.get("x-console-live"):
            return JSONResponse({"ok": result.ok, "message": result.message}, status_code=200 if result.ok else 409)
        return RedirectResponse(f"/actions?message={quote(result.message)}", status_code=303)


def web_of(request: Request) -> ConsoleWeb:
    """The ``ConsoleWeb`` of the app serving ``request`` (set by ``create_app``)."""
    web: ConsoleWeb = request.app.state.console_web
    return web
