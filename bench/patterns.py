"""Benchmark: what the pattern analyst adds to one symbol's pure decision step.

Times ``agents.deciding.decide_snapshot`` on a one-symbol snapshot whose bars are the 120 newest of a generated year
of hourly bars (``tests/support/patterns.py``), stepping one bar at a time, with the analyst voting
(``ALPHALOOM_PATTERN_WEIGHT`` 1) and without it (the baseline, measured in the same run on the same snapshots).
Prints ms per decision for both, the analyst's own ms per opinion, the ratio with/without, and whether the added time
meets the goal (at most ``GOAL_ADDED_MS`` per symbol and step: a year-long hourly backtest of 6 symbols then spends
under a minute in it).

``--before`` also times the step with the analyst as it was before it was made faster (the frozen copy in
``tests/agents/patterns/reference_patterns.py``, which gives the same opinions), in the same rounds: before and after
from one run. ``--repeat N`` runs the configurations N times, interleaved, and keeps the best of each (a shared
machine's load comes and goes); the load average is printed before and after. The goal is judged on wall-clock time;
the CPU time of the added step is printed beside it (it moves less with the machine's load).
Usage: python bench/patterns.py [--steps 2000] [--repeat 3] [--before]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

# The repository root ahead of tests/: tests/agents would otherwise be found as a namespace package ahead of ours.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.patterns import as_bars, hourly_year

import agents.deciding
from agents.deciding import decide_snapshot
from agents.memory import AgentWeight
from agents.params import DecisionParams
from agents.patterns.analyst import pattern_opinion
from agents.risk import PortfolioContext
from agents.risk.sizing import trade_stats
from agents.snapshot import AccountView, MarketView, Snapshot
from alphaloom.domain import decision_id_for
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import Settings

GOAL_ADDED_MS = 2.0
SYMBOL = "AAA/USDT"


def _snapshot(params: DecisionParams, bars, t: int) -> Snapshot:
    window = bars[max(0, t - 119) : t + 1]
    as_of = window[-1].ts + timedelta(hours=1)
    row = {"exchange": params.exchange, "timeframe": params.timeframe, "symbol": SYMBOL, "ts": window[-1].ts,
           "known_at": as_of, "dbt_invocation_id": "bench", "close": window[-1].close, "ema_10": 100.0,
           "ema_50": 100.0, "macd_hist": 0.0, "rsi_14": 50.0, "realized_vol_20": 0.01}  # fmt: skip
    market = MarketView({SYMBOL: row}, {SYMBOL: [b.close for b in window[-60:]]}, {SYMBOL: []}, {},
                        bars={SYMBOL: window} if params.strategy.bars_history else {})  # fmt: skip
    account = AccountView(
        KillSwitchState(False, "never engaged", ""),
        {SYMBOL: (Decimal(0), Decimal(0))},
        {a: AgentWeight(a, w, None, 0) for a, w in params.strategy.base_weights().items()},
        trade_stats([]),
        portfolio=PortfolioContext(equity=Decimal(100_000), peak_equity=Decimal(100_000)).prepared(),
    )
    ids = {SYMBOL: decision_id_for("bench", SYMBOL, params.timeframe, as_of, params.version)}
    return Snapshot("bench", as_of, (SYMBOL,), ids, frozenset(), market, account, "bench", None)


def _ms_per_decision(params: DecisionParams, snapshots: list[Snapshot]) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    for snapshot in snapshots:
        decide_snapshot(snapshot, params, run_id="bench")
    _CPU_MS[0] = (time.process_time() - cpu) * 1000 / len(snapshots)
    return (time.perf_counter() - start) * 1000 / len(snapshots)


def _ms_per_opinion(opinion: Callable[..., object], params: DecisionParams, snapshots: list[Snapshot]) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    for snapshot in snapshots:
        opinion(snapshot.market.bars[SYMBOL], SYMBOL, snapshot.as_of, params.strategy.patterns)
    _CPU_MS[0] = (time.process_time() - cpu) * 1000 / len(snapshots)
    return (time.perf_counter() - start) * 1000 / len(snapshots)


_CPU_MS = [0.0]
"""The CPU time (this process's) per decision or opinion of the last measure: on a shared machine it moves less
with the load than the wall-clock time the goal is judged on."""


@contextmanager
def _analyst(opinion: Callable[..., object]) -> Iterator[None]:
    """The decision step with ``opinion`` as its pattern analyst (the step reads it from its module when it runs)."""
    current = agents.deciding.pattern_opinion
    agents.deciding.pattern_opinion = opinion  # type: ignore[assignment]
    try:
        yield
    finally:
        agents.deciding.pattern_opinion = current


def _verdict(added: float) -> str:
    return f"{added:.3f} ms per decision (goal <= {GOAL_ADDED_MS:g}) {'met' if added <= GOAL_ADDED_MS else 'MISSED'}"


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1, help="rounds, interleaved; the best of each counts")
    parser.add_argument("--before", action="store_true", help="also the analyst as it was before it was made faster")
    args = parser.parse_args()
    if args.steps < 1 or args.repeat < 1:
        print(f"--steps and --repeat must be at least 1, got {args.steps} and {args.repeat}", file=sys.stderr)
        raise SystemExit(2)
    bars = as_bars(*hourly_year())
    first = 200
    times = list(range(first, min(len(bars), first + args.steps)))
    baseline = DecisionParams.from_settings(Settings(exchange="bench"))
    voting = DecisionParams.from_settings(Settings(exchange="bench", pattern_weight=1.0))
    plain = [_snapshot(baseline, bars, t) for t in times]
    with_bars = [_snapshot(voting, bars, t) for t in times]
    old_opinion = _reference_opinion() if args.before else None
    load_before = _load()
    _ms_per_decision(voting, with_bars[:20])  # warm-up
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(args.repeat):  # interleaved, the best of each: a shared machine's load comes and goes
        rounds = {"base": lambda: _ms_per_decision(baseline, plain), "ours": lambda: _ms_per_decision(voting, with_bars),
                  "opinion": lambda: _ms_per_opinion(pattern_opinion, voting, with_bars)}  # fmt: skip
        if old_opinion is not None:
            rounds["old"] = lambda: _old_ms(old_opinion, voting, with_bars)
            rounds["old opinion"] = lambda: _ms_per_opinion(old_opinion, voting, with_bars)
        for name, measure in rounds.items():
            best[name] = min(best.get(name, float("inf")), measure())
            cpu[name] = min(cpu.get(name, float("inf")), _CPU_MS[0])
    base_ms, ours_ms = best["base"], best["ours"]
    print(f"{len(times)} decisions of one symbol, 120 bars each; the best of {args.repeat} interleaved rounds; "
          f"load average (1/5/15 min) {load_before} before, {_load()} after")  # fmt: skip
    print(f"baseline (no pattern analyst): {base_ms:.3f} ms per decision")
    print(f"with the pattern analyst: {ours_ms:.3f} ms per decision; its opinion alone: {best['opinion']:.3f} ms")
    print(f"added: {_verdict(ours_ms - base_ms)}")
    print(f"ratio with/without: {ours_ms / base_ms:.2f}")
    print(f"added, CPU time: {cpu['ours'] - cpu['base']:.3f} ms per decision (baseline {cpu['base']:.3f} ms; "
          f"the opinion alone {cpu['opinion']:.3f} ms)")  # fmt: skip
    if old_opinion is not None:
        old_ms = best["old"]
        print(f"before (the analyst before it was made faster): {old_ms:.3f} ms per decision; "
              f"its opinion alone: {best['old opinion']:.3f} ms")  # fmt: skip
        print(f"before, added: {_verdict(old_ms - base_ms)}")
        print(f"before, added, CPU time: {cpu['old'] - cpu['base']:.3f} ms per decision "
              f"(the opinion alone {cpu['old opinion']:.3f} ms)")  # fmt: skip
        print(f"the analyst's opinion, before/after: {best['old opinion'] / best['opinion']:.1f}x faster "
              f"({cpu['old opinion'] / cpu['opinion']:.1f}x in CPU time)")  # fmt: skip


def _old_ms(opinion: Callable[..., object], params: DecisionParams, snapshots: list[Snapshot]) -> float:
    with _analyst(opinion):
        return _ms_per_decision(params, snapshots)


def _reference_opinion() -> Callable[..., object]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "agents" / "patterns"))
    from reference_patterns import pattern_opinion as old

    return old


if __name__ == "__main__":
    main()
