"""Walk-forward of the team (issue 14 item 8): team parameters chosen on each in-sample window with the replay engine,
traded out of sample with the full audit, the out-of-sample stretches chained on the walk-forward page and recorded.

Own exchange, symbols and a stretch of time 200 days before the sample data's default end (no other module's bars or
stories); every replay is its own account, so only rows of this module's runs are counted."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from alphaloom.backtest.team_grid import MAX_TEAM_CANDIDATES, TeamCandidate, parse_team_grid
from alphaloom.backtest.team_walkforward import TeamWalkForwardSpec, TeamWindow, objective_score
from alphaloom.cli import app
from alphaloom.ingest.sampledata import DEFAULT_END, SampleData, generate
from alphaloom.settings import get_settings
from flows.build_features import build_features
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices
from flows.team_walk_forward import replay_candidate, team_walk_forward_flow

EXCHANGE = "twfx"
GRID = {"thresholds": "0.1,0.3", "weights": "default", "sizing": "fixed", "exits": "none,1:2"}
IN_SAMPLE, OUT_SAMPLE = 12, 6


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[SampleData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("twfhome")))
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("twf")), seed=31, days=12, exchange=EXCHANGE,
                          end=DEFAULT_END - timedelta(days=200))  # fmt: skip
        for state in (
            ingest_prices([str(p) for p in sample.price_files], quality=False, return_state=True),
            ingest_news([str(p) for p in sample.news_files], quality=False, return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        yield sample
    get_settings.cache_clear()


def _symbols(data: SampleData) -> list[str]:
    return [s for s in data.symbols if "/" in s][:2]


def _range(data: SampleData, bars: int) -> dict[str, object]:
    """The last ``bars`` bars before the end (the features have history before them)."""
    return {"start": data.end - timedelta(hours=bars), "end": data.end}


def test_the_team_grid_is_small_explicit_and_checked() -> None:
    grid = parse_team_grid("0.2,0.3", "default,equal", "fixed", "none,2:4")
    assert len(grid) == 8 and grid[0] == TeamCandidate(0.2, "default", "fixed")
    assert (
        grid[1].stop_loss_pct == 2
        and grid[1].take_profit_pct == 4
        and grid[1].label() == "t0.2 default fixed sl/tp 2:4"
    )
    assert grid[1].settings_update() == {
        "risk.sizing_mode": "fixed",
        "risk.stop_loss_pct": 2,
        "risk.take_profit_pct": 4,
    }
    assert grid[-1].base_weights == {"technical": 1.0, "news": 1.0, "llm": 1.0}
    for args, problem in (
        (("0.2,x", "default", "fixed", "none"), "--thresholds: 'x' is not a number"),
        (("1.5", "default", "fixed", "none"), "--thresholds: '1.5' is not in (0, 1]"),
        (("0.2,0.20", "default", "fixed", "none"), "--thresholds repeats a value: '0.2,0.20'"),
        (("0.2", "default", "fixed", "2:4,2.0:4"), "--exits repeats a value"),
        (("0.2", "heavy", "fixed", "none"), "--weights: 'heavy' is not one of default, technical, news, equal"),
        (("0.2", "default", "martingale", "none"), "--sizing: 'martingale' is not one of"),
        (("0.2", "default", "fixed", "2"), "--exits: '2' is not 'none' or STOP:TAKE"),
        (("0.2", "default", "fixed", "120:4"), "--exits: '120:4'"),
        (("0.2", "default", "", "none"), "--sizing must be a comma-separated list"),
        (("0.1,0.2,0.3", "default,equal,news", "fixed,kelly", "none"), "the team grid has 18 candidates"),
    ):
        with pytest.raises(ValueError, match=re.escape(problem)):
            parse_team_grid(*args)
    assert MAX_TEAM_CANDIDATES == 16


def _windows(engine: Engine, run_id: str) -> list:
    with engine.connect() as conn:
        return conn.execute(text("select * from audit.walk_forward_windows where run_id = :r order by window_no"),
                            {"r": run_id}).all()  # fmt: skip


def test_the_team_walk_forward_chooses_in_sample_trades_out_of_sample_audited_and_chains(engine, data) -> None:
    symbols = _symbols(data)
    result = team_walk_forward_flow(symbols=symbols, in_sample=IN_SAMPLE, out_sample=OUT_SAMPLE,
                                    **_range(data, IN_SAMPLE + 2 * OUT_SAMPLE), **GRID)  # fmt: skip
    run_id = str(result["run_id"])
    windows = _windows(engine, run_id)
    assert len(windows) == len(result["windows"]) == 2
    candidates = parse_team_grid(*GRID.values())
    settings = get_settings()
    spec = TeamWalkForwardSpec(symbols, candidates, IN_SAMPLE, OUT_SAMPLE, fill_at=settings.backtest_fill_at)
    bar = timedelta(hours=1)

    oos_returns = []
    for row in windows:
        in_times = [row.in_sample_start + k * bar for k in range(IN_SAMPLE)]
        assert in_times[-1] == row.in_sample_end
        # Every candidate replayed again, apart from the walk-forward, on the same in-sample times.
        scores = [objective_score(replay_candidate(spec, settings, c, in_times, parent_run="test-separate",
                                                   label={"check": row.window_no}).metrics, "total_return")
                  for c in candidates]  # fmt: skip
        assert len(set(scores)) > 1, "the candidates must differ in sample for the choice to mean anything"
        best = max(s for s in scores if math.isfinite(s))
        first_best = candidates[scores.index(best)]
        assert row.params == first_best.as_dict()
        assert row.in_sample_score == pytest.approx(best)
        assert row.candidates == pytest.approx({c.label(): s for c, s in zip(candidates, scores, strict=True)})
        assert row.fast is None and row.slow is None

        # The out-of-sample stretch: its own backtest run under the walk-forward run, audited in full.
        with engine.connect() as conn:
            replay = conn.execute(text("select flow, status, parameters from audit.runs where run_id = :r"),
                                  {"r": row.replay_run_id}).one()  # fmt: skip
            decisions = conn.execute(
                text("select count(*), min(as_of), max(as_of), count(distinct account) from audit.decisions "
                     "where run_id = :r"), {"r": row.replay_run_id}).one()  # fmt: skip
            opinions = conn.execute(
                text("select count(*) from audit.agent_outputs o join audit.decisions d using (decision_id) "
                     "where d.run_id = :r"), {"r": row.replay_run_id}).scalar_one()  # fmt: skip
            fills = conn.execute(
                text("select count(*) from audit.fills f join audit.orders o using (client_order_id) "
                     "where o.run_id = :r"), {"r": row.replay_run_id}).scalar_one()  # fmt: skip
        assert (replay.flow, replay.status) == ("backtest", "completed")
        assert replay.parameters["walk_forward_run"] == run_id and replay.parameters["phase"] == "out_of_sample"
        assert replay.parameters["candidate"] == row.params and replay.parameters["audit"] == "full"
        assert decisions[0] == OUT_SAMPLE * len(symbols) and decisions[3] == 1
        assert (decisions[1], decisions[2]) == (row.out_of_sample_start, row.out_of_sample_end)
        assert opinions >= decisions[0]  # every decision's agent opinions are recorded with it
        assert fills == row.out_of_sample_fills
        oos_returns.append(row.out_of_sample_return)

    with engine.connect() as conn:
        summary = conn.execute(text("select * from audit.walk_forward_runs where run_id = :r"), {"r": run_id}).one()
        trials = conn.execute(
            text("select r.parameters->>'audit' as audit, (select count(*) from audit.agent_outputs o "
                 "where o.run_id = r.run_id) as opinions from audit.runs r "
                 "where r.parameters->>'walk_forward_run' = :r and r.parameters->>'phase' = 'in_sample'"),
            {"r": run_id}).all()  # fmt: skip
    # The search is replayed with audit none: no agent opinions recorded, the metrics as with the full audit (above).
    assert len(trials) == len(windows) * len(candidates) and {(t.audit, t.opinions) for t in trials} == {("none", 0)}
    assert summary.strategy == "team" and summary.grid == [c.as_dict() for c in candidates]
    chained = math.prod(1 + r for r in oos_returns) - 1
    assert summary.metrics["total_return"] == pytest.approx(chained) == pytest.approx(result["total_return"])

    page = Path(str(result["page"]))
    assert page == settings.home / "reports" / run_id / "walk_forward.html" and summary.page == str(page)
    body = page.read_text()
    assert "Walk-forward of the team" in body and body.count("<svg") == 2
    assert f"{chained:.2%}" in body  # the chained out-of-sample return, in the metrics
    table = body.split("<h2>Windows</h2>", 1)[1]
    assert table.count("<tr>") == 1 + len(windows) and "parameters chosen" in table
    for w in result["windows"]:  # type: ignore[union-attr]
        assert f"<td>{w['choice']}</td>" in table
        assert f"{w['out_of_sample_start']:%Y-%m-%d %H:%M} .. {w['out_of_sample_end']:%Y-%m-%d %H:%M}" in table
        assert f"{w['out_of_sample_return']:+.2%}" in table


def test_a_team_walk_forward_whose_windows_do_not_fit_fails_its_run(engine, data) -> None:
    state = team_walk_forward_flow(symbols=_symbols(data), in_sample=8, out_sample=4, return_state=True,
                                   **_range(data, 10), **GRID)  # fmt: skip
    assert state.is_failed()
    with engine.connect() as conn:
        run = conn.execute(text("select flow, status, error from audit.runs where run_id = :r"),
                           {"r": str(state.state_details.flow_run_id)}).one()  # fmt: skip
        trials = conn.execute(text("select count(*) from audit.runs where parameters->>'walk_forward_run' = :r"),
                              {"r": str(state.state_details.flow_run_id)}).scalar_one()  # fmt: skip
    assert (run.flow, run.status) == ("walk_forward", "failed")
    assert "10 decision times cannot hold one window of 8 + 4" in run.error and trials == 0
    before = {"start": data.start - timedelta(days=30), "end": data.start - timedelta(days=20)}
    empty = team_walk_forward_flow(symbols=_symbols(data), return_state=True, **before, **GRID)
    assert empty.is_failed() and "no bars stored for" in str(empty.message)


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_the_team_walk_forward_command_refuses_a_bad_grid_in_one_line(engine) -> None:
    with engine.connect() as conn:
        before = conn.execute(text("select count(*) from audit.runs")).scalar_one()
    for args, problem in (
        (["--thresholds", "0.1,zero"], "error: --thresholds: 'zero' is not a number"),
        (["--weights", "default,heavy"], "error: --weights: 'heavy' is not one of"),
        (["--exits", "2-4"], "error: --exits: '2-4' is not 'none' or STOP:TAKE"),
        (["--thresholds", "0.1,0.2,0.3", "--weights", "default,equal,news", "--sizing", "fixed,kelly"],
         "error: the team grid has 36 candidates (3 thresholds x 3 weights x 2 sizings x 2 exits), more than 16"),
        (["--in-sample", "1"], "error: --in-sample must be at least 2"),
    ):  # fmt: skip
        out = CliRunner().invoke(app, ["walk-forward", "--strategy", "team", *args])
        assert out.exit_code == 2, out.output
        assert _lines(out.output) == [_lines(out.output)[0]] and _lines(out.output)[0].startswith(problem), out.output
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from audit.runs")).scalar_one() == before  # a mistake is not a run


def test_the_team_walk_forward_command_prints_the_windows_and_the_page(engine, data) -> None:
    window = _range(data, 10)
    out = CliRunner().invoke(app, ["walk-forward", "--strategy", "team", "--symbols", ",".join(_symbols(data)),
                                   "--start", f"{window['start']:%Y-%m-%dT%H:%M:%S}",
                                   "--end", f"{window['end']:%Y-%m-%dT%H:%M:%S}", "--thresholds", "0.2",
                                   "--weights", "default,technical", "--exits", "none",
                                   "--in-sample", "6", "--out-sample", "4"])  # fmt: skip
    assert out.exit_code == 0, out.output
    flat = out.output.replace("\n", " ")
    run_id = re.search(r"team walk-forward windows \(run ([0-9a-f-]+)\)", flat)
    page = re.search(r"page: (\S+)", out.output.replace("\n", ""))
    assert run_id and page and "out-of-sample only" in flat, out.output
    assert len(_windows(engine, run_id.group(1))) == 1 and Path(page.group(1)).exists()


def test_a_window_is_a_plain_value() -> None:
    """Per-window work is a function of (spec, settings, window, candidates, parent run): windows can be sent apart."""
    import pickle

    window = TeamWindow(1, [DEFAULT_END], [DEFAULT_END + timedelta(hours=1)])
    spec = TeamWalkForwardSpec(["A/USDT"], parse_team_grid("0.2", "default", "fixed", "none"), 2, 2)
    assert pickle.loads(pickle.dumps((spec, window))) == (spec, window)
