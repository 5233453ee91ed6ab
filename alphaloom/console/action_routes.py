"""The console's action routes (POST): the kill switch, arming an account for live trading, a decision run now.

Every one needs a login and the session's CSRF token (``ConsoleWeb.acting``); the work and its audit row are
``ConsoleActions``'.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from alphaloom.console.actions import ActionResult, record_action
from alphaloom.console.web import web_of

router = APIRouter()

_UNCONFIRMED = "confirm the change (tick the box)"


@router.post("/actions/kill-switch")
async def kill_switch(request: Request) -> Response:
    """Turn the kill switch on or off (confirmed); an unconfirmed try is recorded and refused."""
    web = web_of(request)
    actor, data = await web.acting(request)
    if data.get("state") not in ("on", "off"):
        raise HTTPException(status_code=400, detail="state must be on or off")
    if data.get("confirm") != "yes":
        result = ActionResult(False, _UNCONFIRMED, {})
        with web.engine.begin() as conn:
            record_action(conn, actor, f"kill_switch_{data['state']}", None, data.get("reason", ""), result)
        return web.answer(request, result)
    return web.answer(request, web.config.actions.kill_switch(actor, data["state"] == "on", data.get("reason", "")))


@router.post("/actions/arm")
async def arm(request: Request) -> Response:
    """Arm or disarm an account for live orders (confirmed)."""
    web = web_of(request)
    actor, data = await web.acting(request)
    if data.get("state") not in ("on", "off") or not data.get("account"):
        raise HTTPException(status_code=400, detail="account and state (on or off) are required")
    if data.get("confirm") != "yes":
        return web.answer(request, ActionResult(False, _UNCONFIRMED, {}))
    return web.answer(
        request, web.config.actions.arm(actor, data["account"], data["state"] == "on", data.get("reason", ""))
    )


@router.post("/actions/decide")
async def decide(request: Request) -> Response:
    """Start a decision run now."""
    web = web_of(request)
    actor, data = await web.acting(request)
    return web.answer(request, web.config.actions.trigger_decision(actor, data.get("reason", "")))
