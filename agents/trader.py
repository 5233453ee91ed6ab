"""The trader agent: turns the team's action into ``OrderIntent``s. Pure, long-only for now.

- BUY while flat: one intent for ``order_notional`` (in the account's base currency) divided by the price converted
  into that currency (``price x quote_rate``: an ETH/BTC price in BTC times the BTC rate), rounded down to the
  market's quantity step (``alphaloom.markets.MarketSpec``: the venue's metadata or configuration, never the symbol's
  spelling); none when that rounds to zero or below the venue's minimum amount. Without a known rate for the quote
  currency a buy cannot be sized: ``DataUnavailableError`` naming the pair (a refusal, never a guess of 1). The caller
  picks ``order_notional`` by the sizing mode (``agents.risk.sizing.choose_notional``: fixed, fractional Kelly,
  volatility target).
- SELL while long: one intent selling the whole position (what the venue holds: fees taken in coins are already out).
- Anything else (HOLD, BUY while long, SELL while flat): no intent.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from alphaloom.domain import AccountId, Action, DecisionId, OrderIntent, Side, Symbol
from alphaloom.fx import QuoteRate
from alphaloom.markets import MarketSpec, resolve
from alphaloom.settings import Settings, get_settings


def quantity_step(symbol: Symbol, settings: Settings | None = None) -> Decimal:
    """The configured quantity step of a file-source ``symbol`` (``alphaloom.markets.resolve`` without venue
    metadata): for the vectorized paths, which read no ``raw.markets``."""
    settings = settings or get_settings()
    return resolve(symbol, {}, settings.asset_classes, settings.quantity_steps).quantity_step


def size_quantity(order_notional: Decimal, price: Decimal, step: Decimal) -> Decimal:
    """``order_notional / price`` rounded down to a multiple of ``step`` (never more notional than asked); both in
    the same currency."""
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    return ((order_notional / price) / step).to_integral_value(rounding=ROUND_DOWN) * step


def opens_position(action: Action, position_quantity: Decimal) -> bool:
    """True when ``action`` would open a new position (a buy while flat): the case whose size the sizing mode picks."""
    return action is Action.BUY and position_quantity == 0


def closes_position(action: Action, position_quantity: Decimal) -> bool:
    """True when ``action`` would close the position held (a sell while long): the one other case with an intent."""
    return action is Action.SELL and position_quantity > 0


def order_intents(
    *,
    decision_id: DecisionId,
    account: AccountId,
    symbol: Symbol,
    action: Action,
    position_quantity: Decimal,
    price: Decimal,
    order_notional: Decimal,
    market: MarketSpec,
    quote_rate: QuoteRate,
) -> list[OrderIntent]:
    """The intents for one decision (leg 0); empty when there is nothing to do. ``price`` is in the symbol's quote
    currency, ``order_notional`` in the account's base currency, ``quote_rate`` converts the first into the second."""
    if opens_position(action, position_quantity):
        quantity = size_quantity(order_notional, quote_rate.to_base(price), market.quantity_step)
        if quantity <= 0 or (market.min_quantity is not None and quantity < market.min_quantity):
            return []
        return [OrderIntent(decision_id, account, symbol, Side.BUY, quantity, price)]
    if closes_position(action, position_quantity):
        return [OrderIntent(decision_id, account, symbol, Side.SELL, position_quantity, price)]
    return []
