"""Operating the decision flow on a real pipeline: per-symbol fan-out, the per-account overlap lock, explain, health.

The data is the pipeline test's seeded set written under its own exchange (``opsx``), so the rows and decisions here
never mix with other modules' (accounts are unique to this module too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from support.paths import ROOT, SUPPORT
from typer.testing import CliRunner

from alphaloom.errors import RunInProgressError
from alphaloom.ingest.sampledata import SampleData, generate
from alphaloom.ops.health import check_health
from alphaloom.ops.locks import lock_held
from alphaloom.reporting.explain import explain_order, price_window
from alphaloom.reporting.explain_html import render_html
from alphaloom.settings import get_settings
from flows.build_features import build_features
from flows.decide import decide_flow
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices

EXCHANGE = "opsx"
STEPS = 96  # the seeded data trades within the last 96 bars (as in the pipeline test)


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[SampleData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("ops")), seed=11, days=45, exchange=EXCHANGE)
        for state in (
            ingest_prices([str(p) for p in sample.price_files], return_state=True),
            ingest_news([str(p) for p in sample.news_files], return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        yield sample
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def fanned_out(engine, data) -> str:
    """A decision run through the flow (symbols fanned out as tasks) on its own account; returns the run id."""
    state = decide_flow(symbols=list(data.symbols), as_of=data.end, steps=STEPS, account="ops-fan", fan_out=True,
                        return_state=True)  # fmt: skip
    assert state.is_completed(), state
    return str(state.state_details.flow_run_id)


def _sequential_reference(engine: Engine, data: SampleData, account: str) -> None:
    """The pre-fan-out path: every symbol of a step decided and executed in one transaction, in order."""
    from agents.team import build_team, decide
    from alphaloom.ops.kill_switch import kill_switch_state
    from alphaloom.records.runs import recorded_run
    from execution.accounts.registry import ensure_account
    from execution.brokers.paper import PaperBroker, PostgresPaperVenue
    from execution.submit import execute
    from flows.decide import decision_times

    settings = get_settings()
    team = build_team(settings)
    with recorded_run(engine, "decide-sequential-reference", {}) as run_id:
        with engine.begin() as conn:
            ensure_account(conn, account, venue="paper", base_currency=settings.base_currency, mode="paper",
                           starting_cash=settings.starting_cash, run_id=run_id)  # fmt: skip
        for as_of in decision_times(data.end, STEPS, settings.timeframe):
            with engine.begin() as conn:
                decisions = decide(conn, account=account, symbols=list(data.symbols), as_of=as_of, run_id=run_id,
                                   settings=settings, scorer=team.scorer, llm_agent=team.llm_agent)  # fmt: skip
                intents = [i for d in decisions for i in d.intents]
                broker = PaperBroker(fee_bps=settings.paper.fee_bps, slippage_bps=settings.paper.slippage_bps,
                                     kill_switch=lambda conn=conn: kill_switch_state(conn),
                                     venue=PostgresPaperVenue(engine))  # fmt: skip
                execute(conn, intents, run_id=run_id, broker=broker, settings=settings, event_time=as_of)


def _outcome(engine: Engine, account: str) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            "decisions": conn.execute(
                text("select symbol, as_of, action, score from audit.decisions where account = :a order by 1, 2"),
                {"a": account},
            ).all(),
            "fills": conn.execute(
                text("select symbol, side, quantity, price, fee, ts from audit.fills where account = :a order by 1, 6"),
                {"a": account},
            ).all(),
            "positions": conn.execute(
                text("select symbol, quantity, avg_price from audit.positions where account = :a order by 1"),
                {"a": account},
            ).all(),
        }


def test_fanned_out_symbols_give_exactly_the_sequential_results(engine, data, fanned_out) -> None:
    _sequential_reference(engine, data, "ops-seq")
    fan, seq = _outcome(engine, "ops-fan"), _outcome(engine, "ops-seq")
    assert len(fan["decisions"]) == STEPS * len(data.symbols)
    assert fan["fills"], "the window must trade for the comparison to mean anything"
    assert fan == seq


def test_the_default_flow_path_is_the_sequential_reference(engine, data) -> None:
    state = decide_flow(symbols=list(data.symbols), as_of=data.end, steps=STEPS, account="ops-flow-seq",
                        return_state=True)  # fmt: skip
    assert state.is_completed(), state
    _sequential_reference(engine, data, "ops-seq-2")
    assert _outcome(engine, "ops-flow-seq") == _outcome(engine, "ops-seq-2")


def test_a_second_decision_run_for_the_same_account_does_not_overlap(engine, data) -> None:
    """While a run holds the account's lock (here: the lock taken as run 1 takes it, on another connection), a real
    decision run for that account fails with a clear message and decides nothing; another account is unaffected."""
    from alphaloom.ops.locks import account_run_lock

    account, symbols = "ops-lock", list(data.symbols[:2])
    with account_run_lock(engine, account):
        assert lock_held(engine, account)
        second = decide_flow(symbols=symbols, as_of=data.end, steps=2, account=account, return_state=True)
        assert second.is_failed()
        with pytest.raises(RunInProgressError, match=f"another decision run for account '{account}' is in progress"):
            second.result()
        other = decide_flow(symbols=symbols, as_of=data.end, steps=1, account="ops-lock-other", return_state=True)
        assert other.is_completed()
    with engine.connect() as conn:
        assert not conn.execute(
            text("select count(*) from audit.decisions where account = :a"), {"a": account}
        ).scalar()
    after = decide_flow(symbols=symbols, as_of=data.end, steps=2, account=account, return_state=True)
    assert after.is_completed() and not lock_held(engine, account)


def test_the_lock_admits_one_of_two_concurrent_holders(engine) -> None:
    """Two threads race for the same account's lock, held open by a barrier: exactly one gets in."""
    from alphaloom.ops.locks import account_run_lock

    inside, results = threading.Barrier(2, timeout=60), []

    def contender() -> None:
        try:
            with account_run_lock(engine, "ops-race"):
                results.append("ran")
                inside.wait()  # hold the lock until the other contender has tried
        except RunInProgressError as exc:
            results.append(str(exc))
            inside.wait()

    threads = [threading.Thread(target=contender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["another decision run for account 'ops-race' is in progress", "ran"]


WORKER = SUPPORT / "decide_worker.py"


def _decide_in_a_process(
    account: str, symbols: list[str], data: SampleData, *, wait_seconds: float
) -> subprocess.Popen:
    """A decision flow run in its own process, against this session's Prefect API and database."""
    from prefect.settings import PREFECT_API_URL

    root = str(ROOT)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(),
           "ALPHALOOM_DECISION_LOCK_WAIT_SECONDS": str(wait_seconds),
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}  # fmt: skip
    args = [sys.executable, str(WORKER), account, ",".join(symbols), data.end.isoformat(), "3"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(worker: subprocess.Popen) -> dict:
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


def _until(condition: Callable[[], bool], what: str, workers: list[subprocess.Popen]) -> None:
    """Poll a database condition (not a timing assumption): fail early if a worker died meanwhile."""
    deadline = time.monotonic() + 240
    while not condition():
        for worker in workers:
            if worker.poll() is not None:
                raise AssertionError(f"a worker ended while waiting for {what}: {worker.communicate()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _lock_waiters(engine: Engine, account: str) -> int:
    from alphaloom.ops.locks import decision_lock_key

    with engine.connect() as conn:
        return conn.execute(
            text(
                """select count(*) from pg_locks where locktype = 'advisory' and not granted
                   and ((classid::bigint << 32) | objid::bigint) = hashtextextended(:k, 0)"""
            ),
            {"k": decision_lock_key(account)},
        ).scalar_one()


def test_two_concurrent_decision_flow_runs_for_one_account_never_overlap(engine, data) -> None:
    """Three real decision flow runs in three processes for one account, forced to meet: run 1 is held inside its
    critical section by a barrier (an uncommitted insert of the account row that its ``ensure_account`` must wait
    for); run 2, started then with no lock wait, fails with the clear message and writes nothing; run 3, started
    then with a lock wait, queues on the lock and runs only after run 1 has finished. Their recorded spans do not
    overlap and run 3 duplicates none of run 1's decisions or orders."""
    from prefect.client.orchestration import get_client

    account, symbols = f"ops-overlap-{uuid.uuid4().hex[:6]}", list(data.symbols[:2])
    barrier = engine.connect()
    barrier.begin()
    barrier.execute(
        text("insert into audit.accounts (id, venue, base_currency, mode, starting_cash) "
             "values (:a, 'paper', :c, 'paper', 1)"),
        {"a": account, "c": get_settings().base_currency},
    )  # fmt: skip
    workers: list[subprocess.Popen] = []
    try:
        first = _decide_in_a_process(account, symbols, data, wait_seconds=0)
        workers.append(first)

        def first_is_parked() -> bool:
            with engine.connect() as conn:
                return lock_held(engine, account) and bool(
                    conn.execute(
                        text(
                            """select count(*) from pg_stat_activity where datname = current_database()
                               and wait_event_type = 'Lock' and query like 'insert into audit.accounts%'"""
                        )
                    ).scalar_one()
                )

        _until(first_is_parked, "run 1 to hold the lock and wait at the barrier", workers)

        refused = _finished(_decide_in_a_process(account, symbols, data, wait_seconds=0))
        assert refused["state"] == "FAILED"
        assert f"another decision run for account '{account}' is in progress" in refused["message"]

        queued = _decide_in_a_process(account, symbols, data, wait_seconds=600)
        workers.append(queued)
        _until(lambda: _lock_waiters(engine, account) == 1, "run 3 to queue on the lock", workers)
        assert first.poll() is None  # still parked: the two are now genuinely concurrent
    finally:
        barrier.rollback()
        barrier.close()
    one, three = _finished(first), _finished(queued)
    assert one["state"] == three["state"] == "COMPLETED", (one, three)

    with get_client(sync_client=True) as client:  # the runs went through the real Prefect API
        for result in (one, refused, three):
            assert client.read_flow_run(uuid.UUID(result["flow_run_id"])).state.type.value == result["state"]
    with engine.connect() as conn:
        spans = {
            row.run_id: row
            for row in conn.execute(
                text("select run_id, status, started_at, finished_at from audit.runs where run_id = any(:ids)"),
                {"ids": [one["flow_run_id"], refused["flow_run_id"], three["flow_run_id"]]},
            )
        }
        decisions = conn.execute(
            text("select run_id, symbol, as_of from audit.decisions where account = :a"), {"a": account}
        ).all()
        order_runs = set(
            conn.execute(text("select run_id from audit.orders where account = :a"), {"a": account}).scalars()
        )
    assert refused["flow_run_id"] not in spans  # refused before its run started: nothing recorded, nothing decided
    run1, run3 = spans[one["flow_run_id"]], spans[three["flow_run_id"]]
    assert run1.status == run3.status == "completed"
    assert run1.finished_at <= run3.started_at  # the critical sections did not overlap
    assert len(decisions) == 3 * len(symbols) == len({(d.symbol, d.as_of) for d in decisions})
    assert {d.run_id for d in decisions} == {run1.run_id} and order_runs <= {run1.run_id}
    assert not lock_held(engine, account) and _lock_waiters(engine, account) == 0


def _drawdown_levels(engine: Engine, account: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text(
                """select d.as_of, rc.numbers ->> 'level' from audit.risk_checks rc
                   join audit.decisions d using (decision_id)
                   where rc.account = :a and rc.check_name = 'drawdown' and rc.numbers ->> 'level' is not null
                   order by rc.id"""
            ),
            {"a": account},
        ).all()


def test_a_drawdown_halt_alerts_once_per_transition_and_a_reduce_warns(
    engine, data, receiver, monkeypatch, caplog
) -> None:
    """Thresholds at 0 % make every buy verdict a halt: the run that first halts the account alerts once (though
    several steps halt), a second run still halted alerts nothing, and another account entering reduce warns once."""
    symbols = list(data.symbols)

    def run(account: str, reduce_pct: str, halt_pct: str, order_notional: str) -> None:
        monkeypatch.setenv("ALPHALOOM_DRAWDOWN_REDUCE_PCT", reduce_pct)
        monkeypatch.setenv("ALPHALOOM_DRAWDOWN_HALT_PCT", halt_pct)
        monkeypatch.setenv("ALPHALOOM_ORDER_NOTIONAL", order_notional)  # a new config version: new decisions
        get_settings.cache_clear()
        state = decide_flow(symbols=symbols, as_of=data.end, steps=STEPS, account=account, return_state=True)
        assert state.is_completed(), state

    def kinds() -> list[str]:
        return [p["kind"] for p in receiver.received]

    run("ops-dd", "0", "0", "5000")
    halted_steps = {as_of for as_of, level in _drawdown_levels(engine, "ops-dd") if level == "halt"}
    assert len(halted_steps) >= 2, "the window must halt at several steps for 'once' to mean anything"
    assert kinds() == ["drawdown_halt"]
    (halt,) = receiver.received
    assert halt["details"]["account"] == "ops-dd" and halt["details"]["level"] == "halt"
    assert halt["details"]["previous_level"] is None and halt["details"]["halt_pct"] == "0"
    assert halt["details"]["as_of"] == min(halted_steps).isoformat()
    assert "halts new buys" in halt["reason"] and "ops-dd" in halt["reason"]
    assert "ALERT drawdown_halt" in caplog.text

    verdicts_after_first = len(_drawdown_levels(engine, "ops-dd"))
    run("ops-dd", "0", "0", "4000")
    later = _drawdown_levels(engine, "ops-dd")[verdicts_after_first:]
    assert later and {level for _, level in later} == {"halt"}  # it halted again, silently
    assert kinds() == ["drawdown_halt"]

    run("ops-dd-reduce", "0", "100", "5000")
    assert {level for _, level in _drawdown_levels(engine, "ops-dd-reduce")} == {"reduce"}
    assert kinds() == ["drawdown_halt", "drawdown_reduce"]
    warning = receiver.received[-1]
    assert "reduces buys by 0.5" in warning["reason"] and warning["details"]["reduce_pct"] == "0"


def test_explain_chain_is_complete_for_an_order(engine, data, fanned_out, tmp_path) -> None:
    with engine.connect() as conn:
        order_id = conn.execute(
            text("select client_order_id from audit.orders where account = 'ops-fan' order by created_at limit 1")
        ).scalar_one()
        chain = explain_order(conn, order_id)
        window = price_window(conn, exchange=EXCHANGE, symbol=chain.order.symbol, timeframe="1h",
                              as_of=chain.decision.as_of)  # fmt: skip
    assert chain.missing == []
    assert chain.order.fills and chain.order.events
    assert chain.decision is not None and chain.decision.run_id == fanned_out
    assert {a.agent for a in chain.agent_outputs} == {"technical", "news", "llm"}
    outputs = {a.agent: a for a in chain.agent_outputs}
    assert outputs["news"].model == chain.decision.inputs["scorer"] and outputs["llm"].skipped
    assert chain.risk_checks and all(r.approved for r in chain.risk_checks)
    assert chain.features.dbt_model == "marts.features" and chain.features.dbt_invocation_id
    assert chain.features.git_sha == chain.decision.git_sha and chain.features.values["close"] is not None
    (bar,) = chain.bars
    assert bar.symbol == chain.order.symbol and bar.exchange == EXCHANGE
    assert bar.ts + timedelta(hours=1) <= chain.decision.as_of
    roles = {r.role: r.flow for r in chain.runs}
    assert roles["order"] == roles["decision"] == "decide"
    assert roles["bars"] == "ingest_prices" and roles["features"] == "build_features"
    if chain.decision.inputs["news"]:
        # Stories are shared by the session's modules: the writer is whichever run stored each first.
        with engine.connect() as conn:
            writers = (
                conn.execute(
                    text(
                        "select distinct r.flow from raw.news n join audit.runs r using (run_id) where n.id = any(:ids)"
                    ),
                    {"ids": [n.id for n in chain.news]},
                )
                .scalars()
                .all()
            )
        assert roles["news"] in writers and len(chain.news) == len(chain.decision.inputs["news"])
        # Each story is shown first seen when the decision could see it for its symbol (issue 12.13).
        assert {n.id: n.first_seen_at for n in chain.news} == {
            n["id"]: datetime.fromisoformat(n["first_seen_at"]) for n in chain.decision.inputs["news"]
        }
    page = render_html(chain, window)
    assert "<svg" in page and "http" not in page.split("<body>")[1].replace("http://www.w3", "")
    assert chain.order.client_order_id in page and chain.decision.decision_id in page


def test_explain_cli_prints_the_chain_and_writes_the_page(engine, data, fanned_out, tmp_path) -> None:
    from alphaloom.cli import app

    with engine.connect() as conn:
        order_id = conn.execute(
            text("select client_order_id from audit.orders where account = 'ops-fan' order by created_at desc limit 1")
        ).scalar_one()
    out = tmp_path / "why.html"
    result = CliRunner().invoke(app, ["explain", order_id, "--html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "agent outputs" in result.output and "ingest_prices" in result.output and "incomplete" not in result.output
    assert out.read_text().startswith("<!doctype html>")
    missing = CliRunner().invoke(app, ["explain", "no-such-order"])
    assert missing.exit_code == 2 and "no-such-order" in missing.output


def test_explain_prints_a_headline_with_console_markup_as_text(engine, data, fanned_out, tmp_path) -> None:
    """A title from a feed is text: ``[/b]`` (a closing tag with no opener) and ``[red]`` are printed as written, by the
    console tree and by ``--html``, never parsed as rich markup (issue 13 item 8)."""
    from alphaloom.cli import app

    title = "Fund [/b] buys [red]BTC[/red] dip [bold]now"
    story = f"markup-{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        order_id, decision_id, run_id = conn.execute(
            text("""select client_order_id, decision_id, run_id from audit.orders
                    where account = 'ops-fan' and decision_id is not null order by created_at limit 1""")
        ).one()
        conn.execute(
            text("""insert into raw.news (id, url, title, published_at, first_seen_at, first_seen_assumed, run_id)
                    values (:id, null, :t, now(), now(), false, :r)"""),
            {"id": story, "t": title, "r": run_id},
        )
        conn.execute(
            text("""insert into audit.lineage (run_id, child_table, child_id, parent_table, parent_key)
                    values (:r, 'audit.decisions', :d, 'raw.news', jsonb_build_object('id', cast(:id as text)))"""),
            {"r": run_id, "d": decision_id, "id": story},
        )
    try:
        out = tmp_path / "markup.html"
        result = CliRunner().invoke(app, ["explain", order_id, "--html", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert title in result.output
        assert title in out.read_text()
    finally:
        with engine.begin() as conn:
            conn.execute(text("delete from audit.lineage where parent_table = 'raw.news' and parent_key->>'id' = :id"),
                         {"id": story})  # fmt: skip
            conn.execute(text("delete from raw.news where id = :id"), {"id": story})


def test_health_is_green_on_fresh_data_and_red_on_stale_data_or_a_tripped_kill_switch(engine, data) -> None:
    from alphaloom.ops.kill_switch import set_kill_switch

    settings = get_settings()
    symbols = [s for s in data.symbols if s.endswith("/USDT")]  # crypto trades every hour; stocks pause
    fresh = check_health(engine, settings, now=data.end, symbols=symbols, prefect_api_url="")
    for name in ("database", "migrations", "freshness", "kill_switch"):
        assert fresh.get(name).status == "ok", fresh.get(name)
    assert fresh.get("prefect_api").status == "warn"  # no server configured: the temporary API is used
    assert "decide" in fresh.get("runs").details

    stale = check_health(engine, settings, now=data.end + timedelta(hours=5), symbols=symbols, prefect_api_url="")
    assert not stale.healthy and stale.get("freshness").status == "fail"
    assert set(stale.get("freshness").details["stale"]) == set(symbols)

    with engine.begin() as conn:
        set_kill_switch(conn, True, "health drill", "pytest")
    try:
        tripped = check_health(engine, settings, now=data.end, symbols=symbols, prefect_api_url="")
        assert not tripped.healthy and tripped.get("kill_switch").status == "fail"
        result = CliRunner().invoke(
            __import__("alphaloom.cli", fromlist=["app"]).app,
            ["health", "--now", data.end.strftime("%Y-%m-%dT%H:%M:%S"), "--symbols", ",".join(symbols)],
        )
        assert result.exit_code == 1 and "UNHEALTHY" in result.output
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "drill over", "pytest")
