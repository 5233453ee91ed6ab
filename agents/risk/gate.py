"""The portfolio risk gate as a callable, for orders that leave later than their decision (TWAP and iceberg slices
released by ``execution.release``): at release time each slice meets what a fresh order meets in the decision, the
portfolio checks of ``agents.risk.portfolio`` (drawdown halt and reduction, exposure per asset and class, leverage,
correlation cluster, VaR) against the account as it is then (``agents.risk.context``).

Execution cannot import the agents (import rules), so the flows build this gate and hand it to execution.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from agents.risk.context import portfolio_context
from agents.risk.portfolio import RiskLimits, check_portfolio
from agents.risk.verdict import adjusted_intent
from alphaloom.domain import OrderIntent
from alphaloom.guards import LimitBreach
from alphaloom.settings import Settings

# What a gate answers: the intent that may go (shrunk where an exposure limit allows only part of it) and no
# breaches, or None with the checks that denied it.
GateAnswer = tuple[OrderIntent | None, tuple[LimitBreach, ...]]


def portfolio_gate(settings: Settings) -> Callable[[Connection, OrderIntent, datetime], GateAnswer]:
    limits = RiskLimits.from_settings(settings)

    def gate(conn: Connection, intent: OrderIntent, as_of: datetime) -> GateAnswer:
        ctx = portfolio_context(conn, account=intent.account, symbols=[intent.symbol], as_of=as_of, settings=settings)
        quote = ctx.quote_rate(intent.symbol)
        if quote.rate is None:  # a notional that cannot be counted in the base currency is refused, never taken as 1
            return None, (LimitBreach("fx_rate", str(quote.missing), {"quote": quote.quote, "base": quote.base}),)
        verdicts = check_portfolio(intent, ctx, limits, quote_rate=quote.rate)
        allowed = adjusted_intent(intent, verdicts)
        if allowed is not None:
            return allowed, ()
        denied = tuple(LimitBreach(v.check_name, v.reason, dict(v.numbers)) for v in verdicts if not v.approved)
        return None, denied or (LimitBreach("portfolio", "the portfolio checks leave nothing of it", {}),)

    return gate
