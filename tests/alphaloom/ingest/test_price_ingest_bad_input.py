"""Bad price input never costs good data (issue 13): each case through the real ingest (the CLI in-process, or the
flow) on the session database, with good files in the same command that must be stored in full."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from alphaloom.cli import app
from alphaloom.settings import get_settings

runner = CliRunner()
HEADER = "exchange,symbol,timeframe,ts,open,high,low,close,volume"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway home for the whole module (never the checkout's .alphaloom)."""
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_HOME", str(path))
        get_settings.cache_clear()
        yield path
    get_settings.cache_clear()


@pytest.fixture()
def ingest(engine, prefect_harness, home) -> Iterator[None]:
    yield


def _symbol() -> str:
    return f"B{uuid.uuid4().hex[:6].upper()}/USD"


def _bars(symbol: str, start_hour: int = 0, n: int = 3, close: float = 100.0) -> list[str]:
    """``n`` consecutive good hourly bars of ``symbol`` as CSV lines, closes around ``close``."""
    lines = []
    for i in range(start_hour, start_hour + n):
        c = close + i * 0.25
        lines.append(f"t,{symbol},1h,2025-03-01T{i:02d}:00:00Z,{c},{c + 1},{c - 1},{c},{10 + i}")
    return lines


def _csv(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_bytes((newline.join([HEADER, *lines]) + newline).encode())
    return path


def _stored(engine: Engine, symbol: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("select ts, close from raw.ohlcv where symbol = :s order by ts"), {"s": symbol}).all()
    return [(f"{ts:%H}", str(close)) for ts, close in rows]


def _quarantined(engine: Engine, source: Path | str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("select location, reason from raw.quarantine where source = :s order by id"), {"s": str(source)}
        ).all()
    return [(loc, reason) for loc, reason in rows]


def _cli(*args: str):
    return runner.invoke(app, ["ingest", "prices", "--no-quality", *args])


def test_absurd_values_are_quarantined_at_ingest_and_the_rest_stored(engine, ingest, tmp_path) -> None:
    sym, other = _symbol(), _symbol()
    absurd = _bars(sym, 0, 4)
    absurd[2] = f"t,{sym},1h,2025-03-01T02:00:00Z,100,1e308,99,1e308,10"
    huge_volume = f"t,{sym},1h,2025-03-01T04:00:00Z,101,102,100,101,1e30"
    bad = _csv(tmp_path / "absurd.csv", [*absurd, huge_volume])
    good = _csv(tmp_path / "good.csv", _bars(other, 0, 5))
    result = _cli(str(bad), str(good))
    assert result.exit_code == 0, result.output
    assert [h for h, _ in _stored(engine, sym)] == ["00", "01", "03"]
    assert len(_stored(engine, other)) == 5
    reasons = dict(_quarantined(engine, bad))
    assert "above the sane maximum" in reasons["line 4"] and "1e308" in reasons["line 4"]
    assert "volume 1e30 is above the sane maximum" in reasons["line 6"]


def test_a_close_jump_against_the_stored_history_is_quarantined(engine, ingest, tmp_path, monkeypatch) -> None:
    sym = _symbol()
    assert _cli(str(_csv(tmp_path / "history.csv", _bars(sym, 0, 3)))).exit_code == 0
    # The next file starts 50x above the last stored close (a misplaced decimal point); the bar after it is back in
    # line, and is compared with the last accepted close, not with the outlier.
    later = _bars(sym, 3, 3)
    later[0] = f"t,{sym},1h,2025-03-01T03:00:00Z,5000,5001,4999,5000,10"
    jump = _csv(tmp_path / "jump.csv", later)
    result = _cli(str(jump))
    assert result.exit_code == 0, result.output
    assert [h for h, _ in _stored(engine, sym)] == ["00", "01", "02", "04", "05"]
    ((location, reason),) = _quarantined(engine, jump)
    assert location == f"t {sym} 1h 2025-03-01T03:00:00+00:00"
    assert "close 5000 is more than 10x the previous close 100.5" in reason

    # Configurable: a looser limit lets the same bar in.
    monkeypatch.setenv("ALPHALOOM_INGEST_MAX_CLOSE_JUMP", "100")
    get_settings.cache_clear()
    try:
        assert _cli(str(jump)).exit_code == 0
    finally:
        monkeypatch.delenv("ALPHALOOM_INGEST_MAX_CLOSE_JUMP")
        get_settings.cache_clear()
    assert len(_stored(engine, sym)) == 6


def test_a_parquet_null_text_cell_quarantines_the_row_and_later_files_load(engine, ingest, tmp_path) -> None:
    sym, later_sym = _symbol(), _symbol()
    frame = pd.DataFrame(
        {
            "exchange": ["t", None, "t", "t"],
            "symbol": [sym, sym, sym, sym],
            "timeframe": ["1h"] * 4,
            "ts": pd.to_datetime(["2025-03-01T00:00Z", "2025-03-01T01:00Z", None, "2025-03-01T03:00Z"]),
            "open": [100.0, 100.0, 100.0, 100.0],
            "high": [101.0, 101.0, 101.0, 101.0],
            "low": [99.0, 99.0, 99.0, 99.0],
            "close": [100.5, 100.5, 100.5, 100.5],
            "volume": [1.0, 2.0, 3.0, 4.0],
        }
    )
    parquet = tmp_path / "nulls.parquet"
    frame.to_parquet(parquet)
    later = _csv(tmp_path / "later.csv", _bars(later_sym, 0, 4))
    result = _cli(str(parquet), str(later))
    assert result.exit_code == 0, result.output
    assert [h for h, _ in _stored(engine, sym)] == ["00", "03"]
    assert len(_stored(engine, later_sym)) == 4
    assert _quarantined(engine, parquet) == [("row 2", "exchange is empty"), ("row 3", "ts is empty")]


def test_a_csv_with_cr_only_line_ends_is_read(engine, ingest, tmp_path) -> None:
    sym, later_sym = _symbol(), _symbol()
    old_mac = _csv(tmp_path / "cr.csv", _bars(sym, 0, 4), newline="\r")
    bad_row_too = _csv(tmp_path / "cr_bad.csv", [*_bars(later_sym, 0, 2), f"t,{later_sym},1h,x,1,1,1,1,1"], "\r")
    result = _cli(str(old_mac), str(bad_row_too))
    assert result.exit_code == 0, result.output
    assert len(_stored(engine, sym)) == 4 and len(_stored(engine, later_sym)) == 2
    assert _quarantined(engine, bad_row_too) == [("line 4", "ts 'x' is not a valid timestamp")]


def test_a_changed_bar_in_a_later_file_of_the_same_command_is_a_revision(engine, ingest, tmp_path) -> None:
    from flows.ingest_prices import ingest_prices

    sym = _symbol()
    first = _csv(tmp_path / "first.csv", _bars(sym, 0, 3))
    changed = _bars(sym, 0, 3)
    changed[1] = f"t,{sym},1h,2025-03-01T01:00:00Z,100.25,101.25,99.25,100.75,11"
    second = _csv(tmp_path / "second.csv", changed)
    results = ingest_prices([str(first), str(second)], quality=False)
    assert _stored(engine, sym)[1] == ("01", "100.25")
    ((location, reason),) = _quarantined(engine, second)
    assert location == f"t {sym} 1h 2025-03-01T01:00:00+00:00"
    assert "revision of a stored bar" in reason and "close 100.25 -> 100.75" in reason
    counts = [{k: r[k] for k in ("staged", "inserted", "unchanged", "revisions", "quarantined")} for r in results]
    assert counts == [
        {"staged": 3, "inserted": 3, "unchanged": 0, "revisions": 0, "quarantined": 0},
        {"staged": 3, "inserted": 0, "unchanged": 2, "revisions": 1, "quarantined": 1},
    ]


def test_a_malformed_csv_row_is_quarantined_and_the_others_kept(engine, ingest, tmp_path) -> None:
    sym = _symbol()
    lines = _bars(sym, 0, 4)
    lines[1] += ",surplus"
    path = _csv(tmp_path / "ragged.csv", lines)
    result = _cli(str(path))
    assert result.exit_code == 0, result.output
    assert [h for h, _ in _stored(engine, sym)] == ["00", "02", "03"]
    assert _quarantined(engine, path) == [("line 3", "expected 9 fields, saw 10")]


def test_price_files_over_http(engine, ingest, tmp_path) -> None:
    sym = _symbol()
    body = (HEADER + "\n" + "\n".join(_bars(sym, 0, 3)) + "\n").encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/bars.csv":
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = _cli(f"{base}/bars.csv", f"{base}/gone.csv")
    finally:
        server.shutdown()
        server.server_close()
    assert len(_stored(engine, sym)) == 3
    assert result.exit_code == 1, result.output
    assert f"{base}/gone.csv: HTTP 404" in result.output
    assert _quarantined(engine, f"{base}/gone.csv")[0][1].startswith("HTTP 404")


def test_whole_input_failures_exit_non_zero_with_the_exact_reason(engine, ingest, tmp_path) -> None:
    sym = _symbol()
    good = _csv(tmp_path / "good.csv", _bars(sym, 0, 3))
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"\x00\x01 not parquet at all")
    failed = _cli(str(good), str(garbage))
    assert failed.exit_code == 1, failed.output
    assert f"{garbage}: not a readable Parquet file" in failed.output
    assert len(_stored(engine, sym)) == 3

    missing, folder = tmp_path / "absent.csv", tmp_path / "folder.csv"
    folder.mkdir()
    mistake = _cli(str(missing), str(folder))
    assert mistake.exit_code == 2, mistake.output
    assert f"{missing}: no such file" in mistake.output and f"{folder}: is a directory" in mistake.output
    assert "Traceback" not in mistake.output

    # A URL is kept as it is (https://host/x used to become https:/host/x); nothing listens on port 1: one clear error.
    from flows.ingest_prices import ingest_prices

    url = "http://127.0.0.1:1/prices/bars.csv"
    (row,) = ingest_prices([url], quality=False)
    assert row["file"] == url and str(row["error"]).startswith(f"{url}: ConnectError")


