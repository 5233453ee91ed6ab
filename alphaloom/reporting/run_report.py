"""Build a performance report for any run that traded: a backtest run or a live/paper decision run.

Reads the run's fills (``audit.fills``), the account's starting cash and the closes known at each decision time
(``raw.ohlcv``, bar closed by then), then computes metrics, attribution and a buy-and-hold benchmark, and writes the
HTML report with PNGs under ``<home>/reports/<run_id>/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, text

from alphaloom.backtest.attribution import attribute, vote_shares
from alphaloom.backtest.equity_curve import closed_trades, equity_curve, open_positions
from alphaloom.domain import (
    AccountId,
    bar_close,
    bar_open,
    quote_currency,
    shift_bars,
    timeframe_delta,
    timeframe_sql_interval,
)
from alphaloom.errors import DataUnavailableError
from alphaloom.fx import rate_history
from alphaloom.records.decisions import decisions_of_run, opinions_of_decisions, weights_of_decisions
from alphaloom.records.guards import refusals_of_run
from alphaloom.records.llm_ledger import usage_by_status
from alphaloom.records.orders import run_fills
from alphaloom.records.runs import run_parameters
from alphaloom.reporting.agent_contribution import contribution_html, run_contributions
from alphaloom.reporting.llm_spend import LlmSpend, net_return, runs_llm_spend
from alphaloom.reporting.performance import Metrics, attribution, buy_and_hold, compute_metrics
from alphaloom.reporting.report import ReportData, write_report

FILL_MODES = {
    "next_open": "fills: paper broker at the next bar's open plus slippage, with fees; the last step's orders expire",
    "close": "fills: paper broker at the decision bar's close plus slippage, with fees",
}
# What a backtest's ``--audit`` mode writes (``agents.audit_buffer``); every mode writes the run row, the account and
# execution's rows (orders, fills, positions, balances, guard trips), which the account's state and the report read.
AUDIT_MODES = {
    "full": "audit: full (every decision with its agent outputs, risk checks, lineage, agent weights and outcomes)",
    "decisions": "audit: decisions only (no agent outputs, risk checks, lineage, agent weights or outcome rows)",
    "none": "audit: none (only the decisions that sent an order, which the orders reference; no other per-decision row)",
}


@dataclass(frozen=True)
class RunReport:
    run_id: str
    account: str
    metrics: Metrics
    path: Path | None  # None when no page was asked for (``out_dir=None``)
    trades: int
    notes: list[str]
    # P&L of the closed trades by "asset", "agent" and "strategy" (alphaloom.backtest.attribution)
    attribution: dict[str, dict[str, float]] = field(default_factory=dict)
    # What the run's LLM opinions cost in the account's base currency, and the total return net of it
    llm: LlmSpend | None = None
    net_total_return: float | None = None
    equity: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # at each decision time
    trade_pnls: list[float] = field(default_factory=list)  # net P&L of each closed trade, in exit order
    traded_notional: float = 0.0


def backtest_account(run_id: str) -> AccountId:
    """The paper account a backtest run trades on, created fresh for the run."""
    return AccountId(f"backtest-{run_id[:8]}")


def _run_account(conn: Connection, run_id: str, timeframe: str) -> tuple[str, list[str], list[datetime]]:
    """The run's account, the symbols it decided and its decision times: from its ``audit.decisions`` rows, or for a
    backtest run with ``audit`` ``none`` (those rows are not all written) from its parameters (its account, symbols
    and the ``steps`` bar closes ending at ``end``)."""
    run = run_parameters(conn, run_id)
    p = (run.parameters or {}) if run is not None and run.flow == "backtest" else {}
    if p.get("audit") == "none":
        end = datetime.fromisoformat(str(p["end"]))
        times = [shift_bars(end, timeframe, -k) for k in reversed(range(int(p["steps"])))]
        return backtest_account(run_id), sorted(p["symbols"]), times
    rows = decisions_of_run(conn, run_id)
    if not rows:
        raise DataUnavailableError(f"run {run_id!r} made no decisions: nothing to report")
    accounts = {r.account for r in rows}
    if len(accounts) != 1:
        raise DataUnavailableError(f"run {run_id!r} decided for several accounts {sorted(accounts)}")
    return accounts.pop(), sorted({r.symbol for r in rows}), sorted({r.as_of for r in rows})


def closes_known(
    conn: Connection, *, exchange: str, timeframe: str, symbols: list[str], times: list[datetime]
) -> pd.DataFrame:
    """Close of the newest bar closed by each time (index: times, columns: symbols)."""
    # A bar is known at its close: ts + one bar, done on UTC wall time so that a month bar closes at the next month's
    # start (timeframe_sql_interval is "1 month" there).
    rows = conn.execute(
        text(
            """with bars as (
                   select symbol, ts, close,
                          (ts at time zone 'UTC' + cast(:bar as interval)) at time zone 'UTC' as known_at
                   from raw.ohlcv where exchange = :e and timeframe = :tf and symbol = any(:s)),
               latest_before as (  -- the newest bar known by the first time, however old (a run long after its data)
                   select symbol, max(ts) as ts from bars where known_at <= :first group by symbol)
               select b.symbol, b.ts, b.close from bars b left join latest_before l using (symbol)
               where b.known_at <= :end and b.ts >= least(coalesce(l.ts, :start), :start)"""
        ),
        {"e": exchange, "tf": timeframe, "s": symbols, "bar": timeframe_sql_interval(timeframe), "end": times[-1],
         "first": times[0], "start": shift_bars(bar_open(times[0], timeframe), timeframe, -200)},
    ).all()  # fmt: skip
    frame = pd.DataFrame(rows, columns=["symbol", "ts", "close"])
    frame["known_at"] = pd.to_datetime(frame["ts"].map(lambda ts: bar_close(ts, timeframe)), utc=True)
    wide = frame.pivot_table(index="known_at", columns="symbol", values="close", aggfunc="last").astype(float)
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    return wide.reindex(wide.index.union(index)).sort_index().ffill().reindex(index)


def _rates_known(conn: Connection, fills: pd.DataFrame, base_currency: str, times: pd.DatetimeIndex) -> pd.DataFrame:
    """Per time, the rate known then of each currency the run's cash and positions moved in (base units per unit)."""
    if fills.empty:
        return pd.DataFrame(index=times)
    currencies = (set(fills["currency"]) | set(fills["fee_currency"])) - {base_currency}
    columns = {}
    for currency in sorted(currencies):
        history = rate_history(conn, currency, base_currency, times[-1].to_pydatetime())
        series = pd.Series([float(r) for _, r in history], index=pd.DatetimeIndex([t for t, _ in history]),
                           dtype=float)  # fmt: skip
        columns[currency] = series.reindex(series.index.union(times)).ffill().reindex(times)
    return pd.DataFrame(columns, index=times)


