"""A walk-forward run over stored bars, shared by ``alphaloom walk-forward`` and the ``walk_forward`` flow: read the
bars (``price_frames``), run ``alphaloom.backtest.walkforward`` with the paper costs of the settings, write its page
(``alphaloom.backtest.walkforward_page``) and record the results under the run's id.

What is recorded (``record_walk_forward``): ``audit.walk_forward_runs`` (setup, metrics of the chained out-of-sample
curve, page path) and ``audit.walk_forward_windows`` (per window: the in-sample choice and score, and the
out-of-sample score, return and fills). Non-finite metrics (an infinite profit factor) are stored as null.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from alphaloom.backtest.prices import price_frames
from alphaloom.backtest.walkforward import Costs, WalkForwardResult, parameter_grid, walk_forward
from alphaloom.backtest.walkforward_page import write_walk_forward_page
from alphaloom.db.batch import insert_rows
from alphaloom.domain import timeframe_delta
from alphaloom.markets import market_specs
from alphaloom.settings import Settings


@dataclass(frozen=True)
class WalkForwardSpec:
    """What a walk-forward run is asked: symbols, bar range (``start <= ts < end``, either open), the SMA lengths to
    try, window sizes in bars and the in-sample objective."""

    symbols: list[str]
    fasts: list[int] = field(default_factory=lambda: [5, 10, 20])
    slows: list[int] = field(default_factory=lambda: [30, 50, 100])
    in_sample: int = 720
    out_sample: int = 168
    objective: str = "total_return"
    start: datetime | None = None
    end: datetime | None = None

    @property
    def grid(self) -> list[tuple[int, int]]:
        return parameter_grid(self.fasts, self.slows)

    def parameters(self) -> dict[str, object]:
        """JSON-ready, for ``audit.runs.parameters``."""
        return {"symbols": self.symbols, "fast": self.fasts, "slow": self.slows, "in_sample": self.in_sample,
                "out_sample": self.out_sample, "objective": self.objective,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None}  # fmt: skip


def walk_forward_arguments(conn: Connection, settings: Settings, spec: WalkForwardSpec) -> dict[str, Any]:
    """The keyword arguments of ``walk_forward`` for ``spec``: the stored bars of the settings' exchange and timeframe,
    the grid, windows and objective, and the settings' paper fees, slippage, order notional and starting cash, in each
    market's quantity step (``alphaloom.markets``: venue metadata, else configuration)."""
    open_, close = price_frames(conn, exchange=settings.exchange, timeframe=settings.timeframe, symbols=spec.symbols,
                                start=spec.start, end=spec.end)  # fmt: skip
    markets = market_specs(conn, exchange=settings.exchange, symbols=[str(c) for c in close.columns],
                           asset_classes=settings.asset_classes, quantity_steps=settings.quantity_steps)  # fmt: skip
    costs = Costs(initial_cash=float(settings.starting_cash), order_notional=settings.order_notional,
                  fee_bps=float(settings.paper_fee_bps), slippage_bps=float(settings.paper_slippage_bps),
                  quantity_steps={s: m.quantity_step for s, m in markets.items()})  # fmt: skip
    return {"open_": open_, "close": close, "grid": spec.grid, "in_sample": spec.in_sample,
            "out_sample": spec.out_sample, "costs": costs, "objective": spec.objective,
            "periods_per_year": pd.Timedelta(days=365) / timeframe_delta(settings.timeframe)}  # fmt: skip


def run_walk_forward(conn: Connection, settings: Settings, spec: WalkForwardSpec) -> WalkForwardResult:
    """The walk-forward of ``spec`` (``walk_forward_arguments``), its windows one after the other. Raises
    ``ValueError`` (bad windows or grid) or ``DataUnavailableError`` (no bars)."""
    return walk_forward(**walk_forward_arguments(conn, settings, spec))


def write_page(result: WalkForwardResult, spec: WalkForwardSpec, settings: Settings, run_id: str) -> Path:
    """``<home>/reports/<run_id>/walk_forward.html``."""
    setup = {"run id": run_id, "exchange / timeframe": f"{settings.exchange} / {settings.timeframe}",
             "symbols": ", ".join(spec.symbols), "objective (in sample)": spec.objective,
             "in-sample bars": spec.in_sample, "out-of-sample bars (and step)": spec.out_sample,
             "fast SMA tried": ", ".join(map(str, spec.fasts)), "slow SMA tried": ", ".join(map(str, spec.slows)),
             "pairs tried": len(spec.grid),
             "costs": f"fee {settings.paper_fee_bps} bps, slippage {settings.paper_slippage_bps} bps, "
                      f"order notional {settings.order_notional}, starting cash {settings.starting_cash}"}  # fmt: skip
    return write_walk_forward_page(result, settings.home / "reports" / run_id,
                                   title=f"Walk-forward of the SMA crossover: {', '.join(spec.symbols)}",
                                   objective=spec.objective, setup=setup)  # fmt: skip


def _finite(value: float | int) -> float | int | None:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def record_walk_forward(
    conn: Connection,
    run_id: str,
    spec: WalkForwardSpec,
    settings: Settings,
    result: WalkForwardResult,
    page: Path | None,
) -> None:
    """Write the run's results (see the module docstring); the ``audit.runs`` row must exist."""
    metrics = {k: _finite(v) for k, v in result.out_of_sample.as_dict().items()}
    conn.execute(
        text("""insert into audit.walk_forward_runs (run_id, exchange, timeframe, symbols, objective, in_sample_bars,
                                                     out_sample_bars, grid, metrics, page)
                values (:r, :e, :tf, :s, :o, :i, :oo, cast(:g as jsonb), cast(:m as jsonb), :p)"""),
        {"r": run_id, "e": settings.exchange, "tf": settings.timeframe, "s": spec.symbols, "o": spec.objective,
         "i": spec.in_sample, "oo": spec.out_sample, "g": json.dumps([list(p) for p in spec.grid]),
         "m": json.dumps(metrics), "p": str(page) if page else None},
    )  # fmt: skip
    rows = [
        (run_id, n, *(pd.Timestamp(w[k]).to_pydatetime() for k in ("in_sample_start", "in_sample_end",
                                                                    "out_of_sample_start", "out_of_sample_end")),
         int(w["fast"]), int(w["slow"]), _finite(float(w[f"in_sample_{spec.objective}"])),
         _finite(float(w[f"out_of_sample_{spec.objective}"])), float(w["out_of_sample_return"]),
         int(w["out_of_sample_fills"]))
        for n, w in enumerate(result.windows.to_dict("records"), start=1)
    ]  # fmt: skip
    insert_rows(conn, "audit.walk_forward_windows",
                ("run_id", "window_no", "in_sample_start", "in_sample_end", "out_of_sample_start", "out_of_sample_end",
                 "fast", "slow", "in_sample_score", "out_of_sample_score", "out_of_sample_return",
                 "out_of_sample_fills"), rows)  # fmt: skip
