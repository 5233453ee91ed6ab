"""Benchmark: the feature marts (dbt) against one plain SQL window pass, and the incremental refresh.

On a throwaway database of the server in force (embedded, or ALPHALOOM_DATABASE_URL), with S symbols x N daily bars in
raw.ohlcv, all in one run:
  (a) baseline: one plain SQL window pass computing the return, 20-bar SMA and standard deviation over raw.ohlcv;
  (b) full build of the feature marts (`dbt run --full-refresh`): the sum of the models' own execution times from
      dbt's run_results.json, so dbt's start-up (parse, connections, on-run-start) is not counted;
  (c) incremental refresh after one new bar per symbol (`dbt run`), timed the same way.
Prints the ratios b/a (goal <= 5) and c/b (goal <= 0.05).

marts.correlations grows with the square of the universe: `--correlation-symbols K` limits it to K symbols
(default 50; 0 for every symbol). Usage: python bench/features.py [--symbols 800] [--bars 3300]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from _throwaway import create_throwaway_database, drop_throwaway_database
from sqlalchemy import text

from alphaloom.db.engine import dispose_engines, get_engine, libpq_url
from alphaloom.features.dbt_runner import run_dbt
from alphaloom.settings import get_settings

START = datetime(2015, 1, 1, tzinfo=UTC)
RUN_ID = "bench-features"

BASELINE = """
create temporary table bench_baseline as
select exchange, symbol, timeframe, ts,
       close::double precision / lag(close::double precision) over series - 1 as ret_1,
       avg(close::double precision) over last_20 as sma_20,
       stddev_samp(close::double precision) over last_20 as stddev_20
from raw.ohlcv
window series as (partition by exchange, symbol, timeframe order by ts),
       last_20 as (partition by exchange, symbol, timeframe order by ts rows between 19 preceding and current row)
"""


def _symbol(s: int) -> str:
    return f"S{s:04d}/USD"


def _copy_bars(conn: psycopg.Connection, symbols: int, first_bar: int, bars: int, seed: int) -> None:
    """COPY `bars` daily bars per symbol starting at bar index `first_bar` (a random walk per symbol)."""
    rng = np.random.default_rng(seed)
    buffer = io.StringIO()
    for s in range(symbols):
        close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.02, bars))), 6)
        spread = np.round(close * rng.uniform(0, 0.01, bars), 6)
        volume = np.round(rng.uniform(1, 1000, bars), 3)
        for k in range(bars):
            ts = (START + timedelta(days=first_bar + k)).isoformat()
            c, sp = close[k], spread[k]
            buffer.write(f"bench\t{_symbol(s)}\t1d\t{ts}\t{c}\t{c + sp:.6f}\t{max(c - sp, 1e-6):.6f}\t{c}\t{volume[k]}\t"
                         f"{RUN_ID}\n")  # fmt: skip
    buffer.seek(0)
    with conn.cursor().copy(
        "copy raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) from stdin"
    ) as copy:
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)


def _model_seconds(target: Path) -> dict[str, float]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"]: float(r["execution_time"]) for r in results if r["unique_id"].startswith("model.")}


def _load() -> str:
    """The machine's load averages (1, 5, 15 minutes): timings on a shared machine mean little without them."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(symbols: int, bars: int, correlation_symbols: int) -> tuple[float, float]:
    load_before = _load()
    url = create_throwaway_database()
    previous = os.environ.get("ALPHALOOM_DATABASE_URL")
    os.environ["ALPHALOOM_DATABASE_URL"] = libpq_url(url)
    get_settings.cache_clear()
    universe = [_symbol(s) for s in range(min(correlation_symbols, symbols))] if correlation_symbols else []
    dbt_vars = json.dumps({"benchmark_symbol": _symbol(0), "correlation_symbols": universe})
    try:
        engine = get_engine()  # migrates the throwaway database
        with engine.begin() as conn:
            conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'bench')"), {"r": RUN_ID})
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            version = conn.execute("show server_version").fetchone()[0]
            _copy_bars(conn, symbols, 0, bars, seed=1)
            conn.execute("vacuum analyze raw.ohlcv")
            started = time.perf_counter()
            conn.execute(BASELINE)
            baseline = time.perf_counter() - started
            conn.execute("drop table bench_baseline")
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "target"
            run_dbt(["run", "--full-refresh", "--vars", dbt_vars], target_path=target)
            full = _model_seconds(target)
            with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                conn.execute("vacuum analyze marts.features")  # as autovacuum would after a bulk load
                _copy_bars(conn, symbols, bars, 1, seed=2)
            run_dbt(["run", "--vars", dbt_vars], target_path=target)
            incremental = _model_seconds(target)
            with engine.connect() as conn:
                stored = conn.execute(text("select count(*) from marts.features")).scalar_one()
        assert stored == symbols * (bars + 1), stored
    finally:
        dispose_engines()
        if previous is None:
            os.environ.pop("ALPHALOOM_DATABASE_URL", None)
        else:
            os.environ["ALPHALOOM_DATABASE_URL"] = previous
        get_settings.cache_clear()
        drop_throwaway_database(url)

    b, c = sum(full.values()), sum(incremental.values())
    print(f"rows: {symbols * bars:,} ({symbols} symbols x {bars} daily bars); correlation universe: "
          f"{len(universe) or symbols} symbols")  # fmt: skip
    host = url.host or url.query.get("host", "local socket")
    print(f"server: PostgreSQL {version} at {host}; load average (1/5/15 min) {load_before} before, {_load()} after")
    print(f"(a) baseline window pass (return, SMA 20, stddev 20): {baseline:8.2f} s")
    print(f"(b) full build of the feature marts (models' own time): {b:8.2f} s")
    for node, seconds in sorted(full.items(), key=lambda kv: -kv[1]):
        print(f"      {node:<45} {seconds:8.2f} s  (incremental: {incremental.get(node, 0.0):.2f} s)")
    print(f"(c) incremental refresh, one new bar per symbol:       {c:8.2f} s")
    print(f"ratio b/a: {b / baseline:.2f} (goal <= 5)")
    print(f"ratio c/b: {c / b:.3f} (goal <= 0.05)")
    return b / baseline, c / b


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=800)
    parser.add_argument("--bars", type=int, default=3300)
    parser.add_argument("--correlation-symbols", type=int, default=50)
    args = parser.parse_args()
    main(args.symbols, args.bars, args.correlation_symbols)
