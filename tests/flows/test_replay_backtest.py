"""The step-path backtest replays the live decision code on history: deterministic, reported, point in time.

Its own exchange and stretch of time (so its own news URLs and story ids): the session database is shared with the
pipeline, news and CLI modules, whose generated stories would otherwise be these, rewritten here by the look-ahead
test, whichever module ran first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from alphaloom.ingest.sampledata import DEFAULT_END, SampleData, generate
from alphaloom.settings import get_settings
from flows.backtest import backtest_flow
from flows.build_features import build_features
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices

EXCHANGE = "btx"
STEPS = 96
# A stretch no other module's generated data covers (the pipeline's and CLI's 45 days end at DEFAULT_END, the console's
# 120 days earlier, the team walk-forward's 200, the news module's 600); whole weeks back, so the weekdays stay.
END = DEFAULT_END - timedelta(weeks=40)


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[SampleData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("bthome")))
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("bt")), seed=11, days=45, end=END, exchange=EXCHANGE)
        for state in (
            ingest_prices([str(p) for p in sample.price_files], quality=False, return_state=True),
            ingest_news([str(p) for p in sample.news_files], quality=False, return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        yield sample
    get_settings.cache_clear()


def _decisions(engine, run_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text("select symbol, as_of, action, score from audit.decisions where run_id = :r order by 1, 2"),
            {"r": run_id},
        ).all()


def test_a_backtest_replays_deterministically_and_reports(engine, data) -> None:
    first = backtest_flow(symbols=list(data.symbols), end=data.end, steps=STEPS)
    second = backtest_flow(symbols=list(data.symbols), end=data.end, steps=STEPS)
    assert first["account"] != second["account"]
    assert len(_decisions(engine, first["run_id"])) == STEPS * len(data.symbols)
    assert _decisions(engine, first["run_id"]) == _decisions(engine, second["run_id"])
    assert first["trades"] > 0, "the window must trade for the report to mean anything"
    for key in ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor"):
        assert first[key] == second[key], key
    page = Path(first["report"]).read_text()
    assert "LLM analyst: not consulted" in page and "assumed first-seen" in page
    assert (Path(first["report"]).parent / "equity.png").exists()
    with engine.connect() as conn:
        sells = conn.execute(
            text("select count(*) from audit.fills f join audit.orders o using (client_order_id) "
                 "where o.run_id = :r and f.side = 'sell'"),
            {"r": first["run_id"]},
        ).scalar_one()  # fmt: skip
    assert first["trades"] == sells
    # the decisions' config: not in their inputs, reachable by their version (the replay writes it once)
    from agents.params import DecisionParams
    from alphaloom.records.decisions import decision_config

    params = DecisionParams.from_settings(get_settings())
    with engine.connect() as conn:
        versions = conn.execute(text("select distinct config_version, inputs ? 'config' from audit.decisions "
                                     "where run_id = :r"), {"r": first["run_id"]}).all()  # fmt: skip
        assert versions == [(params.version, False)] and decision_config(conn, params.version) == params.config
    # P&L attribution: by asset, agent and strategy, each summing to the closed trades' P&L, and in the report.
    with engine.connect() as conn:
        from alphaloom.reporting.run_report import build_run_report

        again = build_run_report(
            conn, first["run_id"], exchange=EXCHANGE, timeframe="1h", out_dir=Path(first["report"]).parent.parent
        )
    pnl_by = first["pnl_by"]
    assert set(pnl_by) == {"asset", "agent", "strategy"} and pnl_by == again.attribution
    total = sum(pnl_by["asset"].values())
    assert sum(pnl_by["agent"].values()) == pytest.approx(total) == sum(pnl_by["strategy"].values())
    assert set(pnl_by["agent"]) <= {"technical", "news", "llm", "unattributed"} and "technical" in pnl_by["agent"]
    assert "P&amp;L by agent" in page and "P&amp;L by strategy" in page


def test_report_command_for_a_run_and_a_clear_error_for_an_unknown_one(engine, data) -> None:
    from alphaloom.cli import app

    run = backtest_flow(symbols=list(data.symbols)[:2], end=data.end, steps=24)
    result = CliRunner().invoke(app, ["report", run["run_id"]])
    assert result.exit_code == 0, result.output
    assert "report:" in result.output and run["account"] in result.output
    page = (get_settings().home / "reports" / run["run_id"] / "report.html").read_text()
    assert "next bar&#x27;s open" in page and "LLM analyst: not consulted" in page, "notes come from the run's row"
    missing = CliRunner().invoke(app, ["report", "no-such-run"])
    assert missing.exit_code == 2 and "no such run" in missing.output and "no-such-run" in missing.output


_PER_RUN = {  # rows a backtest run writes, by table (run id of the rows, or the run's account)
    "decisions": "select count(*) from audit.decisions where run_id = :r",
    "agent_outputs": "select count(*) from audit.agent_outputs where run_id = :r",
    "risk_checks": "select count(*) from audit.risk_checks where run_id = :r and check_name not like 'execution%'",
    "lineage": "select count(*) from audit.lineage where run_id = :r and child_table = 'audit.decisions'",
    "agent_weights": "select count(*) from audit.agent_weights where account = :a",
    "opinion_outcomes": "select count(*) from audit.opinion_outcomes where account = :a",
    "orders": "select count(*) from audit.orders where run_id = :r",
    "fills": "select count(*) from audit.fills f join audit.orders o using (client_order_id) where o.run_id = :r",
    "positions": "select count(*) from audit.positions where account = :a",
    "balances": "select count(*) from audit.balances where account = :a",
}


_TRADED = {  # what a run traded and ended with, without ids (a run's account is its own, and so its ids)
    "orders": """select d.symbol, d.as_of, o.leg, o.side, o.order_type, o.quantity, o.limit_price, o.reference_price,
                        o.status, o.filled_quantity
                 from audit.orders o join audit.decisions d using (decision_id) where o.run_id = :r order by 1, 2, 3""",
    "fills": """select f.symbol, f.side, f.quantity, f.price, f.fee, f.ts from audit.fills f
                join audit.orders o using (client_order_id) where o.run_id = :r order by f.ts, f.symbol""",
    "equity_marks": "select as_of, equity from audit.equity_marks where account = :a order by as_of",
    "positions": "select symbol, quantity, avg_price from audit.positions where account = :a order by 1",
    "balances": "select currency, amount from audit.balances where account = :a order by 1",
}


def test_audit_modes_write_less_and_report_the_same_metrics_and_trades(engine, data) -> None:
    """``audit``: ``decisions`` writes the decisions but none of their outputs, checks, lineage, weights or outcomes;
    ``none`` only the decisions that sent an order; both trade and report exactly as ``full`` (the same orders,
    fills, equity marks, final positions and balances: the audit rows a mode leaves unbuilt never feed a trade), the
    mode is in the run's parameters and the report, and ``alphaloom report`` rebuilds a ``none`` run."""
    from alphaloom.reporting.run_report import build_run_report

    runs = {mode: backtest_flow(symbols=list(data.symbols), end=data.end, steps=STEPS, audit=mode)
            for mode in ("full", "decisions", "none")}  # fmt: skip
    counts, traded = {}, {}
    with engine.connect() as conn:
        for mode, run in runs.items():
            keys = {"r": run["run_id"], "a": run["account"]}
            counts[mode] = {name: conn.execute(text(sql), keys).scalar_one() for name, sql in _PER_RUN.items()}
            traded[mode] = {name: conn.execute(text(sql), keys).all() for name, sql in _TRADED.items()}
            parameters = conn.execute(text("select parameters from audit.runs where run_id = :r"),
                                      {"r": run["run_id"]}).scalar_one()  # fmt: skip
            assert parameters["audit"] == mode
    full, decisions, none = counts["full"], counts["decisions"], counts["none"]
    assert full["decisions"] == STEPS * len(data.symbols) and runs["full"]["trades"] > 0
    assert all(full[name] > 0 for name in _PER_RUN), full
    assert decisions["decisions"] == full["decisions"]
    assert 0 < none["decisions"] < full["decisions"]
    for name in ("agent_outputs", "risk_checks", "lineage", "agent_weights", "opinion_outcomes"):
        assert decisions[name] == none[name] == 0, name
    for name in ("orders", "fills", "positions", "balances"):
        assert decisions[name] == none[name] == full[name], name
    assert traded["full"]["orders"] and traded["full"]["fills"] and traded["full"]["equity_marks"]
    for name in _TRADED:
        assert traded["decisions"][name] == traded["none"][name] == traded["full"][name], name
    metrics = ("total_return", "annualised_return", "sharpe", "sortino", "max_drawdown", "trades", "win_rate",
               "profit_factor", "refusals")  # fmt: skip
    for mode in ("decisions", "none"):
        for key in metrics:
            assert runs[mode][key] == runs["full"][key], (mode, key)
        assert runs[mode]["pnl_by"]["asset"] == runs["full"]["pnl_by"]["asset"]
        page = Path(runs[mode]["report"]).read_text()
        assert f"audit: {mode}" in page and "P&amp;L by agent and by strategy: not available" in page
    assert "audit: full" in Path(runs["full"]["report"]).read_text()
    with engine.connect() as conn:  # a none run's report rebuilt from its parameters alone, as full's
        rebuilt = {mode: build_run_report(conn, runs[mode]["run_id"], exchange=EXCHANGE, timeframe="1h",
                                          out_dir=Path(runs[mode]["report"]).parent.parent)
                   for mode in ("full", "none")}  # fmt: skip
    assert rebuilt["none"].metrics == rebuilt["full"].metrics and rebuilt["none"].trades == runs["full"]["trades"]


