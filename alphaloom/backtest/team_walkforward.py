"""The team walk-forward's setup, windows, page and records (the replays themselves run in
``flows.team_walk_forward``, on the backtest's replay engine).

Windows roll over the decision times (every bar close on the timeframe's grid from the first stored bar in the range to
the last, as ``alphaloom backtest`` decides): the team parameters are chosen on
``in_sample`` decision times (the best in-sample objective over the candidates, the first in grid order on ties, a
non-finite score ranking last), then traded, unchanged, on the next ``out_sample``; the windows step forward by
``out_sample``, so the out-of-sample stretches tile the times after the first in-sample stretch.

Point in time: each replay (every in-sample trial and every out-of-sample stretch) is a fresh paper account starting
flat with the starting cash, whose decisions read only what was known at each time (the cursor reads bars and news
from before a window's first time, as the live flow would). The out-of-sample stretches do not carry positions or the
team's memory over: their bar returns are chained into one curve (``chain_stretches``), as the SMA walk-forward does.

Recorded (``record_team_walk_forward``): ``audit.walk_forward_runs`` (strategy ``team``, the candidates as its grid,
the chained out-of-sample metrics, the page) and per window ``audit.walk_forward_windows`` with the chosen parameters
(``params``), every candidate's in-sample score (``candidates``) and the out-of-sample replay's run id
(``replay_run_id``; its decisions, orders and fills are in the audit under that run).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, text

from alphaloom.backtest.team_grid import TeamCandidate
from alphaloom.backtest.walkforward import OBJECTIVES, WalkForwardResult
from alphaloom.backtest.walkforward_page import write_walk_forward_page
from alphaloom.domain import bar_close, shift_bars
from alphaloom.errors import DataUnavailableError
from alphaloom.records.walk_forward import insert_walk_forward_run, insert_windows
from alphaloom.reporting.performance import Metrics
from alphaloom.settings import Settings


@dataclass(frozen=True)
class TeamWalkForwardSpec:
    """What a team walk-forward is asked: symbols, bar range (``start <= ts < end``, either open), the candidates,
    window sizes in decision times, the in-sample objective and the fill mode of every replay."""

    symbols: list[str]
    candidates: list[TeamCandidate]
    in_sample: int = 168
    out_sample: int = 48
    objective: str = "total_return"
    fill_at: str = "next_open"
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.in_sample < 2 or self.out_sample < 2:
            raise ValueError(f"in_sample and out_sample must be at least 2 bars, got {self.in_sample} and "
                             f"{self.out_sample}")  # fmt: skip
        if not self.candidates:
            raise ValueError("the team grid is empty")

    def parameters(self) -> dict[str, object]:
        """JSON-ready, for ``audit.runs.parameters``."""
        return {"strategy": "team", "symbols": self.symbols, "candidates": [c.as_dict() for c in self.candidates],
                "in_sample": self.in_sample, "out_sample": self.out_sample, "objective": self.objective,
                "fill_at": self.fill_at, "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None}  # fmt: skip


@dataclass(frozen=True)
class TeamWindow:
    """One window: its number (from 1) and its in-sample and out-of-sample decision times."""

    number: int
    in_sample: list[datetime]
    out_of_sample: list[datetime]


def rolling_windows(times: list[datetime], in_sample: int, out_sample: int) -> list[TeamWindow]:
    """The windows over ``times`` (see the module docstring); ``ValueError`` when not even one fits."""
    if len(times) < in_sample + out_sample:
        raise ValueError(f"{len(times)} decision times cannot hold one window of {in_sample} + {out_sample}")
    return [TeamWindow(n, times[first : first + in_sample], times[first + in_sample : first + in_sample + out_sample])
            for n, first in enumerate(range(0, len(times) - in_sample - out_sample + 1, out_sample), start=1)]  # fmt: skip


def stored_decision_times(
    conn: Connection, settings: Settings, symbols: list[str], start: datetime | None, end: datetime | None
) -> list[datetime]:
    """Every bar close from that of the oldest stored bar of ``symbols`` with ``start <= ts < end`` to that of the
    newest, oldest first, on the timeframe's grid without gaps (as ``alphaloom backtest`` decides: a decision at a
    bar's close reads that bar; a time with no new bar decides on what was known then)."""
    first, last = conn.execute(
        text("""select min(ts), max(ts) from raw.ohlcv where exchange = :e and timeframe = :tf and symbol = any(:s)
                and (cast(:start as timestamptz) is null or ts >= :start)
                and (cast(:end as timestamptz) is null or ts < :end)"""),
        {"e": settings.exchange, "tf": settings.timeframe, "s": symbols, "start": start, "end": end},
    ).one()  # fmt: skip
    if first is None:
        raise DataUnavailableError(f"no bars stored for {symbols} on {settings.exchange} {settings.timeframe} in range")
    times, at = [], bar_close(first, settings.timeframe)
    while at <= bar_close(last, settings.timeframe):
        times.append(at)
        at = shift_bars(at, settings.timeframe, 1)
    return times


