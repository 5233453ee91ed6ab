"""Per-intent checks: a pure gate over one ``OrderIntent`` returning a verdict per check, approved or denied, with
the numbers behind it (ARCHITECTURE §6: risk is numbers, not opinions).

Checks, in order: ``kill_switch``, ``long_only`` (no sell beyond the position), the hard limits of
``alphaloom.guards`` (``max_order_notional``, ``max_position_notional``, ``price_band``), and ``feature_freshness``
(the features read are not older than ``max_feature_age``). An intent may go only when every verdict is approved.

Notionals are in the account's base currency: the intent's quote-currency price times ``quote_rate``. An intent
whose quote currency has no rate known at the decision time gets an ``fx_rate`` verdict, denied, naming the pair,
and no notional check (nothing can be compared): a refusal, never an approval at a rate of 1.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from agents.risk.portfolio import PortfolioContext, RiskLimits, check_portfolio
from agents.risk.verdict import RiskVerdict
from alphaloom.domain import OrderIntent, Side
from alphaloom.fx import QuoteRate
from alphaloom.guards import HardLimits, check_hard_limits
from alphaloom.ops.kill_switch import KillSwitchState


def check_intent(
    intent: OrderIntent,
    *,
    limits: HardLimits,
    current_quantity: Decimal,
    last_price: Decimal,
    kill_switch: KillSwitchState,
    quote_rate: QuoteRate,
    feature_age: timedelta | None = None,
    max_feature_age: timedelta | None = None,
    portfolio: PortfolioContext | None = None,
    risk_limits: RiskLimits | None = None,
) -> list[RiskVerdict]:
    """One verdict per check for ``intent`` given the current position and last known price.

    With ``portfolio`` (and ``risk_limits``) the portfolio checks of ``agents.risk.portfolio`` follow: drawdown,
    exposure per asset and class, gross/net leverage, correlation cluster, VaR. Those may approve a smaller quantity
    (``RiskVerdict.adjusted_quantity``); ``adjusted_intent`` applies it."""
    verdicts: list[RiskVerdict] = []
    verdicts.append(
        RiskVerdict(
            "kill_switch",
            not kill_switch.engaged,
            f"kill switch engaged by {kill_switch.changed_by or '?'}: {kill_switch.reason}"
            if kill_switch.engaged
            else "kill switch off",
            {"engaged": str(kill_switch.engaged)},
        )
    )
    signed = intent.quantity if intent.side is Side.BUY else -intent.quantity
    shorting = current_quantity + signed < 0
    verdicts.append(
        RiskVerdict(
            "long_only",
            not shorting,
            f"selling {intent.quantity} would leave {current_quantity + signed} (short)" if shorting else "stays long",
            {"current_quantity": str(current_quantity), "order_quantity": str(signed)},
        )
    )
    missing = quote_rate.missing
    if missing is not None:
        numbers = {"quote": quote_rate.quote, "base": quote_rate.base}
        verdicts.append(RiskVerdict("fx_rate", False, str(missing), numbers))
        return verdicts
    rate = quote_rate.required()
    breaches = {
        b.limit: b
        for b in check_hard_limits(
            limits,
            signed_quantity=signed,
            price=intent.reference_price,
            current_quantity=current_quantity,
            last_price=last_price,
            quote_rate=rate,
        )
    }
    notional = intent.quantity * intent.reference_price * rate
    position_notional = abs(current_quantity + signed) * intent.reference_price * rate
    converted = {} if rate == 1 else {"quote_rate": str(rate)}
    deviation = abs(intent.reference_price - last_price) / last_price * 100 if last_price > 0 else Decimal(0)
    within = {
        "max_order_notional": (
            f"order notional {notional:.2f} within {limits.max_order_notional}",
            {"notional": str(notional), "limit": str(limits.max_order_notional), **converted},
        ),
        "max_position_notional": (
            f"resulting position notional {position_notional:.2f} within {limits.max_position_notional}",
            {"position_notional": str(position_notional), "limit": str(limits.max_position_notional), **converted},
        ),
        "price_band": (
            f"price {intent.reference_price} within {limits.price_band_pct}% of the last price {last_price}",
            {
                "price": str(intent.reference_price),
                "last_price": str(last_price),
                "deviation_pct": str(round(deviation, 6)),
                "band_pct": str(limits.price_band_pct),
            },
        ),
    }
    for name, (reason, numbers) in within.items():
        breach = breaches.get(name)
        verdicts.append(
            RiskVerdict(name, False, breach.reason, breach.numbers)
            if breach
            else RiskVerdict(name, True, reason, numbers)
        )
    if feature_age is not None and max_feature_age is not None:
        fresh = feature_age <= max_feature_age
        verdicts.append(
            RiskVerdict(
                "feature_freshness",
                fresh,
                f"features are {feature_age} old (max {max_feature_age})",
                {
                    "age_s": str(int(feature_age.total_seconds())),
                    "max_age_s": str(int(max_feature_age.total_seconds())),
                },
            )
        )
    if portfolio is not None:
        verdicts.extend(check_portfolio(intent, portfolio, risk_limits or RiskLimits(), quote_rate=rate))
    return verdicts
