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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from alphaloom.backtest.bar_frames import price_frames
from alphaloom.backtest.walkforward import (
    Costs,
    WalkForwardResult,
    WindowInput,
    parameter_grid,
    sweep_pieces,
    walk_forward,
    warmup_bars,
    window_input,
    window_slices,
)
from alphaloom.backtest.walkforward_bars import SWEEP_BARS, read_bar_columns
from alphaloom.backtest.walkforward_page import write_walk_forward_page
from alphaloom.domain import timeframe_delta
from alphaloom.errors import DataUnavailableError
from alphaloom.markets import market_specs
from alphaloom.records.walk_forward import insert_walk_forward_run, insert_windows
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


def _costs(conn: Connection, settings: Settings, symbols: list[str]) -> Costs:
    """The settings' paper fees, slippage, order notional and starting cash, in each market's quantity step
    (``alphaloom.markets``: venue metadata, else configuration)."""
    markets = market_specs(conn, exchange=settings.exchange, symbols=symbols, asset_classes=settings.asset_classes,
                           quantity_steps=settings.quantity_steps)  # fmt: skip
    return Costs(initial_cash=float(settings.starting_cash), order_notional=settings.order_notional,
                 fee_bps=float(settings.paper.fee_bps), slippage_bps=float(settings.paper.slippage_bps),
                 quantity_steps={s: m.quantity_step for s, m in markets.items()})  # fmt: skip


def _periods_per_year(settings: Settings) -> float:
    return pd.Timedelta(days=365) / timeframe_delta(settings.timeframe)


def walk_forward_arguments(conn: Connection, settings: Settings, spec: WalkForwardSpec) -> dict[str, Any]:
    """The keyword arguments of ``walk_forward`` for ``spec``: the stored bars of the settings' exchange and timeframe,
    the grid, windows and objective, and the costs (``_costs``)."""
    open_, close = price_frames(conn, exchange=settings.exchange, timeframe=settings.timeframe, symbols=spec.symbols,
                                start=spec.start, end=spec.end)  # fmt: skip
    return {"open_": open_, "close": close, "grid": spec.grid, "in_sample": spec.in_sample,
            "out_sample": spec.out_sample, "costs": _costs(conn, settings, [str(c) for c in close.columns]),
            "objective": spec.objective, "periods_per_year": _periods_per_year(settings)}  # fmt: skip


@dataclass(frozen=True)
class WindowSpec:
    """One walk-forward window as a few values, to send to another process instead of its bars: which stored bars
    to load (``start <= ts < end``: the window and up to ``warmup`` bars before it, ``bars`` rows in all, the columns
    ``symbols`` in the whole run's order) and how to run them. ``load_window`` turns it into the ``WindowInput`` that
    ``window_inputs`` makes from the whole history, exactly. ``sweep`` names the run's windows (made afresh by each
    ``window_specs``): a process reads the bars of one sweep once (``walkforward_bars.SweepBars``); empty, the window
    reads its own bars."""

    exchange: str
    timeframe: str
    symbols: list[str]
    start: datetime
    end: datetime | None
    bars: int
    warmup: int
    grid: list[tuple[int, int]]
    in_sample: int
    costs: Costs
    periods_per_year: float
    objective: str
    step: pd.Timedelta
    sweep: str = ""


def _bar_times(conn: Connection, settings: Settings, spec: WalkForwardSpec) -> tuple[list[datetime], list[str]]:
    """The times of the stored bars of ``spec`` (any of its symbols) in order, and the symbols with a bar, sorted as
    ``price_frames`` orders its columns. Raises ``DataUnavailableError`` when there is none."""
    params = {"e": settings.exchange, "tf": settings.timeframe, "s": spec.symbols, "start": spec.start, "end": spec.end}
    where = """exchange = :e and timeframe = :tf and symbol = any(:s)
               and (cast(:start as timestamptz) is null or ts >= :start) and (cast(:end as timestamptz) is null or ts < :end)"""  # fmt: skip
    times = conn.execute(text(f"select distinct ts from raw.ohlcv where {where} order by ts"), params).scalars().all()
    if not times:
        raise DataUnavailableError(f"no {settings.timeframe} bars for {spec.symbols} on {settings.exchange} in "
                                   f"[{spec.start}, {spec.end})")  # fmt: skip
    symbols = conn.execute(text(f"select distinct symbol from raw.ohlcv where {where}"), params).scalars().all()
    return [pd.Timestamp(t).tz_convert("UTC").to_pydatetime() for t in times], sorted(symbols)


