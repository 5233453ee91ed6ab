"""What the LLM roles cost, in an account's base currency, for reports and ``alphaloom pnl``.

Every call's cost is stored in USD in ``audit.llm_usage`` (priced per model by ``LlmSettings.price``). It is converted
into the account's base currency row by row at the rate known when it was paid (``alphaloom.fx.rate_history``: the
newest ``audit.fx_rates`` rate USD -> base at or before the row's ``created_at``; the shipped USD/USDT peg covers a
USDT account); a missing rate is a ``DataUnavailableError`` naming the pair and time, never a silent 1.

Two amounts: ``paid`` is what the runs themselves spent (every row's cost, reservations never settled included);
``reused`` is what the answers they took from the response cache first cost when another call paid for them. A run's
return net of LLM cost counts both (what its opinions cost, however they were obtained: a backtest replayed from the
cache is judged as if it had asked); an account's P&L net of LLM cost counts only ``paid`` (money spent once, by the
run that first asked).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection

from alphaloom.fx import missing_rate, rate_history
from alphaloom.records.llm_ledger import usage_of_runs
from alphaloom.records.runs import runs_of_account

PRICE_CURRENCY = "USD"

_CALLED = frozenset({"ok", "repaired", "invalid", "timeout", "error", "reserved"})


@dataclass(frozen=True, slots=True)
class LlmSpend:
    """LLM spend of some runs in ``currency`` (see the module docstring); ``tokens`` and ``calls`` are the runs' own."""

    currency: str
    paid: Decimal = Decimal(0)
    reused: Decimal = Decimal(0)
    tokens: int = 0
    calls: int = 0
    cached: int = 0

    @property
    def total(self) -> Decimal:
        """What the runs' opinions cost: paid now plus first paid for the cached answers they reused."""
        return self.paid + self.reused


class _UsdRate:
    """USD -> ``currency`` at any time, from one read of the stored rates."""

    def __init__(self, conn: Connection, currency: str) -> None:
        self.currency = currency
        history = [] if currency == PRICE_CURRENCY else rate_history(conn, PRICE_CURRENCY, currency, datetime.now(UTC))
        self.times = [t for t, _ in history]
        self.rates = [r for _, r in history]

    def at(self, when: datetime) -> Decimal:
        if self.currency == PRICE_CURRENCY:
            return Decimal(1)
        i = bisect.bisect_right(self.times, when)
        if i == 0:
            raise missing_rate(PRICE_CURRENCY, self.currency, when)
        return self.rates[i - 1]


def runs_llm_spend(conn: Connection, run_ids: Sequence[str], currency: str) -> LlmSpend:
    """The LLM spend of ``run_ids`` in ``currency`` (each cost at the rate known when it was paid)."""
    if not run_ids:
        return LlmSpend(currency)
    rate = _UsdRate(conn, currency)
    paid, reused, tokens, calls, cached = Decimal(0), Decimal(0), 0, 0, 0
    for row in usage_of_runs(conn, run_ids):
        if row.cost:
            paid += Decimal(row.cost) * rate.at(row.created_at)
        if row.first_cost:
            reused += Decimal(row.first_cost) * rate.at(row.first_at)
        tokens += int(row.total_tokens)
        calls += row.status in _CALLED
        cached += row.status == "cached"
    return LlmSpend(currency, paid, reused, tokens, calls, cached)


def account_llm_spend(conn: Connection, account: str, currency: str) -> LlmSpend:
    """The LLM spend of every run that decided for ``account`` (dry runs included), in ``currency``."""
    runs = runs_of_account(conn, account)
    return runs_llm_spend(conn, runs, currency)


def net_return(gross_return: float, spend: Decimal, starting_equity: Decimal | float) -> float:
    """``gross_return`` (a fraction of ``starting_equity``) less ``spend`` as a fraction of it. Pure."""
    if not starting_equity:
        return gross_return
    return gross_return - float(spend) / float(starting_equity)
