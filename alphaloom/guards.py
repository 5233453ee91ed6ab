"""Hard limits: read by the risk manager and enforced again by execution. Pure.

The kill switch, checked beside them, has its own home: ``alphaloom.ops.kill_switch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from alphaloom.settings import Settings


@dataclass(frozen=True, slots=True)
class HardLimits:
    max_order_notional: Decimal
    max_position_notional: Decimal
    price_band_pct: Decimal

    @classmethod
    def from_settings(cls, settings: Settings) -> HardLimits:
        return cls(settings.risk.max_order_notional, settings.risk.max_position_notional, settings.risk.price_band_pct)


@dataclass(frozen=True, slots=True)
class LimitBreach:
    limit: str
    reason: str
    numbers: dict[str, str]


def check_hard_limits(
    limits: HardLimits,
    *,
    signed_quantity: Decimal,
    price: Decimal,
    current_quantity: Decimal,
    last_price: Decimal,
    quote_rate: Decimal,
) -> list[LimitBreach]:
    """Every hard limit an order of ``signed_quantity`` at ``price`` would breach (empty when it may go).

    The notional limits are in the account's base currency: ``price`` is in the symbol's quote currency and
    ``quote_rate`` (base units per quote unit at the time of the check, ``alphaloom.fx``) converts it; the caller
    refuses an order whose rate is not known rather than passing 1."""
    breaches: list[LimitBreach] = []
    base_price = price * quote_rate
    rate = {} if quote_rate == 1 else {"quote_rate": str(quote_rate)}
    notional = abs(signed_quantity) * base_price
    if notional > limits.max_order_notional:
        breaches.append(
            LimitBreach(
                "max_order_notional",
                f"order notional {notional:.2f} exceeds the limit {limits.max_order_notional}",
                {"notional": str(notional), "limit": str(limits.max_order_notional), **rate},
            )
        )
    position_notional = abs(current_quantity + signed_quantity) * base_price
    if position_notional > limits.max_position_notional:
        breaches.append(
            LimitBreach(
                "max_position_notional",
                f"resulting position notional {position_notional:.2f} exceeds the limit {limits.max_position_notional}",
                {"position_notional": str(position_notional), "limit": str(limits.max_position_notional), **rate},
            )
        )
    if last_price > 0:
        deviation_pct = abs(price - last_price) / last_price * 100
        if deviation_pct > limits.price_band_pct:
            breaches.append(
                LimitBreach(
                    "price_band",
                    f"price {price} is {deviation_pct:.2f}% from the last price {last_price} "
                    f"(band {limits.price_band_pct}%)",
                    {"price": str(price), "last_price": str(last_price), "band_pct": str(limits.price_band_pct)},
                )
            )
    return breaches
