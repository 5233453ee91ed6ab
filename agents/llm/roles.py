"""Which LLM roles a decision consults, and each role's endpoint (``LlmSettings.team_mode``, ``LlmSettings.roles``).

The (role, model) pairs a run will call are ``LlmSettings.role_models`` (the training-cutoff guard and the price
check read it); ``team_models`` is the same list, empty when no endpoint is configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr

from alphaloom.settings import LLM_TEAM_ROLES, Settings

ROLES_BY_MODE = LLM_TEAM_ROLES


@dataclass(frozen=True)
class RoleEndpoint:
    """Where one role is asked: ``api_key`` stays a ``SecretStr`` (never printed, logged or stored)."""

    role: str
    base_url: str | None
    model: str
    api_key: SecretStr | None
    structured_output: Literal["json_schema", "json_object"] = "json_schema"


def team_roles(settings: Settings) -> tuple[str, ...]:
    """The roles ``settings.llm.team_mode`` consults, in the order they speak."""
    return ROLES_BY_MODE[settings.llm.team_mode]


def role_endpoint(settings: Settings, role: str) -> RoleEndpoint:
    """``role``'s endpoint: its ``llm_roles`` entry, each field left out falling back to the analyst's settings."""
    override = settings.llm.roles.get(role)
    model = settings.llm.role_model(role)
    if override is None:
        return RoleEndpoint(role, settings.llm.base_url, model, settings.llm.api_key)
    return RoleEndpoint(role, override.base_url or settings.llm.base_url, model,
                        override.api_key or settings.llm.api_key, override.structured_output)  # fmt: skip


def team_configured(settings: Settings) -> bool:
    """Every role of the mode has an endpoint."""
    return all(role_endpoint(settings, role).base_url for role in team_roles(settings))


def team_models(settings: Settings) -> list[tuple[str, str]]:
    """(role, model) for every LLM role a run with ``settings`` will call; empty when no endpoint is configured."""
    return settings.llm.role_models if team_configured(settings) else []


def llm_agent_for(settings: Settings, *, live_calls: int | None = None) -> Any:
    """The LLM agent ``settings`` asks for: the analyst (mode "analyst") or the team (``agents.llm.team_agent``);
    None when no endpoint is configured. The ``openai`` SDK is imported only here, when one is."""
    if settings.llm.team_mode == "analyst":
        if not settings.llm.base_url:
            return None
        from agents.llm.analyst import LlmAnalyst

        return LlmAnalyst(settings, live_calls=live_calls)
    if not team_configured(settings):
        return None
    from agents.llm.team_agent import LlmTeam

    return LlmTeam(settings, live_calls=live_calls)
