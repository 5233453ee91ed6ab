"""Benchmark: the per-symbol decision core, no model calls — features row -> signals (technical, news) -> consensus
-> trader intent -> risk (per-intent and portfolio checks: exposure, correlation cluster, VaR over 200 bars x 6
symbols; the correlation matrix is built once per step, as the decision flow does) -> risk checks recorded -> paper
order executed and recorded (orders, events, fills, position, cash, journal, durable paper venue), one transaction
per decision, on a throwaway database of the server in force.

Prints p50 and p99 of the core (goal: p50 < 5 ms) and, as a baseline measured in the same run, the p50 of a bare
one-row insert transaction on the same server, with the ratio core/baseline.
Usage: python bench/decision.py [--iterations 500]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from _throwaway import create_throwaway_database, drop_throwaway_database
from sqlalchemy import create_engine, text

from agents.consensus import consensus
from agents.news import news_opinion
from agents.recording import DecisionRow, record_decision
from agents.risk import PortfolioContext, RiskLimits, adjusted_intent, check_intent
from agents.risk.portfolio import returns_inputs
from agents.technical import technical_opinion
from agents.trader import order_intents
from alphaloom.db.migrate import upgrade
from alphaloom.domain import AccountId, Symbol, decision_id_for, quote_currency
from alphaloom.fx import QuoteRate
from alphaloom.guards import HardLimits
from alphaloom.markets import resolve
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import RiskSettings, Settings
from execution.accounts.registry import ensure_account
from execution.brokers.paper import PaperBroker, PostgresPaperVenue
from execution.submit import execute

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "AAPL/USD", "MSFT/USD", "SPY/USD"]
BULLISH = {"close": 100.0, "ema_10": 105.0, "ema_50": 100.0, "macd_hist": 0.5, "rsi_14": 60.0, "ret_1": 0.004}
BEARISH = {"close": 98.0, "ema_10": 95.0, "ema_50": 100.0, "macd_hist": -0.5, "rsi_14": 40.0, "ret_1": -0.003}
OFF = KillSwitchState(False, "never engaged", "")


def _percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


def main(iterations: int) -> tuple[float, float]:
    url = create_throwaway_database()
    engine = create_engine(url, pool_size=5)
    try:
        upgrade(engine)
        settings = Settings(risk=RiskSettings(max_orders_per_run=10 * iterations + 10, daily_loss_limit=Decimal(10**9)))
        run_id, account = "bench-decision", AccountId("bench-paper")
        with engine.begin() as conn:
            conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'bench')"), {"r": run_id})
            ensure_account(conn, account, "paper", "USDT", "paper", Decimal(1_000_000), run_id)
            conn.execute(text("create table bench_baseline (id bigserial primary key, payload text)"))
        rng = np.random.default_rng(11)
        returns = pd.DataFrame(rng.normal(0, 0.01, (200, len(SYMBOLS))), columns=SYMBOLS)
        # The returns history is the same for every symbol of a step: its correlation matrix is built once per step.
        inputs = returns_inputs(returns)
        broker = PaperBroker(fee_bps=settings.paper.fee_bps, slippage_bps=settings.paper.slippage_bps,
                             kill_switch=lambda: OFF, venue=PostgresPaperVenue(engine),
                             spread_bps=settings.paper.spread_bps)  # fmt: skip
        limits, risk_limits = HardLimits.from_settings(settings), RiskLimits.from_settings(settings)
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        positions = dict.fromkeys(SYMBOLS, Decimal(0))
        # Per step, as the decision flow loads them once: each market (configuration: these are file symbols) and its
        # quote currency's rate (USD counts 1:1 in USDT, the shipped peg).
        markets = {s: resolve(s, {}, settings.asset_classes, settings.quantity_steps) for s in SYMBOLS}
        quote_rates = {s: QuoteRate(quote_currency(s, "USDT"), "USDT", Decimal(1)) for s in SYMBOLS}
        core, orders = [], 0
        for i in range(iterations):
            symbol = Symbol(SYMBOLS[i % len(SYMBOLS)])
            as_of = t0 + timedelta(hours=i)
            features = BULLISH if positions[symbol] == 0 else BEARISH
            start = time.perf_counter()
            decision_id = decision_id_for(account, symbol, "1h", as_of, "bench")
            opinions = (technical_opinion(features, symbol, as_of), news_opinion(symbol, as_of, {}))
            action, score = consensus(opinions)
            price = Decimal(str(features["close"]))
            intents = order_intents(decision_id=decision_id, account=account, symbol=symbol, action=action,
                                    position_quantity=positions[symbol], price=price,
                                    order_notional=settings.order_notional, market=markets[symbol],
                                    quote_rate=quote_rates[symbol])  # fmt: skip
            context = PortfolioContext(equity=Decimal(1_000_000), peak_equity=Decimal(1_000_000),
                                       exposures={s: q * price for s, q in positions.items()}, returns=returns,
                                       bars_per_day=24, inputs=inputs)  # fmt: skip
            checked = [
                (intent, check_intent(intent, limits=limits, current_quantity=positions[symbol], last_price=price,
                                      kill_switch=OFF, quote_rate=quote_rates[symbol], portfolio=context,
                                      risk_limits=risk_limits))
                for intent in intents
            ]  # fmt: skip
            approved = [final for intent, verdicts in checked if (final := adjusted_intent(intent, verdicts))]
            with engine.begin() as conn:
                record_decision(
                    conn,
                    DecisionRow(decision_id, run_id, account, symbol, "1h", as_of, action.value, score, "bench",
                                {"features": features}),
                    verdicts=checked,
                )  # fmt: skip
                result = execute(conn, approved, run_id=run_id, broker=broker, settings=settings, event_time=as_of)
            core.append((time.perf_counter() - start) * 1000)
            for outcome in result.submitted:
                orders += 1
                for fill in outcome.fills:
                    positions[fill.symbol] += fill.quantity if fill.side.value == "buy" else -fill.quantity

        baseline = []
        for i in range(iterations):
            start = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text("insert into bench_baseline (payload) values (:p)"), {"p": str(i)})
            baseline.append((time.perf_counter() - start) * 1000)
        with engine.connect() as conn:
            recorded = conn.execute(text("select count(*) from audit.orders where account = :a"), {"a": account})
            assert recorded.scalar_one() == orders > 0, "every decision that traded must have recorded its order"
    finally:
        engine.dispose()
        drop_throwaway_database(url)

    p50, p99 = _percentile(core, 50), _percentile(core, 99)
    base50 = _percentile(baseline, 50)
    print(f"decisions: {iterations:,} ({orders:,} paper orders recorded)")
    print(f"decision core: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  (goal: p50 < 5 ms) {'OK' if p50 < 5 else 'MISSED'}")
    print(f"baseline one-row insert transaction: p50 {base50:6.2f} ms")
    print(f"ratio core/baseline p50: {p50 / base50:.1f}")
    return p50, p99


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=500)
    main(parser.parse_args().iterations)
