"""The team walk-forward's parameter grid: consensus thresholds x agent base-weight presets x sizing modes x
stop-loss/take-profit pairs, small and explicit (every candidate is a full replay of its in-sample window). Pure.

The grid is given as four comma-separated lists (``parse_team_grid``); a malformed value or a grid of more than
``MAX_TEAM_CANDIDATES`` candidates is refused with a ``ValueError`` naming the option and the problem.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

# Base weights of the team's agents (consensus.weights), by name; "default" is the consensus's own default.
WEIGHT_PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "default": MappingProxyType({"technical": 1.0, "news": 0.5, "llm": 0.5}),
    "technical": MappingProxyType({"technical": 1.0, "news": 0.2, "llm": 0.2}),
    "news": MappingProxyType({"technical": 0.5, "news": 1.0, "llm": 0.5}),
    "equal": MappingProxyType({"technical": 1.0, "news": 1.0, "llm": 1.0}),
})  # fmt: skip
SIZING_MODES = ("fixed", "kelly", "vol_target", "kelly_vol_target")
MAX_TEAM_CANDIDATES = 16
NO_EXITS = "none"


@dataclass(frozen=True)
class TeamCandidate:
    """One set of team parameters a walk-forward may choose: the consensus threshold, the base-weight preset, the
    sizing mode and the protective stop-loss/take-profit (percent; None: no exit armed)."""

    threshold: float
    weights: str
    sizing: str
    stop_loss_pct: Decimal | None = None
    take_profit_pct: Decimal | None = None

    @property
    def base_weights(self) -> dict[str, float]:
        return dict(WEIGHT_PRESETS[self.weights])

    @property
    def exits(self) -> str:
        if self.stop_loss_pct is None:
            return NO_EXITS
        return f"{self.stop_loss_pct}:{self.take_profit_pct}"

    def label(self) -> str:
        """Short, for the page's chart bands and the CLI table: ``t0.3 default fixed sl/tp 2:4``."""
        return f"t{self.threshold:g} {self.weights} {self.sizing} sl/tp {self.exits}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (decimals as strings), for the recorded results."""
        return {"threshold": self.threshold, "weights": self.weights, "sizing": self.sizing,
                "stop_loss_pct": None if self.stop_loss_pct is None else str(self.stop_loss_pct),
                "take_profit_pct": None if self.take_profit_pct is None else str(self.take_profit_pct)}  # fmt: skip

    def settings_update(self) -> dict[str, Any]:
        """The settings this candidate changes (``Settings.model_copy(update=...)``, group fields as "risk.<name>")."""
        return {
            "risk.sizing_mode": self.sizing,
            "risk.stop_loss_pct": self.stop_loss_pct,
            "risk.take_profit_pct": self.take_profit_pct,
        }


def _items(value: str, option: str) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if not value.strip() or any(not v for v in items):
        raise ValueError(f"{option} must be a comma-separated list with no empty item, got {value!r}")
    return items


def _distinct(values: list[Any], option: str, given: str) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"{option} repeats a value: {given!r}")
    return values


def _threshold(value: str) -> float:
    try:
        threshold = float(value)
    except ValueError:
        raise ValueError(f"--thresholds: {value!r} is not a number") from None
    if not 0 < threshold <= 1:
        raise ValueError(f"--thresholds: {value!r} is not in (0, 1]")
    return threshold


def _exit_pair(value: str) -> tuple[Decimal | None, Decimal | None]:
    if value == NO_EXITS:
        return None, None
    parts = value.split(":")
    try:
        stop, take = (Decimal(p) for p in parts) if len(parts) == 2 else (None, None)
    except InvalidOperation:
        stop = take = None
    if stop is None or take is None or not (0 < stop < 100 and take > 0):
        raise ValueError(f"--exits: {value!r} is not {NO_EXITS!r} or STOP:TAKE percents (0 < STOP < 100, TAKE > 0)")
    return stop, take


def parse_team_grid(
    thresholds: str, weights: str, sizing: str, exits: str, *, max_candidates: int = MAX_TEAM_CANDIDATES
) -> list[TeamCandidate]:
    """Every combination, thresholds outermost, in the order given (the first of equal in-sample scores wins)."""
    values = _distinct([_threshold(v) for v in _items(thresholds, "--thresholds")], "--thresholds", thresholds)
    presets = _distinct(_items(weights, "--weights"), "--weights", weights)
    for preset in presets:
        if preset not in WEIGHT_PRESETS:
            raise ValueError(f"--weights: {preset!r} is not one of {', '.join(WEIGHT_PRESETS)}")
    modes = _distinct(_items(sizing, "--sizing"), "--sizing", sizing)
    for mode in modes:
        if mode not in SIZING_MODES:
            raise ValueError(f"--sizing: {mode!r} is not one of {', '.join(SIZING_MODES)}")
    pairs = _distinct([_exit_pair(v) for v in _items(exits, "--exits")], "--exits", exits)
    size = len(values) * len(presets) * len(modes) * len(pairs)
    if size > max_candidates:
        raise ValueError(f"the team grid has {size} candidates ({len(values)} thresholds x {len(presets)} weights x "
                         f"{len(modes)} sizings x {len(pairs)} exits), more than {max_candidates}: each is a full "
                         "replay of every in-sample window")  # fmt: skip
    return [
        TeamCandidate(t, w, s, stop, take) for t, w, s, (stop, take) in itertools.product(values, presets, modes, pairs)
    ]