def test_an_input_failing_unexpectedly_does_not_stop_the_inputs_after_it(engine, ingest, tmp_path) -> None:
    """The first file fails in a way no input check foresees (an I/O error while reading it: not a bad-input error,
    the path the flow isolates for bugs and a database gone): the command goes on, the second file is stored in
    full, and it exits non-zero naming the failed input. The failure is real, nothing of ours is patched: the file
    is a link to ``/proc/self/mem``, a regular file whose first bytes no process can read (EIO, even as root)."""
    sym = _symbol()
    broken = tmp_path / "first.csv"
    broken.symlink_to("/proc/self/mem")
    good = _csv(tmp_path / "second.csv", _bars(sym, 0, 5))
    result = _cli(str(broken), str(good))
    assert result.exit_code == 1, result.output
    assert f"{broken}: OSError" in result.output and "Input/output error" in result.output
    assert _stored(engine, sym) == [(f"{h:02d}", str(Decimal(str(100 + h * 0.25)))) for h in range(5)]
    assert _quarantined(engine, good) == []
    with engine.connect() as conn:
        volumes = conn.execute(text("select volume from raw.ohlcv where symbol = :s order by ts"), {"s": sym}).all()
    assert [int(v) for (v,) in volumes] == [10, 11, 12, 13, 14]


