"""Walk-forward as a Prefect flow and as `alphaloom walk-forward`: an audit run with the in-sample choice and the
out-of-sample results per window recorded, and a self-contained HTML page with the chained out-of-sample curve."""

from __future__ import annotations

import pickle
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from support.prices import prices
from typer.testing import CliRunner

from agents.trader import quantity_step
from alphaloom.backtest.walkforward import (
    Costs,
    WalkForwardResult,
    combine_windows,
    parameter_grid,
    run_window,
    walk_forward,
    window_inputs,
)
from alphaloom.backtest.walkforward_run import WalkForwardSpec, load_window, walk_forward_arguments, window_specs
from alphaloom.cli import app
from alphaloom.settings import get_settings
from flows.walk_forward import walk_forward_flow

SYMBOLS = ["WFA/USDT", "WFB/USDT"]
GRID = {"fast": [3, 5, 10], "slow": [10, 20, 40]}


@dataclass
class Bars:
    exchange: str
    open_: pd.DataFrame
    close: pd.DataFrame


@pytest.fixture(scope="module")
def bars(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bars]:
    """300 hourly bars of two symbols on an exchange of this module, stored to 6 decimals (as read back)."""
    exchange = f"wf{uuid.uuid4().hex[:6]}"
    open_, close = (frame.round(6) for frame in prices(300))
    open_.columns = close.columns = SYMBOLS
    rows = [{"e": exchange, "s": s, "t": ts.to_pydatetime(), "o": f"{open_.at[ts, s]:.6f}", "c": f"{close.at[ts, s]:.6f}",
             "h": f"{max(open_.at[ts, s], close.at[ts, s]):.6f}", "l": f"{min(open_.at[ts, s], close.at[ts, s]):.6f}"}
            for ts in close.index for s in SYMBOLS]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": f"bars-{exchange}"})
        conn.execute(
            text(f"""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                     values (:e, :s, '1h', :t, :o, :h, :l, :c, 1, 'bars-{exchange}')"""),
            rows,
        )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", exchange)
        mp.setenv("ALPHALOOM_TIMEFRAME", "1h")
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("wfhome")))
        get_settings.cache_clear()
        yield Bars(exchange, open_, close)
    get_settings.cache_clear()


def _expected(bars: Bars) -> WalkForwardResult:
    """The pure walk-forward on the same bars with the settings' paper costs."""
    settings = get_settings()
    costs = Costs(initial_cash=float(settings.starting_cash), order_notional=settings.order_notional,
                  fee_bps=float(settings.paper.fee_bps), slippage_bps=float(settings.paper.slippage_bps),
                  quantity_steps={s: quantity_step(s) for s in SYMBOLS})  # fmt: skip
    return walk_forward(bars.open_, bars.close, grid=parameter_grid(GRID["fast"], GRID["slow"]), in_sample=120,
                        out_sample=60, costs=costs, periods_per_year=8760)  # fmt: skip


def _check_recorded(engine: Engine, run_id: str, expected: WalkForwardResult, page: Path) -> None:
    with engine.connect() as conn:
        run = conn.execute(text("select flow, status, parameters from audit.runs where run_id = :r"),
                           {"r": run_id}).one()  # fmt: skip
        summary = conn.execute(text("select * from audit.walk_forward_runs where run_id = :r"), {"r": run_id}).one()
        windows = conn.execute(text("select * from audit.walk_forward_windows where run_id = :r order by window_no"),
                               {"r": run_id}).all()  # fmt: skip
    assert (run.flow, run.status) == ("walk_forward", "completed")
    assert run.parameters["in_sample"] == 120 and run.parameters["symbols"] == SYMBOLS
    assert summary.symbols == SYMBOLS and summary.objective == "total_return" and summary.page == str(page)
    assert summary.grid == [list(p) for p in parameter_grid(GRID["fast"], GRID["slow"])]
    assert summary.metrics["total_return"] == pytest.approx(expected.out_of_sample.total_return)
    assert summary.metrics["trades"] == expected.out_of_sample.trades
    want = expected.windows.to_dict("records")
    assert len(windows) == len(want) == 3
    for row, w in zip(windows, want, strict=True):
        assert (row.fast, row.slow, row.out_of_sample_fills) == (w["fast"], w["slow"], w["out_of_sample_fills"])
        assert pd.Timestamp(row.in_sample_start) == w["in_sample_start"]
        assert pd.Timestamp(row.out_of_sample_start) == w["out_of_sample_start"]
        assert pd.Timestamp(row.out_of_sample_end) == w["out_of_sample_end"]
        assert row.in_sample_score == pytest.approx(w["in_sample_total_return"])
        assert row.out_of_sample_return == pytest.approx(w["out_of_sample_return"])


