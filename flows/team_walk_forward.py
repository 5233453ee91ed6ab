"""Flow: walk-forward of the team on the replay engine (``flows.backtest.replay_run``, the live decision code point
in time): team parameters chosen on each in-sample window from a small grid, traded out of sample with the full
audit, the out-of-sample stretches chained on the walk-forward page and recorded under the run
(``alphaloom.backtest.team_walkforward``).

Each window's work is a plain function of (spec, settings, window, parent run): ``walk_window`` (``choose_in_sample``
then ``trade_out_of_sample``), so windows can later run as separate tasks; the chaining waits for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from prefect import flow

from agents.consensus import ConsensusParams
from agents.params import StrategyParams
from agents.team import Team, build_team
from alphaloom.backtest.team_grid import TeamCandidate, parse_team_grid
from alphaloom.backtest.team_walkforward import (
    TeamWalkForwardSpec,
    TeamWindow,
    best_candidate,
    objective_score,
    record_team_walk_forward,
    rolling_windows,
    stored_decision_times,
    write_team_page,
)
from alphaloom.backtest.walkforward import Stretch, WalkForwardResult, chain_stretches
from alphaloom.db.engine import get_engine
from alphaloom.domain import timeframe_delta
from alphaloom.errors import ConfigError
from alphaloom.progress import progress
from alphaloom.records.orders import run_fills
from alphaloom.records.runs import recorded_run
from alphaloom.reporting.agent_contribution import contribution_html, walk_forward_contributions
from alphaloom.reporting.performance import total_return
from alphaloom.reporting.run_report import FILL_MODES, RunReport
from alphaloom.settings import Settings, get_settings
from flows._alerts import alert_on_failure
from flows._audit import audited_run
from flows.backtest import replay_run

# What the in-sample trials record (``alphaloom.reporting.run_report.AUDIT_MODES``): only the decisions that sent an
# order, with the orders and fills their metrics read; the out-of-sample stretches record everything ("full").
SEARCH_AUDIT = "none"


def candidate_rules(candidate: TeamCandidate) -> StrategyParams:
    """The strategy parameters of a candidate: the team rule with its consensus threshold and base weights."""
    return StrategyParams(consensus=ConsensusParams(weights=candidate.base_weights, threshold=candidate.threshold))


def replay_candidate(
    spec: TeamWalkForwardSpec, settings: Settings, candidate: TeamCandidate, times: list[datetime], *,
    parent_run: str, label: Mapping[str, Any], team: Team | None = None, audit: str = "full",
) -> RunReport:  # fmt: skip
    """Replay ``times`` with ``candidate`` as its own backtest run (``audit.runs`` row with the walk-forward run and
    ``label`` in its parameters) on a fresh paper account; its metrics (no HTML report is written)."""
    run_settings = settings.model_copy(update=candidate.settings_update())
    parameters = {"walk_forward_run": parent_run, **label, "candidate": candidate.as_dict(), "symbols": spec.symbols,
                  "start": times[0], "end": times[-1], "steps": len(times), "fill_at": spec.fill_at,
                  "strategy": "team", "audit": audit}  # fmt: skip
    with recorded_run(get_engine(), "backtest", parameters) as run_id:
        report, _ = replay_run(run_id, settings=run_settings, rules=candidate_rules(candidate), symbols=spec.symbols,
                               times=times, fill_at=spec.fill_at, audit=audit,
                               team=team or Team(scorer=build_team(settings).scorer, llm_agent=None))  # fmt: skip
        return report


def choose_in_sample(
    spec: TeamWalkForwardSpec, settings: Settings, window: TeamWindow, *, parent_run: str, team: Team | None = None
) -> tuple[TeamCandidate, dict[TeamCandidate, float]]:
    """Every candidate replayed on the window's in-sample times; the best by the objective and every score."""
    scores = {}
    for number, candidate in enumerate(spec.candidates, start=1):
        report = replay_candidate(spec, settings, candidate, window.in_sample, parent_run=parent_run, team=team,
                                  label={"window": window.number, "phase": "in_sample", "trial": number},
                                  audit=SEARCH_AUDIT)  # fmt: skip
        scores[candidate] = objective_score(report.metrics, spec.objective)
    return best_candidate(scores, spec.candidates), scores


def _fills(run_id: str) -> pd.DataFrame:
    with get_engine().connect() as conn:
        rows = [(f.ts, f.symbol, f.side, f.quantity, f.price, f.fee) for f in run_fills(conn, run_id)]
    return pd.DataFrame(rows, columns=["ts", "symbol", "side", "quantity", "price", "fee"])


def trade_out_of_sample(
    spec: TeamWalkForwardSpec, settings: Settings, window: TeamWindow, candidate: TeamCandidate, *, parent_run: str,
    team: Team | None = None,
) -> tuple[RunReport, Stretch]:  # fmt: skip
    """The chosen candidate replayed on the window's out-of-sample times with the full audit; its run's metrics and
    its stretch for the chained curve."""
    report = replay_candidate(spec, settings, candidate, window.out_of_sample, parent_run=parent_run, team=team,
                              label={"window": window.number, "phase": "out_of_sample"}, audit="full")  # fmt: skip
    stretch = Stretch(report.equity.astype(float), _fills(report.run_id), report.trade_pnls,
                      report.metrics.exposure * len(report.equity))  # fmt: skip
    return report, stretch


