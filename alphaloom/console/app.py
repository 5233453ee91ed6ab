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

from collections.abc import Awaitable, Callable
from html import escape

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from alphaloom.console import action_routes, login, pages
from alphaloom.console.web import COOKIE, HERE, LOGIN_CSRF_COOKIE, ConsoleConfig, ConsoleWeb, is_loopback

__all__ = ["COOKIE", "CSP", "LOGIN_CSRF_COOKIE", "ConsoleConfig", "create_app", "is_loopback"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-ancestors 'self'; form-action 'self'; base-uri 'none'")  # fmt: skip


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """A login redirect (JSON 401 for the page's live refresh), else a short HTML page naming the error."""
    if exc.status_code == 303 and exc.headers:
        if request.headers.get("x-console-live"):
            return JSONResponse({"login": True}, status_code=401)
        return RedirectResponse(exc.headers["Location"], status_code=303)
    body = f"<h1>{exc.status_code}</h1><p>{escape(str(exc.detail))}</p><p><a href='/'>back to the console</a></p>"
    return HTMLResponse(body, status_code=exc.status_code)


async def _security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Framing, sniffing, referrer and content-security headers on every answer."""
    response = await call_next(request)
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    # Scripts only from the console itself: text from the audit trail (headlines, rationales) can never run.
    response.headers.setdefault("Content-Security-Policy", CSP)
    return response


def create_app(config: ConsoleConfig) -> FastAPI:
    """The console app for ``config``: static files, error pages, security headers, then the routes by group."""
    app = FastAPI(title="AlphaLoom console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console_web = ConsoleWeb(config)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.exception_handler(HTTPException)(_http_error)
    app.middleware("http")(_security_headers)
    for group in (login.router, pages.router, action_routes.router):
        app.include_router(group)
    return app
