"""Trading strategies as pure functions: price (and news) series in, a ``Signal`` with strength in [-1, 1] out.

Each module is one strategy; none does I/O. A strategy that lacks the history it needs returns ``None`` (abstains)
rather than a zero-strength signal, so callers can tell "no view" from "neutral".
"""

from agents.strategies.event_driven import EventParams, sentiment_shock
from agents.strategies.market_making import MarketMakingParams, Quotes, make_quotes
from agents.strategies.mean_reversion import MeanReversionParams, mean_reversion
from agents.strategies.momentum import MomentumParams, momentum
from agents.strategies.pairs import PairsParams, PairsState, pairs_signal

__all__ = [
    "EventParams",
    "MarketMakingParams",
    "MeanReversionParams",
    "MomentumParams",
    "PairsParams",
    "PairsState",
    "Quotes",
    "make_quotes",
    "mean_reversion",
    "momentum",
    "pairs_signal",
    "sentiment_shock",
]
