"""The console's login and logout routes: a double-submit CSRF token on the login form, a session cookie after it."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alphaloom.console.actions import ActionResult, Actor, record_action
from alphaloom.console.auth import check_login, csrf_matches, has_users
from alphaloom.console.web import COOKIE, LOGIN_CSRF_COOKIE, client_host, read_form, web_of

router = APIRouter()


def _local_path(url: str) -> str:
    """``url`` when it is a path on this site, else ``/`` (no open redirect to another host)."""
    return url if url.startswith("/") and not url.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", error: str = "") -> Response:
    """The login form, with a fresh CSRF token set in a cookie scoped to ``/login``."""
    web = web_of(request)
    token = secrets.token_urlsafe(32)
    with web.engine.connect() as conn:
        users = has_users(conn)
    response = web.templates.TemplateResponse(
        request, "login.html",
        {"csrf": token, "next": _local_path(next), "error": error, "users": users, "session": None,
         "kill_switch": None, "halt": None, "path": "/login", "poll_ms": 0, "can_act": False,
         "account": web.settings.account, "rendered_at": ""},
    )  # fmt: skip
    secure = request.url.scheme == "https"
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/login")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the user name and password (every try recorded), then start a session and go where the user was going."""
    web = web_of(request)
    data = await read_form(request)
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not cookie_token or not secrets.compare_digest(cookie_token, data.get("csrf", "")):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong: reload the login page")
    username, password = data.get("username", "").strip(), data.get("password", "")
    with web.engine.begin() as conn:
        ok = check_login(conn, username, password)
        record_action(conn, Actor(username or "-", client_host(request)), "login", None, "",
                      ActionResult(ok, "logged in" if ok else "wrong user name or password", {}))  # fmt: skip
    next_url = _local_path(data.get("next", "/"))
    if not ok:
        return RedirectResponse(f"/login?error=1&next={quote(next_url)}", status_code=303)
    sessions = web.config.sessions
    sid, _ = sessions.create(username)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        max_age=int(sessions.ttl), path="/")  # fmt: skip
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (the form's CSRF token must match it)."""
    web = web_of(request)
    session = web.session_of(request)
    data = await read_form(request)
    if not csrf_matches(session, data.get("csrf")):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong")
    web.config.sessions.drop(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