def test_backtest_command_takes_the_audit_mode(engine, data) -> None:
    from alphaloom.cli import app

    symbol = next(iter(data.symbols))
    result = CliRunner().invoke(app, ["backtest", "--symbols", symbol, "--steps", "6", "--audit", "decisions"])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        run_id, outputs = conn.execute(
            text("""select r.run_id, (select count(*) from audit.agent_outputs o where o.run_id = r.run_id)
                    from audit.runs r where r.flow = 'backtest' and r.parameters->>'audit' = 'decisions'
                      and r.parameters->'symbols' = cast(:s as jsonb) and (r.parameters->>'steps')::int = 6"""),
            {"s": f'["{symbol}"]'},
        ).one()  # fmt: skip
    assert run_id in result.output and outputs == 0


def test_no_look_ahead_perturbing_everything_after_t_changes_no_decision_up_to_t(engine, data) -> None:
    from alphaloom.features.dbt_runner import build_features as dbt_build

    cutoff = data.end - timedelta(hours=48)
    before = backtest_flow(symbols=list(data.symbols), end=cutoff, steps=48)
    # Only this module's stories (its stretch of time, see END) are rewritten, and put back afterwards.
    own_late = "first_seen_at > :t and first_seen_at < :end"
    window = {"t": cutoff, "end": data.end + timedelta(days=1)}
    with engine.connect() as conn:
        saved = conn.execute(text(f"select id, title, summary from raw.news where {own_late}"), window).all()
    try:
        with engine.begin() as conn:
            # Every bar closing after the cutoff gets wild prices, every story of ours first seen after it turns dire.
            changed = conn.execute(
                text("""update raw.ohlcv set open = open * 1.5, high = high * 1.6, low = low * 1.4, close = close * 1.55,
                        volume = volume * 3 where exchange = :e and ts + interval '1 hour' > :t"""),
                {"e": EXCHANGE, "t": cutoff},
            ).rowcount  # fmt: skip
            late_news = conn.execute(
                text(f"""update raw.news set title = 'Fraud probe, bankruptcy fears: shares plunge after lawsuit',
                         summary = 'losses, default, downgrade' where {own_late}"""),
                window,
            ).rowcount  # fmt: skip
        assert changed > 0 and late_news > 0
        dbt_build(full_refresh=True)
        after = backtest_flow(symbols=list(data.symbols), end=cutoff, steps=48)
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("update raw.news set title = :title, summary = :summary where id = :id"),
                [{"id": r.id, "title": r.title, "summary": r.summary} for r in saved],
            )
    assert _decisions(engine, before["run_id"]) == _decisions(engine, after["run_id"])
    assert before["total_return"] == after["total_return"]


