"""A process reads a walk-forward sweep's bars once (``alphaloom.backtest.walkforward_bars``): windows loaded in any
order are the frames cut from the whole history, to the bit; bars already read for a sweep are not read again, and a
new sweep reads afresh."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from support.prices import prices

from alphaloom.backtest.walkforward import window_inputs
from alphaloom.backtest.walkforward_bars import SWEEP_BARS, read_bar_columns
from alphaloom.backtest.walkforward_run import (
    WalkForwardSpec,
    block_pieces,
    join_pieces,
    load_window,
    piece_specs,
    read_block,
    read_piece,
    walk_forward_arguments,
    window_from_bars,
    window_specs,
)
from alphaloom.errors import DataUnavailableError
from alphaloom.settings import get_settings

SYMBOLS = ["WBA/USDT", "WBB/USDT", "WBC/USDT"]  # WBC has no bar at all: not a column of the windows


@dataclass
class Stored:
    exchange: str
    close: pd.DataFrame


@pytest.fixture(scope="module")
def stored(engine: Engine) -> Iterator[Stored]:
    """300 hourly bars of WBA and WBB on an exchange of this module, WBB missing its bars 100 to 109."""
    exchange = f"wb{uuid.uuid4().hex[:6]}"
    open_, close = (frame.round(6) for frame in prices(300))
    open_.columns = close.columns = SYMBOLS[:2]
    rows = [{"e": exchange, "s": s, "t": ts.to_pydatetime(), "o": f"{open_.at[ts, s]:.6f}", "c": f"{close.at[ts, s]:.6f}"}
            for n, ts in enumerate(close.index) for s in SYMBOLS[:2] if s == SYMBOLS[0] or not 100 <= n < 110]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": f"bars-{exchange}"})
        conn.execute(
            text(f"""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                     values (:e, :s, '1h', :t, cast(:o as numeric), greatest(cast(:o as numeric), cast(:c as numeric)),
                             least(cast(:o as numeric), cast(:c as numeric)), cast(:c as numeric), 1, 'bars-{exchange}')"""),
            rows,
        )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", exchange)
        mp.setenv("ALPHALOOM_TIMEFRAME", "1h")
        get_settings.cache_clear()
        yield Stored(exchange, close)
    get_settings.cache_clear()
    SWEEP_BARS.clear()


SPEC = WalkForwardSpec(SYMBOLS, [3, 5], [10, 20], in_sample=60, out_sample=40)


def test_windows_loaded_in_any_order_are_cut_from_the_whole_history_to_the_bit(engine: Engine, stored: Stored) -> None:
    settings = get_settings()
    with engine.connect() as conn:
        whole = window_inputs(**walk_forward_arguments(conn, settings, SPEC))
        specs = window_specs(conn, settings, SPEC)
        assert len(specs) == len(whole) == 6 and len({w.sweep for w in specs}) == 1
        order = [3, 4, 0, 5, 1, 2]  # a worker is given windows in no particular order
        loaded = {n: load_window(conn, specs[n]) for n in order}
    for n, expected in enumerate(whole):
        pd.testing.assert_frame_equal(loaded[n].open_, expected.open_, check_exact=True)
        pd.testing.assert_frame_equal(loaded[n].close, expected.close, check_exact=True)
        for params, target in expected.targets.items():
            pd.testing.assert_frame_equal(loaded[n].targets[params], target, check_exact=True)


def test_bars_read_for_a_sweep_are_not_read_again_and_a_new_sweep_reads_afresh(engine: Engine, stored: Stored) -> None:
    settings = get_settings()
    with engine.connect() as conn:
        first = window_specs(conn, settings, SPEC)
        load_window(conn, first[0])
        load_window(conn, first[2])  # the process now holds the bars of windows 0 to 2
    late = stored.close.index[105].to_pydatetime()  # a bar WBB lacked (ts already stored for WBA: no new row time)
    with engine.begin() as conn:
        conn.execute(
            text("""insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id)
                    values (:e, 'WBB/USDT', '1h', :t, 1, 1, 1, 1, 1, :r)"""),
            {"e": stored.exchange, "t": late, "r": f"bars-{stored.exchange}"},
        )
    try:
        with engine.connect() as conn:
            held = load_window(conn, first[1])
            assert pd.isna(held.close.at[pd.Timestamp(late), "WBB/USDT"])  # served from what was read
            fresh = load_window(conn, window_specs(conn, settings, SPEC)[1])
            assert fresh.close.at[pd.Timestamp(late), "WBB/USDT"] == 1.0
            direct = read_bar_columns(conn, exchange=stored.exchange, timeframe="1h", symbols=SYMBOLS,
                                      start=late, end=late + timedelta(hours=1))  # fmt: skip
            assert direct[1].loc[pd.Timestamp(late)].tolist()[:2] == [stored.close.iloc[105, 0], 1.0]
            assert direct[1]["WBC/USDT"].isna().all()
    finally:
        with engine.begin() as conn:
            conn.execute(text("delete from raw.ohlcv where exchange = :e and symbol = 'WBB/USDT' and ts = :t"),
                         {"e": stored.exchange, "t": late})  # fmt: skip


def test_a_window_whose_bars_are_gone_is_one_clear_error(engine: Engine, stored: Stored) -> None:
    with engine.connect() as conn:
        window = window_specs(conn, get_settings(), SPEC)[0]
    gone = WalkForwardSpec(["NONE/USDT"], [3], [10], in_sample=60, out_sample=40)
    with engine.connect() as conn, pytest.raises(DataUnavailableError, match="has 0 stored bars, not"):
        load_window(conn, type(window)(**{**window.__dict__, "symbols": gone.symbols, "sweep": ""}))


def test_a_block_of_windows_reads_the_bars_it_spans_once_and_its_windows_read_nothing_more(
    engine: Engine, stored: Stored
) -> None:
    settings = get_settings()
    with engine.connect() as conn:
        whole = window_inputs(**walk_forward_arguments(conn, settings, SPEC))
        specs = window_specs(conn, settings, SPEC)
        block = specs[2:5]  # windows 2 to 4: from window 2's warm-up to window 4's end
        sweep = block[0].sweep
        assert SWEEP_BARS.bars_read(sweep) == 0
        read_block(conn, block)
        times = stored.close.index
        span = int(((times >= pd.Timestamp(block[0].start)) & (times < pd.Timestamp(block[-1].end))).sum())
        assert SWEEP_BARS.bars_read(sweep) == span < sum(w.bars for w in block)
        loaded = [load_window(conn, w) for w in block]
        assert SWEEP_BARS.bars_read(sweep) == span  # the windows read nothing more
        assert SWEEP_BARS.bars_read("another sweep") == 0
        load_window(conn, specs[0])  # outside the block: only what is missing is read
        assert SWEEP_BARS.bars_read(sweep) == span + (len(stored.close) - len(stored.close.loc[block[0].start :]))
    for got, expected in zip(loaded, whole[2:5], strict=True):
        pd.testing.assert_frame_equal(got.close, expected.close, check_exact=True)
        pd.testing.assert_frame_equal(got.open_, expected.open_, check_exact=True)


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_pieces_read_the_sweeps_bars_once_and_each_block_cuts_exactly_its_windows_bars_from_them(
    engine: Engine, stored: Stored, parts: int
) -> None:
    """The sweep's bars cut at window starts into ``parts`` pieces: together each stored bar time once; blocks of
    consecutive windows, each given the pieces its span overlaps, cut windows equal to the bit to those read alone."""
    settings = get_settings()
    with engine.connect() as conn:
        whole = window_inputs(**walk_forward_arguments(conn, settings, SPEC))
        specs = window_specs(conn, settings, SPEC)
        pieces = piece_specs(specs, parts)
        assert len(pieces) == parts and {p.start for p in pieces} <= {w.start for w in specs}
        assert pieces[0].start == specs[0].start and pieces[-1].end == specs[-1].end
        assert all(a.end == b.start for a, b in itertools.pairwise(pieces))  # adjacent, no overlap
        frames = [read_piece(conn, piece) for piece in pieces]
    assert SWEEP_BARS.bars_read(specs[0].sweep) == sum(len(c) for _, c in frames) == len(stored.close)  # each once
    for block in (specs[:3], specs[3:], specs[1:2], specs):
        needed = block_pieces(pieces, block)
        assert needed == list(range(needed[0], needed[-1] + 1))  # consecutive pieces
        open_, close = join_pieces([frames[n] for n in needed])
        assert close.index[0] <= pd.Timestamp(block[0].start) and (block[-1].end is None or close.index[-1]
                                                                  >= pd.Timestamp(block[-1].end) - pd.Timedelta("1h"))  # fmt: skip
        for window in block:
            got, expected = window_from_bars(window, open_, close), whole[specs.index(window)]
            pd.testing.assert_frame_equal(got.open_, expected.open_, check_exact=True)
            pd.testing.assert_frame_equal(got.close, expected.close, check_exact=True)
            for params, target in expected.targets.items():
                pd.testing.assert_frame_equal(got.targets[params], target, check_exact=True)
    SWEEP_BARS.clear()
