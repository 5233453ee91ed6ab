"""Position sizing: fractional Kelly (capped), volatility targeting, stop-loss / take-profit levels. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from alphaloom.domain import Side


def kelly_fraction(win_rate: float, payoff: float) -> float:
    """Full Kelly ``f* = p - (1 - p) / b`` for win probability ``p`` and payoff ratio ``b`` (avg win / avg loss);
    0 when the edge is not positive (never a short from sizing)."""
    if not 0 <= win_rate <= 1:
        raise ValueError(f"win_rate must be in [0, 1], got {win_rate}")
    if payoff <= 0:
        raise ValueError(f"payoff must be positive, got {payoff}")
    return max(0.0, win_rate - (1 - win_rate) / payoff)


def fractional_kelly(win_rate: float, payoff: float, *, fraction: float, cap: float) -> float:
    """``fraction`` of full Kelly, never above ``cap`` (share of equity)."""
    if not 0 <= fraction <= 1 or cap < 0:
        raise ValueError(f"fraction must be in [0, 1] and cap >= 0, got {fraction}, {cap}")
    return min(cap, fraction * kelly_fraction(win_rate, payoff))


def annualised_volatility(bar_volatility: float, bars_per_year: float) -> float:
    return bar_volatility * math.sqrt(bars_per_year)


def vol_target_notional(equity: Decimal, target_volatility: float, asset_volatility: float) -> Decimal:
    """Notional whose volatility equals ``target_volatility`` of equity: ``equity * target / asset`` (annualised both).
    An asset with no measured volatility gets no volatility-based size (0)."""
    if asset_volatility <= 0 or not math.isfinite(asset_volatility):
        return Decimal(0)
    return equity * Decimal(str(target_volatility)) / Decimal(str(asset_volatility))


@dataclass(frozen=True, slots=True)
class ExitLevels:
    stop_price: Decimal
    take_profit_price: Decimal


def exit_levels(entry: Decimal, side: Side, *, stop_loss_pct: Decimal, take_profit_pct: Decimal) -> ExitLevels:
    """Stop and take-profit for a position entered at ``entry``: below/above for a long, mirrored for a short."""
    down, up = entry * (1 - stop_loss_pct / 100), entry * (1 + take_profit_pct / 100)
    return ExitLevels(down, up) if side is Side.BUY else ExitLevels(up, down)


def exit_triggered(levels: ExitLevels, *, low: Decimal, high: Decimal) -> str | None:
    """Which exit a bar ranging ``low``..``high`` reaches for a long position: ``"stop"`` first (the conservative
    assumption when a bar touches both), ``"take_profit"``, or None."""
    if low <= levels.stop_price:
        return "stop"
    if high >= levels.take_profit_price:
        return "take_profit"
    return None