def _fills(engine, run_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text("""select f.symbol, f.side, f.ts, f.quantity, f.price from audit.fills f
                    join audit.orders o using (client_order_id) where o.run_id = :r order by f.ts, f.symbol, f.side"""),
            {"r": run_id},
        ).all()  # fmt: skip


def test_step_path_fills_at_the_next_open_and_matches_the_fast_path_trade_for_trade(engine, data, monkeypatch) -> None:
    from datetime import timedelta
    from decimal import Decimal

    import pandas as pd

    from agents.trader import quantity_step
    from alphaloom.backtest.vectorized import exact_trades, run, sma_cross_target

    monkeypatch.setenv("ALPHALOOM_MAX_ORDERS_PER_RUN", "1000")
    get_settings.cache_clear()
    settings = get_settings()
    symbols, steps, fast, slow = ["BTC/USDT", "ETH/USDT"], 240, 5, 20
    result = backtest_flow(symbols=symbols, end=data.end, steps=steps, strategy="sma_cross", sma_fast=fast,
                           sma_slow=slow)  # fmt: skip
    step_trades = [(r.symbol, r.side, pd.Timestamp(r.ts), Decimal(r.quantity), Decimal(r.price))
                   for r in _fills(engine, result["run_id"])]  # fmt: skip
    assert len(step_trades) >= 10, "the window must trade for the comparison to mean anything"

    with engine.connect() as conn:
        bars = pd.DataFrame(
            conn.execute(
                text("""select symbol, ts, open, close from raw.ohlcv where exchange = :e and timeframe = '1h'
                        and symbol = any(:s) and ts < :end order by ts"""),
                {"e": EXCHANGE, "s": symbols, "end": data.end},
            ).all(),
            columns=["symbol", "ts", "open", "close"],
        )  # fmt: skip
        expired = conn.execute(
            text("""select o.status, count(f.fill_id) as fills, min(d.as_of) as as_of from audit.orders o
                    join audit.decisions d using (decision_id) left join audit.fills f using (client_order_id)
                    where o.run_id = :r and d.as_of = (select max(as_of) from audit.decisions where run_id = :r)
                    group by o.status"""),
            {"r": result["run_id"]},
        ).all()  # fmt: skip
    bars["ts"] = pd.to_datetime(bars["ts"], utc=True)
    open_ = bars.pivot(index="ts", columns="symbol", values="open").astype(float)
    close = bars.pivot(index="ts", columns="symbol", values="close").astype(float)
    target = sma_cross_target(close, fast, slow)  # on the whole history: the step path reads it too
    first_decision_bar = pd.Timestamp(data.end) - timedelta(hours=steps)  # the bar whose close is the first as_of
    window = close.index >= first_decision_bar
    steps_map = {s: quantity_step(s) for s in symbols}
    fast_path = run(open_[window], close[window], target[window], initial_cash=float(settings.starting_cash),
                    order_notional=settings.order_notional, fee_bps=float(settings.paper.fee_bps),
                    slippage_bps=float(settings.paper.slippage_bps), quantity_steps=steps_map)  # fmt: skip
    fast_trades = exact_trades(fast_path, open_[window], close[window], order_notional=settings.order_notional,
                               slippage_bps=float(settings.paper.slippage_bps), quantity_steps=steps_map)  # fmt: skip
    assert sorted(step_trades) == sorted(fast_trades)

    # Next-open fills: every fill is at its bar's open plus or minus slippage, never at or after the last step,
    # whose orders (if any) expired unfilled.
    opens = bars.set_index(["symbol", "ts"])["open"]
    slip = settings.paper.slippage_bps / 10000
    for symbol, side, ts, _, price in step_trades:
        assert price == Decimal(opens[(symbol, ts)]) * (1 + slip if side == "buy" else 1 - slip)
        assert ts < pd.Timestamp(data.end)
    assert all(row.status == "expired" and row.fills == 0 for row in expired)
    get_settings.cache_clear()


