"""The portfolio risk gate as a callable, for orders that leave later than their decision (TWAP and iceberg slices
released by ``execution.algos.release``): at release time each slice meets what a fresh order meets in the decision, the
portfolio checks of ``agents.risk.portfolio`` (drawdown halt and reduction, exposure per asset and class, leverage,
correlation cluster, VaR) against the account as it is then (``agents.risk.context``).

Execution cannot import the agents (import rules), so the flows build this gate and hand it to execution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection

from agents.risk.context import portfolio_context
from agents.risk.portfolio import PortfolioContext, RiskLimits, check_portfolio
from agents.risk.verdict import adjusted_intent
from alphaloom.domain import AccountId, OrderIntent
from alphaloom.guards import LimitBreach
from alphaloom.settings import Settings

# What a gate answers: the intent that may go (shrunk where an exposure limit allows only part of it) and no
# breaches, or None with the checks that denied it.
GateAnswer = tuple[OrderIntent | None, tuple[LimitBreach, ...]]


# The account's context for (connection, account, candidate symbols, as_of): ``agents.risk.context.portfolio_context``
# from the database, or a replay's in-memory account (``agents.replay_account.ReplayAccount.context``).
ContextReader = Callable[[Connection, str, Sequence[str], datetime], PortfolioContext]


def portfolio_gate(
    settings: Settings, context: ContextReader | None = None
) -> Callable[[Connection, OrderIntent, datetime], GateAnswer]:
    """The gate a slice passes at ``as_of``; ``context``: where the account's context comes from (default: read from
    the database)."""
    limits = RiskLimits.from_settings(settings)

    def from_database(
        conn: Connection, account: AccountId, symbols: Sequence[str], as_of: datetime
    ) -> PortfolioContext:
        return portfolio_context(conn, account=account, symbols=symbols, as_of=as_of, settings=settings)

    read = context or from_database

    def gate(conn: Connection, intent: OrderIntent, as_of: datetime) -> GateAnswer:
        ctx = read(conn, intent.account, [intent.symbol], as_of)
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