def objective_score(metrics: Metrics, objective: str) -> float:
    """The in-sample objective of a replay's metrics."""
    return float(getattr(metrics, objective))


def best_candidate(scores: dict[TeamCandidate, float], candidates: list[TeamCandidate]) -> TeamCandidate:
    """The best score, the first in grid order on ties; a non-finite score (no trades: no Sharpe) ranks last."""
    return max(candidates, key=lambda c: scores[c] if math.isfinite(scores[c]) else -math.inf)


def write_team_page(
    result: WalkForwardResult, spec: TeamWalkForwardSpec, settings: Settings, run_id: str, contribution: str = ""
) -> Path:
    """``<home>/reports/<run_id>/walk_forward.html``, the SMA walk-forward's page with the team's choices and
    ``contribution``, the analysts' out-of-sample contribution card (``alphaloom.reporting.agent_contribution``)."""
    setup = {"run id": run_id, "exchange / timeframe": f"{settings.exchange} / {settings.timeframe}",
             "symbols": ", ".join(spec.symbols), "objective (in sample)": spec.objective,
             "in-sample decision times": spec.in_sample, "out-of-sample decision times (and step)": spec.out_sample,
             "candidates tried": len(spec.candidates),
             "candidates": "; ".join(c.label() for c in spec.candidates), "fills": spec.fill_at,
             "costs": f"fee {settings.paper.fee_bps} bps, slippage {settings.paper.slippage_bps} bps, "
                      f"starting cash {settings.starting_cash}"}  # fmt: skip
    notes = ["Each window's choice and every trial were replayed with the live decision code (point in time) on a "
             "fresh paper account, without the LLM analyst; the out-of-sample stretches do not carry positions or the "
             "team's memory over.",
             "Out-of-sample replays are audited in full under their own backtest run (see the windows' replay run "
             "ids; `alphaloom report RUN_ID` writes one's report); trade statistics count closed trades only."]  # fmt: skip
    return write_walk_forward_page(result, settings.home / "reports" / run_id,
                                   title=f"Walk-forward of the team: {', '.join(spec.symbols)}",
                                   objective=spec.objective, setup=setup, notes=notes,
                                   sections_html=[contribution] if contribution else [])  # fmt: skip


def _finite(value: object) -> object:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def record_team_walk_forward(
    conn: Connection, run_id: str, spec: TeamWalkForwardSpec, settings: Settings, result: WalkForwardResult,
    page: Path | None,
) -> None:  # fmt: skip
    """Write the run's results (see the module docstring); the ``audit.runs`` row must exist."""
    metrics = {k: _finite(v) for k, v in result.out_of_sample.as_dict().items()}
    insert_walk_forward_run(
        conn, run_id, strategy="team", exchange=settings.exchange, timeframe=settings.timeframe, symbols=spec.symbols,
        objective=spec.objective, in_sample=spec.in_sample, out_sample=spec.out_sample,
        grid_json=json.dumps([c.as_dict() for c in spec.candidates]), metrics_json=json.dumps(metrics),
        page=str(page) if page else None,
    )  # fmt: skip
    rows = [
        (run_id, n, *(pd.Timestamp(w[k]).to_pydatetime() for k in ("in_sample_start", "in_sample_end",
                                                                    "out_of_sample_start", "out_of_sample_end")),
         json.dumps(w["params"]), json.dumps({k: _finite(v) for k, v in w["candidates"].items()}), w["replay_run_id"],
         _finite(float(w[f"in_sample_{spec.objective}"])), _finite(float(w[f"out_of_sample_{spec.objective}"])),
         float(w["out_of_sample_return"]), int(w["out_of_sample_fills"]))
        for n, w in enumerate(result.windows.to_dict("records"), start=1)
    ]  # fmt: skip
    insert_windows(conn,
                ("run_id", "window_no", "in_sample_start", "in_sample_end", "out_of_sample_start", "out_of_sample_end",
                 "params", "candidates", "replay_run_id", "in_sample_score", "out_of_sample_score",
                 "out_of_sample_return", "out_of_sample_fills"), rows)  # fmt: skip
