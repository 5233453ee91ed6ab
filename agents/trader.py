"""The trader agent: turns the team's action into ``OrderIntent``s. Pure, long-only for now.

- BUY while flat: one intent for ``floor(order_notional / price)`` in the symbol's quantity step (whole shares for
  ``.../USD`` stock symbols, 1e-6 for crypto); none when that rounds to zero. The caller picks ``order_notional`` by
  the sizing mode (``agents.risk.sizing.choose_notional``: fixed, fractional Kelly, volatility target).
- SELL while long: one intent selling the whole position.
- Anything else (HOLD, BUY while long, SELL while flat): no intent.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from alphaloom.domain import Action, DecisionId, OrderIntent, Side

CRYPTO_STEP = Decimal("0.000001")
SHARE_STEP = Decimal("1")


def quantity_step(symbol: str) -> Decimal:
    """Smallest tradable quantity: whole shares for stocks quoted in USD (``AAPL/USD``), 1e-6 units otherwise."""
    return SHARE_STEP if symbol.upper().endswith("/USD") else CRYPTO_STEP


def size_quantity(order_notional: Decimal, price: Decimal, step: Decimal) -> Decimal:
    """``order_notional / price`` rounded down to a multiple of ``step`` (never more notional than asked)."""
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    return ((order_notional / price) / step).to_integral_value(rounding=ROUND_DOWN) * step


def opens_position(action: Action, position_quantity: Decimal) -> bool:
    """True when ``action`` would open a new position (a buy while flat): the case whose size the sizing mode picks."""
    return action is Action.BUY and position_quantity == 0


def order_intents(
    *,
    decision_id: DecisionId,
    account: str,
    symbol: str,
    action: Action,
    position_quantity: Decimal,
    price: Decimal,
    order_notional: Decimal,
) -> list[OrderIntent]:
    """The intents for one decision (leg 0); empty when there is nothing to do."""
    if opens_position(action, position_quantity):
        quantity = size_quantity(order_notional, price, quantity_step(symbol))
        if quantity <= 0:
            return []
        return [OrderIntent(decision_id, account, symbol, Side.BUY, quantity, price)]
    if action is Action.SELL and position_quantity > 0:
        return [OrderIntent(decision_id, account, symbol, Side.SELL, position_quantity, price)]
    return []
