"""Benchmark: the console's Now page load time with demo data (issue 17: p50 over 20 loads).

On a throwaway database of the server in force: the demo pipeline (generated data, ingest, features, ``decide`` over
the last ``--steps`` bars, as ``alphaloom demo``), then the console served by uvicorn on 127.0.0.1 and the Now page
fetched ``--loads`` times over HTTP (after one warm-up load). Prints p50 and p99 in ms and, as a baseline measured in
the same run, the p50 of a static file (``/static/console.css``) from the same server, with the ratio.
Usage: python bench/console.py [--loads 20] [--steps 120]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import httpx
import numpy as np
from _throwaway import create_throwaway_database, drop_throwaway_database

from alphaloom.db.engine import dispose_engines, libpq_url


def _timed(client: httpx.Client, url: str, loads: int) -> list[float]:
    samples = []
    for _ in range(loads):
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return samples


def main(loads: int, steps: int) -> float:
    url = create_throwaway_database()
    os.environ["ALPHALOOM_DATABASE_URL"] = libpq_url(url)
    home = tempfile.mkdtemp(prefix="alphaloom-bench-console-")
    os.environ["ALPHALOOM_HOME"] = home
    try:
        import uvicorn
        from prefect.testing.utilities import prefect_test_harness

        from alphaloom.cli.console import build_console
        from alphaloom.db.engine import get_engine
        from alphaloom.ops.serve import free_port
        from alphaloom.settings import get_settings
        from flows.demo import run_demo

        get_settings.cache_clear()
        get_engine()  # migrates
        with prefect_test_harness(server_startup_timeout=120):
            demo = run_demo(steps)
        print(f"demo data: decisions {demo.decisions}")
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(build_console(get_settings(), "127.0.0.1"), host="127.0.0.1",
                                               port=port, log_level="warning"))  # fmt: skip
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)  # readiness
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _timed(client, "/", 1)
            now = _timed(client, "/", loads)
            static = _timed(client, "/static/console.css", loads)
        server.should_exit = True
        p50, p99, base = float(np.percentile(now, 50)), float(np.percentile(now, 99)), float(np.percentile(static, 50))
        print(f"Now page over {loads} loads: p50 {p50:.1f} ms, p99 {p99:.1f} ms; static file p50 {base:.1f} ms; "
              f"ratio {p50 / base:.1f}x")  # fmt: skip
        return p50
    finally:
        dispose_engines()
        drop_throwaway_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--steps", type=int, default=120)
    args = parser.parse_args()
    main(args.loads, args.steps)