def _check_page(page: Path, expected: WalkForwardResult) -> None:
    body = page.read_text()
    assert body.startswith("<!doctype html>")
    # self-contained: no script, no stylesheet or image from elsewhere (the SVG namespace is not a fetch)
    assert "<script" not in body and "<link" not in body and "<img" not in body
    assert re.findall(r"https?://[^\"' ]+", body) == ["http://www.w3.org/2000/svg"] * body.count("<svg")
    assert body.count("<svg") == 2  # the chained out-of-sample equity and its drawdown
    assert "Chained out-of-sample equity" in body and "Out-of-sample metrics (windows chained)" in body
    for n, w in enumerate(expected.windows.to_dict("records"), start=1):  # each stretch labelled with its choice
        assert f">W{n} {w['fast']}/{w['slow']}</text>" in body
        assert f"{w['out_of_sample_start']:%Y-%m-%d %H:%M} .. {w['out_of_sample_end']:%Y-%m-%d %H:%M}" in body
        assert f"{w['out_of_sample_return']:+.2%}" in body
    table = body.split("<h2>Windows</h2>", 1)[1]
    assert table.count("<tr>") == 1 + len(expected.windows)  # header + one row per window
    assert f"{expected.out_of_sample.total_return:.2%}" in body  # the chained curve's total return, in the metrics


def test_walk_forward_flow_records_the_run_its_windows_and_a_page(engine: Engine, bars: Bars, prefect_harness) -> None:
    result = walk_forward_flow(symbols=SYMBOLS, in_sample=120, out_sample=60, **GRID)
    expected = _expected(bars)
    page = Path(str(result["page"]))
    assert page == get_settings().home / "reports" / str(result["run_id"]) / "walk_forward.html"
    assert result["windows"] == 3 and result["total_return"] == pytest.approx(expected.out_of_sample.total_return)
    _check_recorded(engine, str(result["run_id"]), expected, page)
    _check_page(page, expected)


def test_walk_forward_flow_with_windows_too_large_fails_its_run(engine: Engine, bars: Bars, prefect_harness) -> None:
    state = walk_forward_flow(symbols=SYMBOLS, in_sample=290, out_sample=60, return_state=True, **GRID)
    assert state.is_failed()
    with engine.connect() as conn:
        run = conn.execute(
            text("select status, error from audit.runs where run_id = :r"), {"r": str(state.state_details.flow_run_id)}
        ).one()
    assert run.status == "failed" and "300 bars cannot hold one window of 290 + 60 bars" in run.error


def test_walk_forward_command_records_the_run_and_writes_the_page(engine: Engine, bars: Bars) -> None:
    out = CliRunner().invoke(app, ["walk-forward", "--symbols", ",".join(SYMBOLS), "--fast", "3,5,10",
                                   "--slow", "10,20,40", "--in-sample", "120", "--out-sample", "60"])  # fmt: skip
    assert out.exit_code == 0, out.output
    run_id = re.search(r"walk-forward windows \(run ([0-9a-f-]+)\)", out.output.replace("\n", " "))
    page = re.search(r"page: (\S+)", out.output.replace("\n", ""))
    assert run_id and page, out.output
    expected = _expected(bars)
    _check_recorded(engine, run_id.group(1), expected, Path(page.group(1)))
    _check_page(Path(page.group(1)), expected)


def test_a_window_specification_loads_exactly_the_window_cut_from_the_whole_history(engine: Engine, bars: Bars) -> None:
    """What the flow sends to a task is a few values (``WindowSpec``), not bars; the task that loads the window's bars
    from the database gets the very frames and targets ``window_inputs`` cuts from the whole history, so its outcome
    and the chained result are the same to the bit."""
    settings = get_settings()
    spec = WalkForwardSpec(SYMBOLS, GRID["fast"], GRID["slow"], in_sample=120, out_sample=60)
    with engine.connect() as conn:
        arguments = walk_forward_arguments(conn, settings, spec)
        specs = window_specs(conn, settings, spec)
        loaded = [load_window(conn, window) for window in specs]
    whole = window_inputs(**arguments)
    assert len(specs) == len(whole) == 3 and [w.warmup for w in specs] == [0, 39, 39]
    assert max(len(pickle.dumps(window)) for window in specs) < 3000  # bytes: the bars stay in the database
    for one, other in zip(loaded, whole, strict=True):
        pd.testing.assert_frame_equal(one.open_, other.open_, check_exact=True)
        pd.testing.assert_frame_equal(one.close, other.close, check_exact=True)
        assert one.targets.keys() == other.targets.keys()
        for params in one.targets:
            pd.testing.assert_frame_equal(one.targets[params], other.targets[params], check_exact=True)
    from_specs = combine_windows(specs, [run_window(w) for w in loaded])
    from_whole = walk_forward(**arguments)
    pd.testing.assert_frame_equal(from_specs.windows, from_whole.windows, check_exact=True)
    pd.testing.assert_series_equal(from_specs.out_of_sample_equity, from_whole.out_of_sample_equity, check_exact=True)
    assert from_specs.out_of_sample == from_whole.out_of_sample