def build_run_report(
    conn: Connection,
    run_id: str,
    *,
    exchange: str,
    timeframe: str,
    out_dir: Path | None,
    notes: list[str] | None = None,
    unrecorded_refusals: Mapping[str, int] | None = None,
) -> RunReport:
    """The run's metrics, equity, trades and attribution; its HTML report and PNGs are written under
    ``out_dir/<run_id>`` unless ``out_dir`` is None (a walk-forward's in-sample trials need the metrics only).
    ``unrecorded_refusals``: the risk gate's denials by check that the run's audit mode did not write (counted with
    the recorded ones in the notes)."""
    account, symbols, times = _run_account(conn, run_id, timeframe)
    base_currency, cash = conn.execute(
        text("select base_currency, starting_cash from audit.accounts where id = :a"), {"a": account}
    ).one()
    starting_cash = float(cash)
    fills = pd.DataFrame(
        run_fills(conn, run_id),
        columns=["ts", "symbol", "side", "quantity", "price", "fee", "fee_currency", "decision_id"],
    )
    if not fills.empty:
        fills["ts"] = pd.to_datetime(fills["ts"], utc=True)
        fills["currency"] = [quote_currency(str(s), base_currency) for s in fills["symbol"]]
        paired = fills["symbol"].astype(str).str.contains("/", regex=False)
        fills["fee_currency"] = fills["fee_currency"].where(paired, fills["currency"])
    closes = closes_known(conn, exchange=exchange, timeframe=timeframe, symbols=symbols, times=times)
    rates = _rates_known(conn, fills, base_currency, closes.index)
    equity = equity_curve(fills, closes, starting_cash, base_currency=base_currency, rates=rates)
    trades = closed_trades(fills)
    agent_shares, strategy_shares = entry_shares(conn, sorted({str(d) for d in trades["entry_decision"]}))
    per_asset = attribution(trades, "symbol")
    by_agent, by_strategy = attribute(trades, agent_shares), attribute(trades, strategy_shares)
    periods_per_year = pd.Timedelta(days=365) / timeframe_delta(timeframe)
    exposure = _exposure(fills, closes)
    notional = float((fills["quantity"].astype(float) * fills["price"].astype(float)).sum())
    pnls = [float(p) for p in trades["pnl"]]
    metrics = compute_metrics(
        equity, periods_per_year=periods_per_year, trade_pnls=pnls, exposure_fraction=exposure, traded_notional=notional
    )
    llm, net, spend_note = _llm_spend(conn, run_id, base_currency, metrics.total_return, cash)
    pnl = {"asset": per_asset, "agent": by_agent, "strategy": by_strategy}
    result = RunReport(run_id, account, metrics, None, len(trades), [],
                       {name: {str(k): float(v) for k, v in series.items()} for name, series in pnl.items()},
                       llm, net, equity, pnls, notional)  # fmt: skip
    if out_dir is None:
        return result
    assumed = conn.execute(
        text(
            """select count(*) from audit.lineage l join raw.news n on n.id = l.parent_key->>'id'
               where l.run_id = :r and l.parent_table = 'raw.news' and n.first_seen_assumed"""
        ),
        {"r": run_id},
    ).scalar_one()
    notes = [*run_notes(conn, run_id, unrecorded_refusals), spend_note, *(notes or [])]
    if assumed:
        notes.append(f"{assumed} news links used assumed first-seen times (published + configured latency)")
    data = ReportData(
        title=f"Run {run_id} — account {account}",
        subtitle=f"{len(times)} decision times from {times[0]:%Y-%m-%d %H:%M} to {times[-1]:%Y-%m-%d %H:%M} UTC; "
        f"{', '.join(symbols)}",
        equity=equity,
        benchmark=buy_and_hold(closes, starting_cash),
        metrics=metrics.as_dict() if llm is None or net is None else with_llm(metrics.as_dict(), llm, net),
        trades=trades.drop(columns=["entry_decision"]),
        per_asset_pnl=per_asset,
        attribution={"agent": by_agent, "strategy": by_strategy},
        sections_html=[
            contribution_html(run_contributions(conn, [run_id], {str(k): float(v) for k, v in by_agent.items()}))
        ],
        notes=notes,
        open_positions=open_positions(fills, closes.ffill().iloc[-1] if len(closes) else pd.Series(dtype=float)),
        fills=fills.drop(columns=["decision_id"]),
    )
    return replace(result, path=write_report(data, out_dir / run_id), notes=notes)


