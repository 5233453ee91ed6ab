"""The walk-forward results' repository (``audit.walk_forward_runs``, ``audit.walk_forward_windows``): the statements
that record a walk-forward run under its ``audit.runs`` row (which must exist). Both take the caller's connection, so
a run and its windows are written in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.db.batch import insert_rows


def insert_walk_forward_run(
    conn: Connection, run_id: str, *, strategy: str | None, exchange: str, timeframe: str, symbols: Sequence[str],
    objective: str, in_sample: int, out_sample: int, grid_json: str, metrics_json: str, page: str | None,
) -> None:  # fmt: skip
    """One ``audit.walk_forward_runs`` row: the setup, the grid and out-of-sample metrics (JSON text) and the page.
    ``strategy`` None leaves the column's default (``sma_cross``)."""
    params = {"r": run_id, "e": exchange, "tf": timeframe, "s": list(symbols), "o": objective, "i": in_sample,
              "oo": out_sample, "g": grid_json, "m": metrics_json, "p": page}  # fmt: skip
    if strategy is None:
        conn.execute(
            text("""insert into audit.walk_forward_runs (run_id, exchange, timeframe, symbols, objective, in_sample_bars,
                                                         out_sample_bars, grid, metrics, page)
                    values (:r, :e, :tf, :s, :o, :i, :oo, cast(:g as jsonb), cast(:m as jsonb), :p)"""),
            params,
        )  # fmt: skip
        return
    conn.execute(
        text("""insert into audit.walk_forward_runs (run_id, strategy, exchange, timeframe, symbols, objective,
                                                     in_sample_bars, out_sample_bars, grid, metrics, page)
                values (:r, :st, :e, :tf, :s, :o, :i, :oo, cast(:g as jsonb), cast(:m as jsonb), :p)"""),
        {**params, "st": strategy},
    )  # fmt: skip


def insert_windows(conn: Connection, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """The run's ``audit.walk_forward_windows`` rows (tuples in ``columns`` order), in one batched statement."""
    insert_rows(conn, "audit.walk_forward_windows", columns, rows)
