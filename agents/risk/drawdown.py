"""Drawdown controller: from the equity peak, reduce new exposure past one threshold and halt it past another. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class DrawdownState:
    """``level`` is ``normal``, ``reduce`` or ``halt``; ``scale`` multiplies new buy quantities (0 when halted)."""

    drawdown_pct: Decimal
    level: str
    scale: Decimal


def drawdown_state(
    equity: Decimal, peak_equity: Decimal, *, reduce_pct: Decimal, halt_pct: Decimal, reduce_factor: Decimal
) -> DrawdownState:
    if not 0 <= reduce_pct <= halt_pct:
        raise ValueError(f"need 0 <= reduce_pct <= halt_pct, got {reduce_pct}, {halt_pct}")
    peak = max(peak_equity, equity)
    drawdown = (peak - equity) / peak * 100 if peak > 0 else Decimal(0)
    if drawdown >= halt_pct:
        return DrawdownState(drawdown, "halt", Decimal(0))
    if drawdown >= reduce_pct:
        return DrawdownState(drawdown, "reduce", reduce_factor)
    return DrawdownState(drawdown, "normal", Decimal(1))
