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
    verdicts = [kill_switch_check(kill_switch), long_only_check(intent, current_quantity)]
    if quote_rate.missing is not None:
        return [*verdicts, fx_rate_denial(quote_rate)]
    rate = quote_rate.required()
    verdicts += hard_limit_checks(intent, limits, current_quantity=current_quantity, last_price=last_price, rate=rate)
    if feature_age is not None and max_feature_age is not None:
        verdicts.append(feature_freshness_check(feature_age, max_feature_age))
    if portfolio is not None:
        verdicts.extend(check_portfolio(intent, portfolio, risk_limits or RiskLimits(), quote_rate=rate))
    return verdicts


def _signed_quantity(intent: OrderIntent) -> Decimal:
    """The intent's quantity, negative for a sell."""
    return intent.quantity if intent.side is Side.BUY else -intent.quantity


def kill_switch_check(kill_switch: KillSwitchState) -> RiskVerdict:
    """``kill_switch``: denied while the kill switch is engaged, naming who engaged it and why."""
    return RiskVerdict(
        "kill_switch",
        not kill_switch.engaged,
        f"kill switch engaged by {kill_switch.changed_by or '?'}: {kill_switch.reason}"
        if kill_switch.engaged
        else "kill switch off",
        {"engaged": str(kill_switch.engaged)},
    )


def long_only_check(intent: OrderIntent, current_quantity: Decimal) -> RiskVerdict:
    """``long_only``: denied when the intent would leave the position short."""
    signed = _signed_quantity(intent)
    shorting = current_quantity + signed < 0
    return RiskVerdict(
        "long_only",
        not shorting,
        f"selling {intent.quantity} would leave {current_quantity + signed} (short)" if shorting else "stays long",
        {"current_quantity": str(current_quantity), "order_quantity": str(signed)},
    )


def fx_rate_denial(quote_rate: QuoteRate) -> RiskVerdict:
    """``fx_rate``, denied: the intent's quote currency has no rate known (``quote_rate.missing`` is set)."""
    return RiskVerdict("fx_rate", False, str(quote_rate.missing), {"quote": quote_rate.quote, "base": quote_rate.base})


def hard_limit_checks(
    intent: OrderIntent, limits: HardLimits, *, current_quantity: Decimal, last_price: Decimal, rate: Decimal
) -> list[RiskVerdict]:
    """``max_order_notional``, ``max_position_notional`` and ``price_band``: each denied with the breach of
    ``alphaloom.guards`` when there is one, else approved with its numbers (notionals in the base currency)."""
    signed = _signed_quantity(intent)
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
    within = [
        _order_notional_within(intent, limits, rate),
        _position_notional_within(intent, limits, current_quantity + signed, rate),
        _price_band_within(intent, limits, last_price),
    ]
    verdicts = []
    for approved in within:
        breach = breaches.get(approved.check_name)
        verdicts.append(RiskVerdict(approved.check_name, False, breach.reason, breach.numbers) if breach else approved)
    return verdicts


def _converted(rate: Decimal) -> dict[str, str]:
    """The rate used, recorded beside a notional when it was converted."""
    return {} if rate == 1 else {"quote_rate": str(rate)}


def _order_notional_within(intent: OrderIntent, limits: HardLimits, rate: Decimal) -> RiskVerdict:
    """``max_order_notional`` approved, with the order's notional."""
    notional = intent.quantity * intent.reference_price * rate
    return RiskVerdict(
        "max_order_notional",
        True,
        f"order notional {notional:.2f} within {limits.max_order_notional}",
        {"notional": str(notional), "limit": str(limits.max_order_notional), **_converted(rate)},
    )


def _position_notional_within(
    intent: OrderIntent, limits: HardLimits, resulting_quantity: Decimal, rate: Decimal
) -> RiskVerdict:
    """``max_position_notional`` approved, with the resulting position's notional."""
    position_notional = abs(resulting_quantity) * intent.reference_price * rate
    return RiskVerdict(
        "max_position_notional",
        True,
        f"resulting position notional {position_notional:.2f} within {limits.max_position_notional}",
        {"position_notional": str(position_notional), "limit": str(limits.max_position_notional), **_converted(rate)},
    )


def _price_band_within(intent: OrderIntent, limits: HardLimits, last_price: Decimal) -> RiskVerdict:
    """``price_band`` approved, with the price's deviation from the last price."""
    deviation = abs(intent.reference_price - last_price) / last_price * 100 if last_price > 0 else Decimal(0)
    return RiskVerdict(
        "price_band",
        True,
        f"price {intent.reference_price} within {limits.price_band_pct}% of the last price {last_price}",
        {
            "price": str(intent.reference_price),
            "last_price": str(last_price),
            "deviation_pct": str(round(deviation, 6)),
            "band_pct": str(limits.price_band_pct),
        },
    )


def feature_freshness_check(feature_age: timedelta, max_feature_age: timedelta) -> RiskVerdict:
    """``feature_freshness``: denied when the features read are older than ``max_feature_age``."""
    return RiskVerdict(
        "feature_freshness",
        feature_age <= max_feature_age,
        f"features are {feature_age} old (max {max_feature_age})",
        {"age_s": str(int(feature_age.total_seconds())), "max_age_s": str(int(max_feature_age.total_seconds()))},
    )