def _llm_spend(
    conn: Connection, run_id: str, base_currency: str, gross: float, starting_cash: Decimal
) -> tuple[LlmSpend | None, float | None, str]:
    """The run's LLM spend, its net total return and the report's line on them; a USD rate missing into the base
    currency leaves both out and says so (the report of a long backtest is still written)."""
    try:
        llm = runs_llm_spend(conn, [run_id], base_currency)
    except DataUnavailableError as exc:
        return None, None, f"LLM spend not converted into {base_currency}, so no return net of it is shown: {exc}"
    net = net_return(gross, llm.total, starting_cash)
    return llm, net, llm_note(llm, gross, net)


def with_llm(metrics: dict[str, float | int], llm: LlmSpend, net: float) -> dict[str, float | int]:
    """``metrics`` with the LLM spend and the net total return placed right after the gross total return. Pure."""
    out: dict[str, float | int] = {}
    for key, value in metrics.items():
        out[key] = value
        if key == "total_return":
            out |= {"llm_spend": float(llm.total), "net_total_return": net}
    return out


def llm_note(llm: LlmSpend, gross: float, net: float) -> str:
    """The report's line on what the LLM cost and the return net of it. Pure."""
    reused = f"; {llm.cached} answers from the response cache, first paid {llm.reused:,.4f}" if llm.cached else ""
    return (f"LLM spend {llm.total:,.4f} {llm.currency} (paid by this run {llm.paid:,.4f} for {llm.calls} calls, "
            f"{llm.tokens} tokens{reused}; priced in USD, converted at the rate known when paid): total return "
            f"gross {gross:+.4%}, net of LLM cost {net:+.4%}")  # fmt: skip


