"""Each analyst's contribution to a run (or to a walk-forward's out-of-sample replays): the evidence to switch one off.

Per agent (technical, news, llm, earnings, social, ...), over the decisions of the runs given:

- ``opinions``: opinions it gave (not skipped), ``calls`` of them BUY or SELL;
- ``scored`` / ``hits`` / ``hit_rate``: of its calls whose horizon had passed (``audit.opinion_outcomes``, scored by the
  memory with the point-in-time rule of ARCHITECTURE §4), how many pointed the way the price then went;
- ``pnl``: the closed-trade net P&L credited to it (``alphaloom.backtest.attribution``: each round trip's P&L shared
  among the agents that voted for its entry, by weight x confidence).

For a walk-forward the runs are the out-of-sample replays only (each window's ``replay_run_id``): no in-sample trial's
decision counts. ``contributions`` is pure; ``run_contributions`` reads the audit rows; ``contribution_html`` renders
the table both the run report and the walk-forward page show.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from alphaloom.records.decisions import opinions_of_runs
from alphaloom.records.memory import outcomes_of_runs


@dataclass(frozen=True, slots=True)
class AgentContribution:
    """One agent's record over the runs: opinions, directional calls, calls scored and hit, P&L credited."""

    agent: str
    opinions: int
    calls: int
    scored: int
    hits: int
    pnl: float

    @property
    def hit_rate(self) -> float | None:
        """hits / scored; None before any call was scored."""
        return self.hits / self.scored if self.scored else None


def contributions(
    opinions: Iterable[tuple[str, str, bool]],
    outcomes: Iterable[tuple[str, str, bool | None]],
    pnl: Mapping[str, float],
) -> list[AgentContribution]:
    """Per agent, sorted by P&L (largest first, then name). ``opinions``: (agent, action, skipped) of every recorded
    opinion; ``outcomes``: (agent, action, hit) of every scored opinion (HOLDs and unscored hits are not calls);
    ``pnl``: agent -> P&L credited (``unattributed`` and other keys that gave no opinion are kept as rows of zeros)."""
    counts: dict[str, list[int]] = {}
    for agent, action, skipped in opinions:
        row = counts.setdefault(agent, [0, 0, 0, 0])
        if not skipped:
            row[0] += 1
            row[1] += action in ("buy", "sell")
    for agent, action, hit in outcomes:
        if action not in ("buy", "sell") or hit is None:
            continue
        row = counts.setdefault(agent, [0, 0, 0, 0])
        row[2] += 1
        row[3] += bool(hit)
    for agent in pnl:
        counts.setdefault(agent, [0, 0, 0, 0])
    found = [AgentContribution(agent, *row, pnl=float(pnl.get(agent, 0.0))) for agent, row in counts.items()]
    return sorted(found, key=lambda c: (-c.pnl, c.agent))


def run_contributions(conn: Connection, run_ids: Sequence[str], pnl: Mapping[str, float]) -> list[AgentContribution]:
    """``contributions`` over the decisions recorded by ``run_ids`` (``pnl``: agent -> P&L credited over them)."""
    opinions = opinions_of_runs(conn, run_ids)
    outcomes = outcomes_of_runs(conn, run_ids)
    return contributions(opinions, outcomes, pnl)


def summed_pnl(by_run: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Agent -> P&L summed over runs (each run's ``RunReport.attribution["agent"]``)."""
    total: dict[str, float] = {}
    for pnl in by_run:
        for agent, value in pnl.items():
            total[agent] = total.get(agent, 0.0) + float(value)
    return total


def contribution_html(rows: Sequence[AgentContribution], *, title: str = "Analyst contribution") -> str:
    """The table: one row per agent, with a note on what the figures mean."""
    if not rows:
        return f'<div class="card"><h2>{html.escape(title)}</h2><p>no opinions recorded</p></div>'
    body = "".join(
        f"<tr><th>{html.escape(r.agent)}</th><td>{r.opinions}</td><td>{r.calls}</td><td>{r.scored}</td>"
        f"<td>{r.hits}</td><td>{'' if r.hit_rate is None else f'{r.hit_rate:.1%}'}</td>"
        f'<td class="{"pos" if r.pnl > 0 else "neg" if r.pnl < 0 else ""}">{r.pnl:,.2f}</td></tr>'
        for r in rows
    )
    return (
        f'<div class="card"><h2>{html.escape(title)}</h2><table><tr><th>agent</th><th>opinions</th><th>calls</th>'
        f"<th>scored</th><th>hits</th><th>hit rate</th><th>P&amp;L credited</th></tr>{body}</table>"
        "<p>calls: buy/sell opinions; scored: calls whose horizon had passed; hit: the price moved the way the call "
        "pointed; P&amp;L: closed trades' net P&amp;L shared among the agents that voted for the entry.</p></div>"
    )


def agent_pnl_of_run(conn: Connection, run_id: str) -> dict[str, float]:
    """The closed-trade P&L of ``run_id`` credited per agent, as its run report computes it."""
    import pandas as pd

    from alphaloom.backtest.attribution import attribute
    from alphaloom.backtest.equity_curve import closed_trades
    from alphaloom.records.orders import run_fills
    from alphaloom.reporting.run_report import entry_shares

    fills = pd.DataFrame(
        run_fills(conn, run_id),
        columns=["ts", "symbol", "side", "quantity", "price", "fee", "fee_currency", "decision_id"],
    )
    if fills.empty:
        return {}
    fills["ts"] = pd.to_datetime(fills["ts"], utc=True)
    trades = closed_trades(fills)
    if trades.empty:
        return {}
    shares, _ = entry_shares(conn, sorted({str(d) for d in trades["entry_decision"]}))
    return {str(k): float(v) for k, v in attribute(trades, shares).items()}


def walk_forward_contributions(conn: Connection, replay_run_ids: Sequence[str]) -> list[AgentContribution]:
    """``run_contributions`` over a walk-forward's out-of-sample replays, with their P&L credited per agent."""
    return run_contributions(conn, replay_run_ids, summed_pnl(agent_pnl_of_run(conn, r) for r in replay_run_ids))