def window_specs(conn: Connection, settings: Settings, spec: WalkForwardSpec) -> list[WindowSpec]:
    """The windows of ``spec``'s walk-forward as ``WindowSpec``, in order, from the times of its stored bars (the bars
    themselves are read by whoever runs each window). Raises ``ValueError`` (bad windows or grid) or
    ``DataUnavailableError`` (no bars)."""
    times, symbols = _bar_times(conn, settings, spec)
    grid = spec.grid
    slices = window_slices(len(times), grid=grid, in_sample=spec.in_sample, out_sample=spec.out_sample,
                           objective=spec.objective)  # fmt: skip
    costs, periods_per_year, warmup = _costs(conn, settings, symbols), _periods_per_year(settings), warmup_bars(grid)
    step = pd.Timestamp(times[1]) - pd.Timestamp(times[0])
    sweep = uuid.uuid4().hex  # this run's windows: the bars a process reads for them serve no other run
    specs = []
    for rows in slices:
        first = max(0, rows.start - warmup)
        specs.append(WindowSpec(settings.exchange, settings.timeframe, symbols, times[first],
                                times[rows.stop] if rows.stop < len(times) else spec.end, rows.stop - first,
                                rows.start - first, grid, spec.in_sample, costs, periods_per_year, spec.objective,
                                step, sweep))  # fmt: skip
    return specs


def load_window(conn: Connection, window: WindowSpec) -> WindowInput:
    """The ``WindowInput`` of ``window``: its stored bars read here (``walkforward_bars``: what this process has not
    read yet of the window's sweep), its targets computed here. Raises ``DataUnavailableError`` when the stored bars
    are not the ones the window was cut from."""
    where = {"exchange": window.exchange, "timeframe": window.timeframe, "symbols": window.symbols,
             "start": window.start, "end": window.end}  # fmt: skip
    if window.sweep:
        open_, close = SWEEP_BARS.window_frames(conn, sweep=window.sweep, **where)
    else:
        open_, close = read_bar_columns(conn, **where)
    return _window_input(window, open_, close)


def _window_input(window: WindowSpec, open_: pd.DataFrame, close: pd.DataFrame) -> WindowInput:
    if len(close) != window.bars:
        raise DataUnavailableError(f"the window from {window.start} has {len(close)} stored bars, not {window.bars}: "
                                   "the bars changed during the run")  # fmt: skip
    return window_input(open_, close, warmup=window.warmup, grid=window.grid, in_sample=window.in_sample,
                        costs=window.costs, periods_per_year=window.periods_per_year, objective=window.objective)  # fmt: skip


@dataclass(frozen=True)
class PieceSpec:
    """One piece of a sweep's bars, ``start <= ts < end`` (``end`` None: open), to read on a worker (``read_piece``)
    and hand to the blocks of windows that span it (``block_pieces``, ``window_from_pieces``)."""

    sweep: str
    exchange: str
    timeframe: str
    symbols: list[str]
    start: datetime
    end: datetime | None


def _out_sample(window: WindowSpec) -> int:
    """The window's out-of-sample bars: window ``k`` of a sweep trades from row ``k * out_sample`` of the sweep's bars
    (``window_slices``) and reads the ``warmup`` bars before it."""
    return window.bars - window.warmup - window.in_sample


def piece_specs(windows: Sequence[WindowSpec], parts: int) -> list[PieceSpec]:
    """The bars of a sweep's ``windows`` (in order: ``window_specs``) cut at window starts into at most ``parts``
    pieces of near-equal length (``sweep_pieces``), each bar in exactly one piece."""
    if not windows:
        return []
    starts = [k * _out_sample(window) - window.warmup for k, window in enumerate(windows)]
    stop = starts[-1] + windows[-1].bars
    start_of = dict(zip(starts, windows, strict=True))
    first = windows[0]
    pieces = sweep_pieces(starts, stop, parts)
    return [PieceSpec(first.sweep, first.exchange, first.timeframe, first.symbols, start_of[rows.start].start,
                      start_of[rows.stop].start if rows.stop in start_of else windows[-1].end)
            for rows in pieces]  # fmt: skip