def test_a_stored_absurd_bar_does_not_stop_the_feature_build_for_any_series(engine, home) -> None:
    """dbt builds marts.features as one node over every series, so it cannot fail one series alone: staging leaves out
    bars whose values no float computation can take (stored before ingest checked the range), and the rest build."""
    from alphaloom.features.dbt_runner import build_features

    bad, good, run_id = _symbol(), _symbol(), "absurd-bar-run"
    rows = []
    for symbol in (bad, good):
        for i in range(30):
            c = 100 + i
            close = "1e308" if symbol == bad and i == 10 else str(c)
            rows.append({"s": symbol, "ts": "2025-04-01T00:00:00Z", "h": i, "c": close, "p": c})
    with engine.begin() as conn:
        conn.execute(
            text("insert into audit.runs (run_id, flow) values (:r, 'test') on conflict do nothing"), {"r": run_id}
        )
        conn.execute(
            text(
                "insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) "
                "values ('absurd', :s, '1h', cast(:ts as timestamptz) + :h * interval '1 hour', :p, "
                "greatest(cast(:c as numeric), :p + 1), :p - 1, cast(:c as numeric), 10, :r)"
            ),
            [{**r, "r": run_id} for r in rows],
        )
    try:
        build_features(target_path=home / "dbt-target", log_path=home / "dbt-logs")
        with engine.connect() as conn:
            built = dict(
                conn.execute(
                    text("select symbol, count(*) from marts.features where exchange = 'absurd' group by symbol")
                ).all()
            )
            sma_after = conn.execute(
                text("select sma_10 from marts.features where symbol = :s and ts = '2025-04-01T20:00:00Z'"), {"s": bad}
            ).scalar_one()
        assert built == {good: 30, bad: 29}
        assert sma_after is not None and 100 < sma_after < 200  # the bar is left out, not averaged in
    finally:
        with engine.begin() as conn:
            conn.execute(text("delete from raw.ohlcv where exchange = 'absurd'"))
            if conn.execute(text("select to_regclass('marts.features')")).scalar_one() is not None:
                conn.execute(text("delete from marts.features where exchange = 'absurd'"))


def test_close_jumps_compare_with_the_last_accepted_close_of_the_same_series_in_time_order() -> None:
    import numpy as np

    from alphaloom.ingest.price_jumps import close_jumps

    # Two series interleaved and out of time order; series 1 has a stored close of 10 before the input.
    series = np.array([0, 1, 0, 1, 0, 1, 0])
    ts = np.array([3, 2, 1, 1, 2, 3, 4])
    close = np.array([101.0, 11.0, 100.0, 200.0, 1000.0, 12.0, 9.0])
    jumps = close_jumps(series, ts, close, np.array([np.nan, 10.0]), 5.0)
    # series 0 in time: 100 (no reference: kept), 1000 (10x: flagged), 101 (vs 100: kept), 9 (< 101/5: flagged)
    # series 1 in time: 200 (20x the stored 10: flagged), 11 (vs 10: kept), 12 (kept)
    assert jumps.flagged.tolist() == [False, False, False, True, True, False, True]
    assert jumps.reference[[3, 4, 6]].tolist() == [-1, 2, 0]
    assert not close_jumps(series, ts, close, np.array([np.nan, 10.0]), 0.0).flagged.any()  # 0: check off
