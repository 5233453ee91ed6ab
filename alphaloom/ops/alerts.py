"""Operator alerts: a log line always, and a JSON POST to ``ALPHALOOM_ALERT_WEBHOOK_URL`` when one is configured.

``alert(kind, reason, details)`` is the one entry point. What callers can rely on: it never raises into the caller (a
webhook that is down, slow or answers an error is logged, not propagated) and it waits at most
``ALPHALOOM_ALERT_TIMEOUT_SECONDS`` for the receiver. The payload is::

    {"source": "alphaloom", "kind": "...", "reason": "...", "details": {...}, "at": "<UTC ISO time>"}

Kinds raised today: ``flow_failure`` (a Prefect on_failure hook on every flow), ``kill_switch`` (engaged from the CLI),
``stale_data`` (the health check), ``fat_finger`` and ``account_halt`` (execution's guards), ``drawdown_halt`` and the
warning ``drawdown_reduce`` (the decision flow, when an account's drawdown verdicts change level: see
``alphaloom.ops.drawdown_alerts``), ``reconciliation`` (a live or shadow account differs from its venue at the start of a
decision run beyond tolerance: it does not trade that run) and ``live_refused`` (a live or shadow account cannot
trade: not armed for live orders, or no stored credentials).
The webhook URL may carry a token, so it is never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from alphaloom.settings import Settings, get_settings

logger = logging.getLogger("alphaloom.alerts")

KINDS = (
    "flow_failure",
    "kill_switch",
    "drawdown_halt",
    "drawdown_reduce",
    "fat_finger",
    "account_halt",
    "stale_data",
    "reconciliation",
    "live_refused",
)


@dataclass(frozen=True)
class Alert:
    kind: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    source: str = "alphaloom"

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(json.dumps(asdict(self), default=str))
        return payload


def alert(
    kind: str, reason: str, details: Mapping[str, Any] | None = None, *, settings: Settings | None = None
) -> bool:
    """Log the alert and POST it to the webhook; returns whether the webhook accepted it (False when none is set)."""
    item = Alert(kind, reason, dict(details or {}))
    logger.warning("ALERT %s: %s %s", kind, reason, json.dumps(item.details, default=str, sort_keys=True))
    try:
        settings = settings or get_settings()
        if settings.ops.alert_webhook_url is None:
            return False
        response = httpx.post(
            settings.ops.alert_webhook_url.get_secret_value(),
            json=item.payload(),
            timeout=settings.ops.alert_timeout_seconds,
        )
        if response.status_code >= 300:
            logger.error("alert webhook answered HTTP %s for %s alert", response.status_code, kind)
            return False
        return True
    except Exception as exc:  # an alert must never take down the thing that raised it
        logger.error("alert webhook failed for %s alert: %s", kind, type(exc).__name__)
        return False