def _before(a: datetime | None, b: datetime | None) -> bool:
    """``a < b`` for range ends, None being the open end (after every time)."""
    return b is None if a is None else b is None or a < b


def block_pieces(pieces: Sequence[PieceSpec], windows: Sequence[WindowSpec]) -> list[int]:
    """The positions in ``pieces`` (in order, as ``piece_specs`` makes them) of those holding bars of the consecutive
    ``windows``: the pieces their span ``[first's start, last's end)`` overlaps."""
    start, end = windows[0].start, windows[-1].end
    return [n for n, piece in enumerate(pieces) if _before(piece.start, end) and _before(start, piece.end)]


def read_piece(conn: Connection, piece: PieceSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(open, close) of ``piece``'s stored bars, read on ``conn`` where this process has not read them yet for the
    piece's sweep (``walkforward_bars.SWEEP_BARS``: counted in its ``bars_read``)."""
    return SWEEP_BARS.window_frames(conn, sweep=piece.sweep, exchange=piece.exchange, timeframe=piece.timeframe,
                                    symbols=piece.symbols, start=piece.start, end=piece.end)  # fmt: skip


def join_pieces(pieces: Sequence[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(open, close) of consecutive pieces of a sweep's bars (``read_piece``, in order) as one pair of frames."""
    if len(pieces) == 1:
        return pieces[0]
    return pd.concat([o for o, _ in pieces]), pd.concat([c for _, c in pieces])


def window_from_bars(window: WindowSpec, open_: pd.DataFrame, close: pd.DataFrame) -> WindowInput:
    """The ``WindowInput`` of ``window`` cut from bars of its sweep that hold its span (``join_pieces``): the same
    frames, to the bit, as ``load_window`` reads. Raises ``DataUnavailableError`` when the bars are not the ones the
    window was cut from."""
    first = close.index.searchsorted(pd.Timestamp(window.start))
    stop = len(close) if window.end is None else close.index.searchsorted(pd.Timestamp(window.end))
    return _window_input(window, open_.iloc[first:stop], close.iloc[first:stop])


def read_block(conn: Connection, windows: Sequence[WindowSpec]) -> None:
    """Read, in one query, the stored bars of consecutive windows of one sweep (from the first's start to the last's
    end) into what this process holds of the sweep (``walkforward_bars.SWEEP_BARS``), so that ``load_window`` of each
    of them reads nothing more; nothing for windows without a sweep."""
    if not windows or not windows[0].sweep:
        return
    first, last = windows[0], windows[-1]
    SWEEP_BARS.window_frames(conn, sweep=first.sweep, exchange=first.exchange, timeframe=first.timeframe,
                             symbols=first.symbols, start=first.start, end=last.end)  # fmt: skip


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
             "costs": f"fee {settings.paper.fee_bps} bps, slippage {settings.paper.slippage_bps} bps, "
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
    insert_walk_forward_run(
        conn, run_id, strategy=None, exchange=settings.exchange, timeframe=settings.timeframe, symbols=spec.symbols,
        objective=spec.objective, in_sample=spec.in_sample, out_sample=spec.out_sample,
        grid_json=json.dumps([list(p) for p in spec.grid]), metrics_json=json.dumps(metrics),
        page=str(page) if page else None,
    )  # fmt: skip
    rows = [
        (run_id, n, *(pd.Timestamp(w[k]).to_pydatetime() for k in ("in_sample_start", "in_sample_end",
                                                                    "out_of_sample_start", "out_of_sample_end")),
         int(w["fast"]), int(w["slow"]), _finite(float(w[f"in_sample_{spec.objective}"])),
         _finite(float(w[f"out_of_sample_{spec.objective}"])), float(w["out_of_sample_return"]),
         int(w["out_of_sample_fills"]))
        for n, w in enumerate(result.windows.to_dict("records"), start=1)
    ]  # fmt: skip
    insert_windows(conn,
                ("run_id", "window_no", "in_sample_start", "in_sample_end", "out_of_sample_start", "out_of_sample_end",
                 "fast", "slow", "in_sample_score", "out_of_sample_score", "out_of_sample_return",
                 "out_of_sample_fills"), rows)  # fmt: skip
