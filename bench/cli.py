"""Benchmark: operator commands end to end, as the operator runs them (a fresh `alphaloom` process each time), on the
home and database in force (run `alphaloom demo` first; the embedded servers are started by the first command and
reused by the others).

Prints each command's wall time (median of --repeat runs) and exit code, then the goal line: `alphaloom decide
--symbols BTC/USDT --dry-run` with the servers up under 3 s, met or MISSED. The baseline measured in the same
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

GOAL = (["decide", "--symbols", "BTC/USDT", "--dry-run"], 3.0)  # seconds, end to end with the servers up (issue 15)
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
    medians: dict[str, float] = {}
    for args in COMMANDS:
        runs = [timed(args) for _ in range(options.repeat)]
        median = medians[" ".join(args)] = statistics.median(seconds for seconds, _ in runs)
        baseline = baseline or median
        print(
            f"{'alphaloom ' + ' '.join(args):<50} {median:6.2f} s  rc {runs[-1][1]}  ({median / baseline:.1f}x --help)"
        )
    args, goal = GOAL
    figure = medians[" ".join(args)]
    print(f"goal: alphaloom {' '.join(args)} {figure:.2f} s (median of {options.repeat}), goal < {goal:.1f} s: "
          f"{'met' if figure < goal else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