def walk_window(
    spec: TeamWalkForwardSpec, settings: Settings, window: TeamWindow, *, parent_run: str, team: Team | None = None
) -> tuple[dict[str, object], Stretch]:
    """One window, all of its work: the choice in sample, then its stretch out of sample; the window's row (as
    recorded) and the stretch (for the chained curve)."""
    best, scores = choose_in_sample(spec, settings, window, parent_run=parent_run, team=team)
    report, stretch = trade_out_of_sample(spec, settings, window, best, parent_run=parent_run, team=team)
    cash = float(settings.starting_cash)
    row = {
        "in_sample_start": window.in_sample[0], "in_sample_end": window.in_sample[-1],
        "out_of_sample_start": window.out_of_sample[0], "out_of_sample_end": window.out_of_sample[-1],
        "choice": best.label(), "params": best.as_dict(), "replay_run_id": report.run_id,
        "candidates": {c.label(): s for c, s in scores.items()}, f"in_sample_{spec.objective}": scores[best],
        f"out_of_sample_{spec.objective}": objective_score(report.metrics, spec.objective),
        "out_of_sample_return": total_return(pd.concat([pd.Series([cash]), stretch.equity])),
        "out_of_sample_fills": len(stretch.fills),
    }  # fmt: skip
    return row, stretch


def walk_team(spec: TeamWalkForwardSpec, settings: Settings, run_id: str) -> WalkForwardResult:
    """Window after window: choose in sample, trade out of sample; the stretches chained."""
    with get_engine().connect() as conn:
        times = stored_decision_times(conn, settings, spec.symbols, spec.start, spec.end)
    windows = rolling_windows(times, spec.in_sample, spec.out_sample)
    team = Team(scorer=build_team(settings).scorer, llm_agent=None)  # one sentiment model for every replay
    rows, stretches = [], []
    with progress(len(windows), f"walk-forward {run_id[:8]} (windows)") as advance:
        for window in windows:
            row, stretch = walk_window(spec, settings, window, parent_run=run_id, team=team)
            rows.append(row)
            stretches.append(stretch)
            advance(1)
    bar = pd.Timedelta(timeframe_delta(settings.timeframe))
    return chain_stretches(rows, stretches, initial_cash=float(settings.starting_cash),
                           periods_per_year=pd.Timedelta(days=365) / bar, bar=bar)  # fmt: skip


@flow(name="walk_forward", on_failure=[alert_on_failure])
def team_walk_forward_flow(
    symbols: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    thresholds: str = "0.2,0.3",
    weights: str = "default",
    sizing: str = "fixed",
    exits: str = "none,2:4",
    in_sample: int = 168,
    out_sample: int = 48,
    objective: str = "total_return",
    fill_at: str | None = None,
) -> dict[str, object]:
    """Walk-forward of the team over the bars ``start <= ts < end`` (default: all stored) of ``symbols`` (default:
    the settings'): the candidates of the grid (``alphaloom.backtest.team_grid.parse_team_grid``) replayed on each
    window's ``in_sample`` decision times, the best by ``objective`` traded on the next ``out_sample`` with the full
    audit (each stretch a fresh account, returns chained); returns the run id, the page path, the windows (with the
    choices and the out-of-sample replay run ids) and the chained out-of-sample metrics."""
    settings = get_settings()
    fill_at = fill_at or settings.backtest_fill_at
    if fill_at not in FILL_MODES:
        raise ConfigError(f"fill_at must be one of {sorted(FILL_MODES)}, got {fill_at!r}")
    # Without the LLM analyst (its opinion skipped in every replay): a grid of trials must cost no tokens and repeat.
    settings = settings.model_copy(update={"llm.base_url": None})
    spec = TeamWalkForwardSpec(symbols or settings.symbols, parse_team_grid(thresholds, weights, sizing, exits),
                               in_sample, out_sample, objective, fill_at, start, end)  # fmt: skip
    with audited_run("walk_forward", spec.parameters()) as (engine, run_id):
        result = walk_team(spec, settings, run_id)
        replays = [str(r) for r in result.windows["replay_run_id"]] if not result.windows.empty else []
        with engine.connect() as conn:
            contribution = contribution_html(walk_forward_contributions(conn, replays),
                                             title="Analyst contribution, out of sample")  # fmt: skip
        page = write_team_page(result, spec, settings, run_id, contribution)
        with engine.begin() as conn:
            record_team_walk_forward(conn, run_id, spec, settings, result, page)
        windows = [{k: w[k] for k in ("out_of_sample_start", "out_of_sample_end", "choice", "params", "replay_run_id",
                                      f"in_sample_{objective}", f"out_of_sample_{objective}", "out_of_sample_return",
                                      "out_of_sample_fills")} for w in result.windows.to_dict("records")]  # fmt: skip
        return {"run_id": run_id, "page": str(page), "windows": windows, **result.out_of_sample.as_dict()}