@pytest.fixture()
def llm_endpoint(monkeypatch) -> Iterator[list[dict]]:
    """A local OpenAI-compatible stand-in answering every prompt with the same valid opinion; records requests."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests: list[dict] = []
    content = json.dumps({"action": "buy", "confidence": 0.9, "horizon_bars": 4, "rationale": "trend up",
                          "key_risks": ["reversal"], "cited_values": []})  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            data = json.dumps({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340},
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ALPHALOOM_LLM_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("ALPHALOOM_LLM_MODEL", "stand-in")
    monkeypatch.setenv("ALPHALOOM_LLM_TRAINING_CUTOFFS", '{"stand-in": "2000-01-01"}')
    monkeypatch.setenv("ALPHALOOM_LLM_PRICES", '{"stand-in": {"input": 1, "output": 2}}')
    get_settings.cache_clear()
    yield requests
    server.shutdown()
    server.server_close()
    get_settings.cache_clear()


def _llm_outputs(engine, run_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text("""select symbol, as_of, skipped, prompt_hash, output->>'action', output->>'confidence'
                    from audit.agent_outputs where run_id = :r and agent = 'llm' order by 1, 2"""),
            {"r": run_id},
        ).all()  # fmt: skip


def test_llm_in_backtests_is_cache_only_by_default_and_a_rerun_costs_nothing(engine, data, llm_endpoint) -> None:
    from datetime import timedelta

    symbols, steps = list(data.symbols)[:2], 4
    end = data.end - timedelta(hours=30)
    cache_only = backtest_flow(symbols=symbols, end=end, steps=steps)
    assert llm_endpoint == [] and cache_only["llm_tokens"] == 0
    assert cache_only["llm_usage"] == {"cache_miss": {"count": steps * 2, "tokens": 0}}
    assert all(skipped for _, _, skipped, *_ in _llm_outputs(engine, cache_only["run_id"]))

    live = backtest_flow(symbols=symbols, end=end, steps=steps, llm_live=True)
    assert len(llm_endpoint) == steps * 2 == live["llm_calls"] and live["llm_tokens"] == steps * 2 * 340
    assert not any(skipped for _, _, skipped, *_ in _llm_outputs(engine, live["run_id"]))

    replay = backtest_flow(symbols=symbols, end=end, steps=steps)
    assert len(llm_endpoint) == steps * 2, "a re-run sent nothing"
    assert replay["llm_tokens"] == 0 and replay["llm_usage"] == {"cached": {"count": steps * 2, "tokens": 0}}
    assert _decisions(engine, replay["run_id"]) == _decisions(engine, live["run_id"])
    assert _llm_outputs(engine, replay["run_id"]) == _llm_outputs(engine, live["run_id"])
    assert "response cache only" in Path(replay["report"]).read_text()
    # 8 calls of 300 + 40 tokens at 1 and 2 USD per 1M: 0.00304 USD, 1:1 in USDT; the replay paid nothing but its
    # answers first cost the same, so its return net of LLM cost is the live run's
    assert "LLM spend 0.0030 USDT (paid by this run 0.0030 for 8 calls" in Path(live["report"]).read_text()
    assert "LLM spend 0.0030 USDT (paid by this run 0.0000 for 0 calls" in Path(replay["report"]).read_text()

    capped = backtest_flow(symbols=symbols, end=end - timedelta(hours=10), steps=steps, llm_live=True, llm_max_calls=3)
    assert capped["llm_calls"] == 3 and len(llm_endpoint) == steps * 2 + 3
    assert capped["llm_usage"]["budget_exceeded"]["count"] == steps * 2 - 3


def test_a_backtest_before_the_models_training_cutoff_is_refused_unless_allowed(engine, data, llm_endpoint,
                                                                                monkeypatch) -> None:  # fmt: skip
    from typer.testing import CliRunner

    from alphaloom.cli import app
    from alphaloom.errors import ConfigError

    monkeypatch.setenv("ALPHALOOM_LLM_TRAINING_CUTOFFS", '{"stand-in": "2100-01-01"}')
    get_settings.cache_clear()
    symbols = list(data.symbols)[:1]
    with pytest.raises(ConfigError, match="training cutoff 2100-01-01"):
        backtest_flow(symbols=symbols, end=data.end, steps=2)
    refused = CliRunner().invoke(app, ["backtest", "--symbols", symbols[0], "--steps", "2"])
    assert refused.exit_code == 1 and "--allow-exposure" in refused.output
    exposed = backtest_flow(symbols=symbols, end=data.end, steps=2, allow_exposure=True)
    assert exposed["exposed"] and llm_endpoint == []
    assert "EXPOSED to the model" in Path(exposed["report"]).read_text()

    monkeypatch.setenv("ALPHALOOM_LLM_MODEL", "unknown-model")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="no training cutoff configured for LLM model 'unknown-model'"):
        backtest_flow(symbols=symbols, end=data.end, steps=2)


def test_walk_forward_command_reports_out_of_sample_results_apart(data) -> None:
    from alphaloom.cli import app

    result = CliRunner().invoke(app, ["walk-forward", "--symbols", "BTC/USDT,ETH/USDT", "--fast", "3,5",
                                      "--slow", "20,40", "--in-sample", "300", "--out-sample", "100"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "walk-forward windows" in result.output and "out-of-sample only" in result.output
    bad = CliRunner().invoke(app, ["walk-forward", "--symbols", "BTC/USDT", "--in-sample", "100000"])
    assert bad.exit_code == 1 and "cannot hold one window" in bad.output


def test_an_audit_mode_without_the_outcomes_is_refused_with_the_llm_analyst(engine, data, llm_endpoint) -> None:
    """The LLM analyst is shown the account's past situations, read from the outcome rows only ``full`` writes."""
    from alphaloom.cli import app
    from alphaloom.errors import ConfigError

    symbols = list(data.symbols)[:1]
    with pytest.raises(ConfigError, match="audit 'none' refused with the LLM analyst"):
        backtest_flow(symbols=symbols, end=data.end, steps=2, audit="none")
    refused = CliRunner().invoke(app, ["backtest", "--symbols", symbols[0], "--steps", "2", "--audit", "decisions"])
    assert refused.exit_code == 1 and "audit 'decisions' refused" in refused.output and llm_endpoint == []


