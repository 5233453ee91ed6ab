"""Benchmark: what the pattern analyst adds to one symbol's pure decision step.

Times ``agents.deciding.decide_snapshot`` on a one-symbol snapshot whose bars are the 120 newest of a generated year
of hourly bars (``tests/support/patterns.py``), stepping one bar at a time, with the analyst voting
(``ALPHALOOM_PATTERN_WEIGHT`` 1) and without it (the baseline, measured in the same run on the same snapshots).
Prints ms per decision for both, the analyst's own ms per opinion, the ratio with/without, and whether the added time
meets the goal (at most ``GOAL_ADDED_MS`` per symbol and step: a year-long hourly backtest of 6 symbols then spends
under a minute in it). Usage: python bench/patterns.py [--steps 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

# The repository root ahead of tests/: tests/agents would otherwise be found as a namespace package ahead of ours.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.patterns import as_bars, hourly_year

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
        PortfolioContext(equity=Decimal(100_000), peak_equity=Decimal(100_000)).prepared(),
        {SYMBOL: (Decimal(0), Decimal(0))},
        {a: AgentWeight(a, w, None, 0) for a, w in params.strategy.base_weights().items()},
        trade_stats([]),
    )
    ids = {SYMBOL: decision_id_for("bench", SYMBOL, params.timeframe, as_of, params.version)}
    return Snapshot("bench", as_of, (SYMBOL,), ids, frozenset(), market, account, "bench", None)


def _ms_per_decision(params: DecisionParams, snapshots: list[Snapshot]) -> float:
    start = time.perf_counter()
    for snapshot in snapshots:
        decide_snapshot(snapshot, params, run_id="bench")
    return (time.perf_counter() - start) * 1000 / len(snapshots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    steps = parser.parse_args().steps
    bars = as_bars(*hourly_year())
    first = 200
    times = list(range(first, min(len(bars), first + steps)))
    baseline = DecisionParams.from_settings(Settings(exchange="bench"))
    voting = DecisionParams.from_settings(Settings(exchange="bench", pattern_weight=1.0))
    plain = [_snapshot(baseline, bars, t) for t in times]
    with_bars = [_snapshot(voting, bars, t) for t in times]
    _ms_per_decision(voting, with_bars[:20])  # warm-up
    base_ms = _ms_per_decision(baseline, plain)
    ours_ms = _ms_per_decision(voting, with_bars)
    start = time.perf_counter()
    for snapshot in with_bars:
        pattern_opinion(snapshot.market.bars[SYMBOL], SYMBOL, snapshot.as_of, voting.strategy.patterns)
    opinion_ms = (time.perf_counter() - start) * 1000 / len(with_bars)
    added = ours_ms - base_ms
    print(f"{len(times)} decisions of one symbol, 120 bars each")
    print(f"baseline (no pattern analyst): {base_ms:.3f} ms per decision")
    print(f"with the pattern analyst: {ours_ms:.3f} ms per decision; its opinion alone: {opinion_ms:.3f} ms")
    print(
        f"added: {added:.3f} ms per decision (goal <= {GOAL_ADDED_MS:g}) {'met' if added <= GOAL_ADDED_MS else 'MISSED'}"
    )
    print(f"ratio with/without: {ours_ms / base_ms:.2f}")


if __name__ == "__main__":
    main()
