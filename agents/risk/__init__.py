"""The risk manager (ARCHITECTURE §6: numbers, not opinions). One small module per rule, pure but for ``context`` (loads
the portfolio point in time) and ``recorder`` (writes ``audit.risk_checks``):

- ``limits``: per-intent checks (kill switch, long-only, hard limits of ``alphaloom.guards``, feature freshness) and
  ``check_intent``, which adds the portfolio checks when given a ``PortfolioContext``;
- ``portfolio``: drawdown, exposure per asset and class, gross/net leverage, correlation cluster, VaR limit;
- ``var``, ``drawdown``, ``correlation``, ``sizing``: the maths behind them.

An intent may go only when every verdict approves it, at the smallest quantity any of them allows
(``adjusted_intent``).
"""

from agents.risk.limits import check_intent
from agents.risk.portfolio import PortfolioContext, RiskLimits, check_portfolio
from agents.risk.verdict import RiskVerdict, adjusted_intent, all_approved

__all__ = [
    "PortfolioContext",
    "RiskLimits",
    "RiskVerdict",
    "adjusted_intent",
    "all_approved",
    "check_intent",
    "check_portfolio",
]