@pytest.mark.parametrize("steps", [STEPS, 150], ids=["one-chunk", "two-chunks"])
def test_a_failed_write_of_a_chunks_rows_fails_the_backtest_and_its_run(engine, data, monkeypatch, steps) -> None:
    """A chunk's rows are written by the replay's background writer while the next chunk runs
    (``flows.backtest.flush_audit``): a write that fails (here a row breaking a foreign key) fails the backtest, raised
    from the replay at the next chunk or at its end, never lost; the run is recorded failed, none of the failed
    write's rows are kept and no later chunk's rows are written."""
    from datetime import datetime

    import psycopg

    import flows.backtest
    from agents.audit_buffer import AuditBuffer
    from agents.memory import AgentWeight

    taken: list[int] = []

    class Poisoned(AuditBuffer):
        def take(self) -> AuditBuffer:
            rows = super().take()
            if not taken:  # the first chunk's rows: one agent weight of a run that does not exist
                rows.weights(account="nobody", as_of=datetime.fromisoformat("2020-01-01T00:00:00+00:00"),
                             run_id="no-such-run", weights={"technical": AgentWeight("technical", 1.0, None, 0)})  # fmt: skip
            taken.append(rows.pending)
            return rows

    monkeypatch.setattr(flows.backtest, "AuditBuffer", Poisoned)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        backtest_flow(symbols=list(data.symbols), end=data.end, steps=steps)
    assert len(taken) == 1, "no later chunk's rows handed to the writer"
    with engine.connect() as conn:
        run_id, status, error = conn.execute(
            text("select run_id, status, error from audit.runs where flow = 'backtest' order by started_at desc limit 1")
        ).one()  # fmt: skip
        written = conn.execute(text("select count(*) from audit.decisions where run_id = :r"), {"r": run_id}).scalar()
    assert status == "failed" and "no-such-run" in error
    assert written == 0
