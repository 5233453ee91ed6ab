"""Market making: bid/ask quotes around the mid, spread from volatility, skewed against inventory.

half_spread = max(min_half_spread_bps, vol_multiplier * volatility) in price terms; the reservation price moves away
from the inventory by ``skew * inventory_ratio * half_spread`` (long inventory -> quotes lower, to sell more and buy
less). The returned ``Signal`` has strength ``-inventory_ratio * skew`` (the direction the quotes lean), clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from alphaloom.domain import Signal

NAME = "market_making"


@dataclass(frozen=True, slots=True)
class MarketMakingParams:
    vol_multiplier: float = 1.0
    min_half_spread_bps: float = 5.0
    skew: float = 0.5
    max_inventory: float = 1.0


@dataclass(frozen=True, slots=True)
class Quotes:
    bid: float
    ask: float
    reservation: float
    half_spread: float
    signal: Signal


def make_quotes(
    mid: float, volatility: float, inventory: float, symbol: str, params: MarketMakingParams = MarketMakingParams()
) -> Quotes:
    """Quotes for ``mid`` given per-bar return ``volatility`` (a fraction) and signed ``inventory`` in base units.

    Raises ``ValueError`` for a non-positive mid, a negative volatility or a non-positive ``max_inventory``."""
    if mid <= 0:
        raise ValueError(f"mid must be positive, got {mid}")
    if volatility < 0:
        raise ValueError(f"volatility must be >= 0, got {volatility}")
    if params.max_inventory <= 0:
        raise ValueError(f"max_inventory must be positive, got {params.max_inventory}")
    half_spread = mid * max(params.min_half_spread_bps / 10_000, params.vol_multiplier * volatility)
    ratio = max(-1.0, min(1.0, inventory / params.max_inventory))
    reservation = mid - params.skew * ratio * half_spread
    signal = Signal(
        NAME,
        symbol,
        max(-1.0, min(1.0, -ratio * params.skew)),
        f"mid {mid:.6g}, half spread {half_spread:.6g} ({half_spread / mid * 10_000:.1f} bps), inventory "
        f"{inventory:+.6g} ({ratio:+.2f} of max) -> reservation {reservation:.6g}",
    )
    return Quotes(reservation - half_spread, reservation + half_spread, reservation, half_spread, signal)