def entry_shares(
    conn: Connection, decision_ids: list[str]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Agent and strategy shares of each entry decision, from its recorded opinions and agent weights."""
    if not decision_ids:
        return {}, {}
    weights = {
        row.decision_id: {agent: float(w["weight"]) for agent, w in (row.weights or {}).items()}
        for row in weights_of_decisions(conn, decision_ids)
    }
    opinions: dict[str, list[dict]] = {}
    for row in opinions_of_decisions(conn, decision_ids):
        output = row.output if isinstance(row.output, dict) else json.loads(row.output)
        opinions.setdefault(row.decision_id, []).append(
            {"agent": row.agent, "skipped": row.skipped, "action": output.get("action", "hold"),
             "confidence": output.get("confidence", 0.0), "details": output.get("details") or {}}
        )  # fmt: skip
    agents, strategies = {}, {}
    for decision_id in decision_ids:
        agents[decision_id], strategies[decision_id] = vote_shares(
            opinions.get(decision_id, []), weights.get(decision_id, {})
        )
    return agents, strategies


def _exposure(fills: pd.DataFrame, closes: pd.DataFrame) -> float:
    """Share of decision times with any position open."""
    if fills.empty:
        return 0.0
    sign = fills["side"].map({"buy": 1.0, "sell": -1.0}) * fills["quantity"].astype(float)
    held = sign.groupby(fills["ts"]).sum().cumsum()
    held = held.reindex(held.index.union(closes.index)).ffill().fillna(0.0).reindex(closes.index)
    return float((held.abs() > 1e-12).mean())


def refusal_counts(conn: Connection, run_id: str, unrecorded: Mapping[str, int] | None = None) -> dict[str, int]:
    """Every refusal of a run by reason: execution's guard trips by guard (``audit.guard_trips``) and the risk gate's
    denials by check (``audit.risk_checks``; execution's own guard rows are the trips already counted), plus the
    ``unrecorded`` denials (by check) of a run whose audit mode did not write them."""
    counts: dict[str, int] = dict(unrecorded or {})
    for reason, n in refusals_of_run(conn, run_id):
        counts[reason] = counts.get(reason, 0) + n
    return dict(sorted(counts.items()))


def run_notes(conn: Connection, run_id: str, unrecorded_refusals: Mapping[str, int] | None = None) -> list[str]:
    """How a backtest run was made, from its recorded parameters and LLM ledger: where it filled, whether and how the
    LLM was consulted (cache only or live, with counts and tokens), every refusal counted by reason, and whether it was
    exposed to the model's
    knowledge of the future, and what its audit mode wrote. Empty for other runs."""
    row = run_parameters(conn, run_id)
    if row is None or row.flow != "backtest":
        return []
    p = row.parameters or {}
    notes = [
        FILL_MODES.get(p.get("fill_at") or "close", f"fills: {p.get('fill_at')}"),
        AUDIT_MODES.get(p.get("audit") or "full", f"audit: {p.get('audit')}"),
    ]
    if p.get("strategy", "team") != "team":
        notes.append(f"strategy: {p['strategy']} only, SMA({p.get('sma_fast')}) vs SMA({p.get('sma_slow')}); "
                     "no news, no LLM")  # fmt: skip
        notes.append(f"LLM analyst: not consulted (strategy {p['strategy']})")
    elif not p.get("llm_model"):
        notes.append("LLM analyst: not consulted (no endpoint configured)")
    else:
        usage = usage_by_status(conn, run_id)
        mode = (f"cache misses called live, up to {p.get('llm_max_calls')} calls (--llm-live)" if p.get("llm_live")
                else "response cache only")  # fmt: skip
        counts = ", ".join(f"{u.status} {u.n}" for u in usage) or "no opinions asked"
        notes.append(f"LLM analyst ({p['llm_model']}): {mode}; {counts}; {sum(u.tokens for u in usage)} tokens spent")
    refusals = refusal_counts(conn, run_id, unrecorded_refusals)
    notes.append("refusals: " + (", ".join(f"{k} {n}" for k, n in refusals.items()) or "none"))
    if p.get("audit", "full") != "full":
        notes.append("P&L by agent and by strategy: not available (the agents' outputs are not recorded in this audit "
                     "mode)")  # fmt: skip
    if p.get("exposure"):
        notes.append(f"EXPOSED to the model's knowledge of the future (--allow-exposure): {p['exposure']}")
    return notes
