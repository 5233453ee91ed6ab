"""The four flows end to end through a real Prefect API on generated data, against the session database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from alphaloom.ingest.sampledata import SampleData, generate
from alphaloom.ops.kill_switch import set_kill_switch
from alphaloom.settings import get_settings
from flows.build_features import build_features
from flows.decide import decide_flow
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices

STEPS = 96
COUNTED = ("raw.ohlcv", "raw.news", "raw.news_sightings", "audit.decisions", "audit.orders", "audit.fills")


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"select count(*) from {t}")).scalar_one() for t in COUNTED}


def _run_pipeline(data: SampleData) -> dict[str, str]:
    """Run the four flows; returns flow name -> Prefect flow-run id."""
    states = {
        "ingest_prices": ingest_prices([str(p) for p in data.price_files], return_state=True),
        "ingest_news": ingest_news([str(p) for p in data.news_files], return_state=True),
        "build_features": build_features(return_state=True),
        "decide": decide_flow(symbols=list(data.symbols), as_of=data.end, steps=STEPS, return_state=True),
    }
    for name, state in states.items():
        assert state.is_completed(), (name, state)
    return {name: str(state.state_details.flow_run_id) for name, state in states.items()}


@pytest.fixture(scope="module")
def pipeline(engine, prefect_harness, tmp_path_factory) -> tuple[SampleData, dict[str, str]]:
    data = generate(Path(tmp_path_factory.mktemp("pipeline")), seed=11, days=45)
    return data, _run_pipeline(data)


def test_every_flow_run_writes_its_audit_run_keyed_by_the_prefect_flow_run_id(engine, pipeline) -> None:
    _, run_ids = pipeline
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                text("select run_id, flow from audit.runs where run_id = any(:ids) and status = 'completed'"),
                {"ids": list(run_ids.values())},
            ).all()
        )
    assert rows == {run_id: flow for flow, run_id in run_ids.items()}


def test_rows_carry_the_run_id_of_the_flow_run_that_wrote_them(engine, pipeline) -> None:
    data, run_ids = pipeline
    with engine.connect() as conn:
        bar_runs = (
            conn.execute(
                text("select distinct run_id from raw.ohlcv where symbol = any(:s) and exchange = :e"),
                {"s": list(data.symbols), "e": data.exchange},
            )
            .scalars()
            .all()
        )
        account = {"a": get_settings().account}  # other test modules use their own accounts in the session database
        decision_runs = (
            conn.execute(text("select distinct run_id from audit.decisions where account = :a"), account)
            .scalars()
            .all()
        )
        order_runs = (
            conn.execute(text("select distinct run_id from audit.orders where account = :a"), account).scalars().all()
        )
    assert bar_runs == [run_ids["ingest_prices"]]
    assert set(decision_runs) == {run_ids["decide"]}
    assert set(order_runs) == {run_ids["decide"]}


def test_decisions_trade_with_unique_client_order_ids_and_see_news_point_in_time(engine, pipeline) -> None:
    with engine.connect() as conn:
        account = {"a": get_settings().account}
        orders = conn.execute(
            text("select client_order_id, decision_id, status from audit.orders where account = :a"), account
        ).all()
        decisions = conn.execute(text("select count(*) from audit.decisions where account = :a"), account).scalar_one()
        with_news = conn.execute(
            text("select count(*) from audit.decisions where jsonb_array_length(coalesce(inputs->'news', '[]')) > 0")
        ).scalar_one()
        late_news = conn.execute(
            text(
                """select count(*) from audit.lineage l join raw.news n on n.id = l.parent_key->>'id'
                   join audit.decisions d on d.decision_id = l.child_id
                   where l.parent_table = 'raw.news' and n.first_seen_at > d.as_of"""
            )
        ).scalar_one()
    assert decisions > 0 and len(orders) > 0
    assert len({o.client_order_id for o in orders}) == len(orders)
    assert all(o.status == "filled" for o in orders)
    assert with_news > 0, "file-sourced news must be visible to historical decisions (assumed first-seen times)"
    assert late_news == 0


def test_a_second_run_of_the_whole_pipeline_duplicates_nothing(engine, pipeline) -> None:
    data, _ = pipeline
    before = _counts(engine)
    _run_pipeline(data)
    assert _counts(engine) == before


def test_kill_switch_on_means_no_order_is_sent(engine, pipeline) -> None:
    data, _ = pipeline
    with engine.begin() as conn:
        set_kill_switch(conn, True, "test", "pytest")
    try:
        before = _counts(engine)
        earlier = data.end - timedelta(hours=STEPS)  # steps never decided before, so they would trade
        state = decide_flow(symbols=list(data.symbols), as_of=earlier, steps=STEPS, return_state=True)
        assert state.is_completed()
        run_id = str(state.state_details.flow_run_id)
        with engine.connect() as conn:
            blocked = conn.execute(
                text("select count(*) from audit.risk_checks where run_id = :r and check_name like 'kill_switch%' "
                     "and not approved"),
                {"r": run_id},
            ).scalar_one()  # fmt: skip
        after = _counts(engine)
        assert blocked > 0, "the run must have wanted to trade for this test to mean anything"
        assert after["audit.orders"] == before["audit.orders"]
        assert after["audit.fills"] == before["audit.fills"]
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test done", "pytest")


def test_rerunning_a_finished_flow_run_reuses_its_run_id_and_duplicates_nothing(engine, pipeline) -> None:
    """What an operator's "Retry"/rerun in the Prefect UI does: the same flow run goes back to Scheduled and runs its
    flow again with its recorded parameters. Its audit run row is reopened, not doubled, and no output is repeated."""
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.states import Scheduled

    _, run_ids = pipeline
    before = _counts(engine)
    with get_client(sync_client=True) as client:
        for name, flow in (("ingest_news", ingest_news), ("decide", decide_flow)):
            flow_run_id = uuid.UUID(run_ids[name])
            client.set_flow_run_state(flow_run_id, Scheduled(), force=True)
            flow_run = client.read_flow_run(flow_run_id)
            state = run_flow(flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")
            assert state.is_completed(), (name, state)
            assert client.read_flow_run(flow_run_id).run_count == 2, "the same flow run ran twice"
    assert _counts(engine) == before
    with engine.connect() as conn:
        runs = conn.execute(
            text("select run_id, status from audit.runs where run_id = any(:ids)"),
            {"ids": [run_ids["ingest_news"], run_ids["decide"]]},
        ).all()
    assert sorted(runs) == sorted((run_ids[n], "completed") for n in ("ingest_news", "decide"))
