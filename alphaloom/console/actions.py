"""What an operator can change from the console, each change recorded in ``audit.console_actions`` with who did it.

The console lives in the core (``alphaloom``), which may not import ``execution``; cancelling the orders still open
when the kill switch goes on is execution's work. So the face that starts the console (``alphaloom.cli.console``,
allowed to import execution) hands in ``on_kill_switch_engaged``; without it the switch still blocks every send
(execution checks it before each submit) and the page says open orders were not cancelled.

Every action returns an ``ActionResult`` (ok, a sentence for the operator) and writes one ``audit.console_actions``
row, also when refused or failed; the kill switch's own row (``audit.kill_switch.changed_by``) names the console user.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, text

from alphaloom.domain import LIVE_MODES
from alphaloom.ops.kill_switch import change_kill_switch
from alphaloom.records.console import insert_action


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    message: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    client: str | None


def record_action(
    conn: Connection, actor: Actor, action: str, target: str | None, reason: str, result: ActionResult
) -> None:
    outcome = "ok" if result.ok else ("failed" if result.details.get("error") else "refused")
    insert_action(conn, username=actor.username, client=actor.client, action=action, target=target, reason=reason,
                  outcome=outcome, details_json=json.dumps({"message": result.message, **result.details}, default=str))  # fmt: skip


KillSwitchHook = Callable[[str], dict[str, Any]]


@dataclass
class ConsoleActions:
    engine: Engine
    on_kill_switch_engaged: KillSwitchHook | None = None
    prefect_api_url: str | None = None
    decide_deployment: str = "decide/decide"

    def kill_switch(self, actor: Actor, engage: bool, reason: str) -> ActionResult:
        reason = reason.strip()
        if not reason:
            result = ActionResult(False, "a reason is required to change the kill switch", {})
        else:
            change_kill_switch(self.engine, engaged=engage, reason=reason, changed_by=f"console:{actor.username}")
            details: dict[str, Any] = {"engaged": engage}
            message = f"kill switch {'ON' if engage else 'off'}"
            if engage:
                if self.on_kill_switch_engaged is not None:
                    try:
                        details["cancelled"] = self.on_kill_switch_engaged(reason)
                        message += "; open orders cancelled"
                    except Exception as exc:  # the switch is on either way; the cancel failure is shown and kept
                        details["error"] = f"{type(exc).__name__}: {exc}"
                        message += f"; cancelling open orders failed: {details['error']}"
                else:
                    message += "; sends are blocked (open orders not cancelled from here: use the CLI)"
            result = ActionResult(True, message, details)
        with self.engine.begin() as conn:
            record_action(conn, actor, "kill_switch_on" if engage else "kill_switch_off", None, reason, result)
        return result

    def arm(self, actor: Actor, account: str, armed: bool, reason: str) -> ActionResult:
        with self.engine.begin() as conn:
            row = conn.execute(
                text("update audit.accounts set live_enabled = :on where id = :a returning mode"),
                {"on": armed, "a": account},
            ).first()
            if row is None:
                result = ActionResult(False, f"account {account!r} does not exist", {})
            else:
                state = "ARMED" if armed else "DISARMED"
                note = "" if row.mode in LIVE_MODES else f" (a {row.mode} account sends nothing live)"
                result = ActionResult(True, f"account {account} live trading {state}{note}", {"mode": row.mode})
            record_action(conn, actor, "arm" if armed else "disarm", account, reason.strip(), result)
        return result

    def trigger_decision(self, actor: Actor, reason: str) -> ActionResult:
        result = self._create_decide_run()
        with self.engine.begin() as conn:
            record_action(conn, actor, "trigger_decide", self.decide_deployment, reason.strip(), result)
        return result

    def _create_decide_run(self) -> ActionResult:
        if not self.prefect_api_url:
            return ActionResult(False, "no Prefect server is configured (start `alphaloom serve`); nothing triggered",
                                {})  # fmt: skip
        api = self.prefect_api_url.rstrip("/")
        try:
            found = httpx.get(f"{api}/deployments/name/{self.decide_deployment}", timeout=5)
            if found.status_code == 404:
                return ActionResult(
                    False, f"the Prefect server has no deployment {self.decide_deployment!r} (deploy prefect.yaml)", {}
                )
            found.raise_for_status()
            deployment_id = found.json()["id"]
            created = httpx.post(
                f"{api}/deployments/{deployment_id}/create_flow_run",
                json={"tags": ["console"], "parameters": {}},
                timeout=10,
            )
            created.raise_for_status()
        except httpx.HTTPError as exc:
            return ActionResult(False, f"the Prefect server at {api} did not answer: {exc}", {"error": str(exc)})
        run = created.json()
        return ActionResult(
            True, f"decision run {run.get('name', '')} scheduled through deployment {self.decide_deployment}",
            {"flow_run_id": run["id"]},
        )  # fmt: skip
