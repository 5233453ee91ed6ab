"""Position sizing: fractional Kelly (capped), volatility targeting, stop-loss / take-profit levels, and
``choose_notional``, which the trader's caller uses to pick an order's notional by the configured mode. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

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


# --- choosing an order's size -----------------------------------------------------------------------------------------

SIZING_MODES = ("fixed", "kelly", "vol_target", "kelly_vol_target")


@dataclass(frozen=True, slots=True)
class TradeStats:
    """Win rate and payoff ratio (average win / average loss) of realised trade returns; None when not estimable."""

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    payoff: float | None


def trade_stats(returns: Sequence[float]) -> TradeStats:
    """Stats of realised returns: a return > 0 is a win, < 0 a loss, 0 neither (counted as a trade, not in the
    payoff). The payoff needs at least one win and one loss."""
    wins = [r for r in returns if r > 0]
    losses = [-r for r in returns if r < 0]
    n = len(returns)
    payoff = (sum(wins) / len(wins)) / (sum(losses) / len(losses)) if wins and losses else None
    return TradeStats(n, len(wins), len(losses), len(wins) / n if n else None, payoff)


@dataclass(frozen=True, slots=True)
class SizingChoice:
    """The notional an order gets and why: ``numbers`` holds every input and intermediate (as strings)."""

    mode: str
    notional: Decimal
    reason: str
    numbers: dict[str, str]


@dataclass(frozen=True, slots=True)
class SizingParams:
    """``mode``: ``fixed`` (``order_notional``), ``kelly`` (fractional Kelly share of equity, capped), ``vol_target``
    (notional whose annualised volatility is ``target_volatility`` of equity) or ``kelly_vol_target`` (the smaller of
    the two). Kelly needs ``min_trades`` realised trades with wins and losses, else the fixed notional is used. A
    computed size is capped at ``max_order_notional`` (the hard limit, so sizing never trips it); ``fixed`` is the
    operator's own number and is left for the hard limit to judge."""

    mode: str
    order_notional: Decimal
    max_order_notional: Decimal
    kelly_fraction: Decimal
    kelly_cap: Decimal
    target_volatility: float
    min_trades: int

    def __post_init__(self) -> None:
        if self.mode not in SIZING_MODES:
            raise ValueError(f"sizing mode must be one of {', '.join(SIZING_MODES)}, got {self.mode!r}")


def choose_notional(
    params: SizingParams,
    *,
    equity: Decimal,
    stats: TradeStats,
    bar_volatility: float | None,
    bars_per_year: float,
) -> SizingChoice:
    """The notional for a new position under ``params`` (see ``SizingParams``). Pure; hand-checkable numbers."""
    numbers: dict[str, str] = {"mode": params.mode, "equity": f"{equity:.2f}",
                               "order_notional": str(params.order_notional)}  # fmt: skip
    candidates: list[tuple[str, Decimal]] = []
    reasons: list[str] = []
    if params.mode in ("kelly", "kelly_vol_target"):
        numbers.update({"trades": str(stats.trades), "wins": str(stats.wins), "losses": str(stats.losses),
                        "kelly_fraction": str(params.kelly_fraction), "kelly_cap": str(params.kelly_cap)})  # fmt: skip
        if stats.trades >= params.min_trades and stats.win_rate is not None and stats.payoff is not None:
            full = kelly_fraction(stats.win_rate, stats.payoff)
            share = fractional_kelly(
                stats.win_rate, stats.payoff, fraction=float(params.kelly_fraction), cap=float(params.kelly_cap)
            )
            numbers.update({"win_rate": f"{stats.win_rate:.6f}", "payoff": f"{stats.payoff:.6f}",
                            "full_kelly": f"{full:.6f}", "kelly_share": f"{share:.6f}"})  # fmt: skip
            candidates.append(("kelly", equity * Decimal(str(share))))
            reasons.append(f"Kelly {share:.4f} of equity (win rate {stats.win_rate:.3f}, payoff {stats.payoff:.3f})")
        else:
            candidates.append(("fixed", params.order_notional))
            reasons.append(f"{stats.trades} realised trades (need {params.min_trades} with wins and losses): fixed")
    if params.mode in ("vol_target", "kelly_vol_target"):
        numbers["target_volatility"] = str(params.target_volatility)
        if bar_volatility is not None and math.isfinite(bar_volatility) and bar_volatility > 0:
            annual = annualised_volatility(bar_volatility, bars_per_year)
            numbers.update({"bar_volatility": f"{bar_volatility:.8f}", "annual_volatility": f"{annual:.6f}"})
            candidates.append(("vol_target", vol_target_notional(equity, params.target_volatility, annual)))
            reasons.append(f"volatility target {params.target_volatility} / {annual:.4f} annualised")
        else:
            candidates.append(("fixed", params.order_notional))
            reasons.append("no measured volatility: fixed")
    if params.mode == "fixed":
        candidates.append(("fixed", params.order_notional))
        reasons.append("fixed notional")
    source, notional = min(candidates, key=lambda c: c[1])
    if params.mode != "fixed" and notional > params.max_order_notional:
        numbers["uncapped_notional"] = f"{notional:.2f}"
        notional, source = params.max_order_notional, f"{source}, capped at max_order_notional"
    if source != "fixed":  # a computed size, to the cent (never above what was computed)
        notional = notional.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    numbers.update({"notional": str(notional), "source": source})
    return SizingChoice(params.mode, notional, "; ".join(reasons) + f" -> {notional} ({source})", numbers)
