"""Benchmark: operator commands end to end, as the operator runs them (a fresh `alphaloom` process each time), on the
home and database in force (run `alphaloom demo` first; the embedded servers are started by the first command and
reused by the others).

Prints each command's wall time (median of --repeat runs) and exit code; the goal for
`alphaloom decide --symbols BTC/USDT --dry-run` with the servers up is under 3 s. The baseline measured in the same
run is `alphaloom --help` (the interpreter and CLI start alone), so a slow machine shows as a high baseline too.
Usage: python bench/cli.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = [
    ["--help"],
    ["decide", "--symbols", "BTC/USDT", "--dry-run"],
    ["decide", "--steps", "0"],
    ["decide", "--symbols", "FOO/BAR"],
    ["runs"],
]


def timed(args: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "alphaloom.cli", *args], capture_output=True, timeout=600)
    return time.perf_counter() - started, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    timed(["decide", "--symbols", "BTC/USDT", "--dry-run"])  # warm: starts the embedded servers when down
    baseline = None
    for args in COMMANDS:
        runs = [timed(args) for _ in range(options.repeat)]
        median = statistics.median(seconds for seconds, _ in runs)
        baseline = baseline or median
        print(
            f"{'alphaloom ' + ' '.join(args):<50} {median:6.2f} s  rc {runs[-1][1]}  ({median / baseline:.1f}x --help)"
        )


if __name__ == "__main__":
    main()
