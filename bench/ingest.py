"""Benchmark: our price ingest (read + validate + COPY into a temp table + merge) vs a raw psycopg COPY.

Both load the same CSV file of N bars into tables with the same columns and primary key, in one run, on a throwaway
database of the server in force (embedded, or ALPHALOOM_DATABASE_URL). Ours is timed after reading a 100-row file first (a
warm-up that a long-running ingest worker has behind it). Prints rows/s for each and the ratio
ours/raw (goal >= 0.5). Usage: python bench/ingest.py [--rows 1000000] [--quality]

``--quality`` also times the Great Expectations gate the flows run on each batch (after a warm-up that pays GX's import
and context setup), and prints the ratio with it included. The default run leaves it out, as the plain file path
(``read_price_file`` + ``merge_bars``) does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from _throwaway import create_throwaway_database, drop_throwaway_database
from sqlalchemy import create_engine, text

from alphaloom.db.engine import libpq_url
from alphaloom.db.migrate import upgrade
from alphaloom.ingest.prices import merge_bars, read_price_file
from alphaloom.records.runs import start_run

RAW_TABLE = """
create table bench_raw_copy (
    exchange text not null, symbol text not null, timeframe text not null, ts timestamptz not null,
    open numeric not null, high numeric not null, low numeric not null, close numeric not null, volume numeric not null,
    run_id text not null default 'bench', ingested_at timestamptz not null default now(),
    primary key (exchange, symbol, timeframe, ts)
)
"""


def write_bars(path: Path, rows: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    symbols = max(1, rows // 10_000)
    per_symbol = -(-rows // symbols)
    frames = []
    for s in range(symbols):
        n = min(per_symbol, rows - s * per_symbol)
        if n <= 0:
            break
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.concatenate([[100.0], close[:-1]])
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
        frames.append(
            pd.DataFrame(
                {
                    "exchange": "bench",
                    "symbol": f"S{s:04d}/USD",
                    "timeframe": "1h",
                    "ts": pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "open": np.round(open_, 6),
                    "high": np.round(high, 6),
                    "low": np.round(low, 6),
                    "close": np.round(close, 6),
                    "volume": np.round(rng.uniform(1, 1000, n), 3),
                }
            )
        )
    pd.concat(frames).to_csv(path, index=False)


def main(rows: int, quality: bool = False) -> float:
    url = create_throwaway_database()
    engine = create_engine(url)
    try:
        upgrade(engine)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bars.csv"
            write_bars(path, rows)

            with psycopg.connect(libpq_url(url)) as conn:
                conn.execute(RAW_TABLE)
                conn.commit()
                start = time.perf_counter()
                with (
                    conn.cursor() as cur,
                    path.open("rb") as fh,
                    cur.copy(
                        "copy bench_raw_copy (exchange, symbol, timeframe, ts, open, high, low, close, volume) "
                        "from stdin (format csv, header true)"
                    ) as copy,
                ):
                    while chunk := fh.read(1 << 20):
                        copy.write(chunk)
                conn.commit()
                raw_seconds = time.perf_counter() - start

            run_id = start_run(engine, "bench_ingest", {"rows": rows})
            # Warm-up: the first read in a process pays one-off costs (pandas/pyarrow lazy imports and kernels) that a
            # long-running ingest worker pays once; reading and validating a 100-row file takes them here.
            warm = Path(tmp) / "warm.csv"
            write_bars(warm, 100, seed=2)
            read_price_file(warm)
            start = time.perf_counter()
            batch = read_price_file(path)
            with engine.begin() as conn:
                result = merge_bars(conn, batch, run_id)
            ours_seconds = time.perf_counter() - start
            gx_seconds = _time_quality_gate(batch, Path(tmp)) if quality else None
            with engine.connect() as conn:
                stored = conn.execute(text("select count(*) from raw.ohlcv")).scalar_one()
        assert result.inserted == rows == stored, (result, rows, stored)
    finally:
        engine.dispose()
        drop_throwaway_database(url)

    raw_rate, ours_rate = rows / raw_seconds, rows / ours_seconds
    ratio = ours_rate / raw_rate
    print(f"rows: {rows:,}")
    print(f"raw psycopg COPY (same file, same key): {raw_seconds:7.2f} s  {raw_rate:12,.0f} rows/s")
    print(f"AlphaLoom ingest (read+validate+merge): {ours_seconds:7.2f} s  {ours_rate:12,.0f} rows/s")
    print(f"ratio ours/raw: {ratio:.2f} (goal >= 0.5)")
    if gx_seconds is not None:
        print(f"GX quality gate (prices suite, same batch): {gx_seconds:7.2f} s  {rows / gx_seconds:12,.0f} rows/s")
        print(f"ratio ours+quality/raw: {raw_seconds / (ours_seconds + gx_seconds):.2f}")
    return ratio


def _time_quality_gate(batch, home: Path) -> float:
    from alphaloom.ingest.prices import PriceBatch
    from alphaloom.quality.quality_gate import QualityGate

    gate = QualityGate(home / "home")
    warm = time.perf_counter()
    gate.check_prices(PriceBatch(batch.source, batch.table.slice(0, 10)))
    print(f"GX warm-up (import, context, first checkpoint): {time.perf_counter() - warm:.2f} s")
    start = time.perf_counter()
    gate.check_prices(batch)
    return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quality", action="store_true", help="also time the GX quality gate on the same batch")
    args = parser.parse_args()
    main(args.rows, args.quality)
