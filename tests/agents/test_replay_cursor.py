"""The replay cursor answers every ``as_of`` of a window with exactly the market view the live reader reads then
(ARCHITECTURE §5): on the demo data, and on a window with late bars (a gap, a symbol listed mid-window) and late news
(stories first seen hours after publication, one exactly on a bar close, one tagged with two symbols)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import text

from agents.deciding import decide_snapshot, price_signals
from agents.params import DecisionParams, StrategyParams
from agents.replay_cursor import ReplayCursor
from agents.risk.context import _marks, returns_history
from agents.sentiment import LexiconScorer
from agents.snapshot import MarketView, read_market_view, read_snapshot
from agents.strategies.sma_cross import SmaCrossParams
from alphaloom.db.background import BackgroundWriter
from alphaloom.ingest.sampledata import SampleData, generate
from alphaloom.settings import Settings, get_settings
from flows.build_features import build_features
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices

EXCHANGE = "rpc"
RUN = "replay-cursor-test"
GAP_SYMBOL, LATE_SYMBOL = "ETH/USDT", "SOL/USDT"


class CountingWriter(BackgroundWriter):
    """The replay's background writer, counting the writes handed to it."""

    submitted = 0

    def submit(self, write) -> None:
        self.submitted += 1
        super().submit(write)


def _drop_rows(path: Path, keep) -> None:
    header, *lines = path.read_text().splitlines()
    path.write_text("\n".join([header, *[line for line in lines if keep(line.split(",")[3])]]) + "\n")


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[SampleData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("rchome")))
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("rc")), seed=23, days=30, exchange=EXCHANGE)
        gap_from, gap_to = sample.start + timedelta(days=15), sample.start + timedelta(days=15, hours=14)
        listed = sample.start + timedelta(days=10, hours=5)
        for path in sample.price_files:
            if path.name == GAP_SYMBOL.replace("/", "-") + ".csv":
                _drop_rows(path, lambda ts: not gap_from <= datetime.fromisoformat(ts) < gap_to)
            if path.name == LATE_SYMBOL.replace("/", "-") + ".csv":
                _drop_rows(path, lambda ts: datetime.fromisoformat(ts) >= listed)
        for state in (
            ingest_prices([str(p) for p in sample.price_files], quality=False, return_state=True),
            ingest_news([str(p) for p in sample.news_files], quality=False, return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        with engine.begin() as conn:
            conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test') on conflict do nothing"),
                         {"r": RUN})  # fmt: skip
            late = [  # (id, published, first seen, symbols, title)
                ("late-1", gap_from - timedelta(hours=3), gap_to + timedelta(hours=2, minutes=7), [GAP_SYMBOL],
                 "Ether rallies to a record after upgrade"),
                ("late-2", listed, listed + timedelta(hours=6), [LATE_SYMBOL, "BTC/USDT"],
                 "Solana listing: shares plunge after fraud probe"),
                ("late-3", sample.end - timedelta(days=3, hours=9), sample.end - timedelta(days=3), ["BTC/USDT"],
                 "Bitcoin beats expectations, strong growth"),
            ]  # fmt: skip
            for news_id, published, seen, symbols, title in late:
                conn.execute(
                    text("""insert into raw.news (id, url, title, summary, published_at, first_seen_at,
                            first_seen_assumed, run_id) values (:i, :u, :t, '', :p, :s, false, :r)"""),
                    {"i": news_id, "u": f"https://late.example/{news_id}", "t": title, "p": published, "s": seen,
                     "r": RUN},
                )  # fmt: skip
                for symbol in symbols:
                    conn.execute(text("insert into raw.news_symbols (news_id, symbol) values (:i, :s)"),
                                 {"i": news_id, "s": symbol})  # fmt: skip
        try:
            yield sample
        finally:  # as test_timeframes does: later modules' incremental feature builds never see this exchange
            with engine.begin() as conn:
                conn.execute(text("delete from marts.features where exchange = :e"), {"e": EXCHANGE})
                conn.execute(text("delete from raw.ohlcv where exchange = :e"), {"e": EXCHANGE})
    get_settings.cache_clear()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _as_plain(view: MarketView) -> dict[str, Any]:
    return {"features": {s: dict(r) for s, r in view.features.items()},
            "closes": {s: list(c) for s, c in view.closes.items()},
            "news": {s: list(n) for s, n in view.news.items()}, "scores": dict(view.scores)}  # fmt: skip


def _times(data: SampleData, start: datetime, rng: random.Random, count: int) -> list[datetime]:
    span = int((data.end - start).total_seconds())
    anywhere = [start + timedelta(seconds=rng.randrange(span + 1)) for _ in range(count)]
    on_bar_closes = [start + timedelta(hours=rng.randrange(span // 3600 + 1)) for _ in range(count // 4)]
    edges = [start, data.end, data.end - timedelta(days=3), data.start + timedelta(days=15, hours=16, minutes=7)]
    return anywhere + on_bar_closes + edges


@pytest.mark.parametrize("rule", ["team", "sma_cross"])
def test_the_cursor_gives_the_live_market_view_at_every_as_of(engine, data, rule) -> None:
    settings = Settings(exchange=EXCHANGE)
    strategy = StrategyParams(rule=rule, sma_cross=SmaCrossParams(10, 20))
    params = DecisionParams.from_settings(settings, strategy)
    scorer = LexiconScorer()
    start = data.start + timedelta(days=7)  # before LATE_SYMBOL's first bar; history reaches back before it
    symbols = list(data.symbols)
    with engine.connect() as conn:
        cursor = ReplayCursor.load(conn, symbols=symbols, start=start, end=data.end, params=params, scorer=scorer,
                                   run_id=RUN, returns_bars=50)  # fmt: skip
        times = _times(data, start, random.Random(5 if rule == "team" else 6), 200 if rule == "team" else 60)
        seen_news = seen_gap = seen_unlisted = 0
        for as_of in times:
            live = read_market_view(conn, symbols=symbols, as_of=as_of, run_id=RUN, params=params, scorer=scorer)
            replayed = cursor.market_at(as_of, symbols)
            assert _same(_as_plain(replayed), _as_plain(live)), as_of
            for symbol, closes in live.closes.items():  # the signals computed at load: the strategies' on the closes
                assert price_signals(replayed, symbol, closes, params) == price_signals(live, symbol, closes, params)
            assert (replayed.signals is not None) == (rule == "team") and live.signals is None
            assert cursor.marks(symbols, as_of) == _marks(conn, settings, symbols, as_of), as_of
            pd.testing.assert_frame_equal(
                cursor.returns(symbols, as_of, 50),
                returns_history(conn, exchange=EXCHANGE, timeframe="1h", symbols=symbols, as_of=as_of, bars=50),
            )
            seen_news += sum(len(n) for n in live.news.values())
            seen_unlisted += LATE_SYMBOL not in live.features
            seen_gap += GAP_SYMBOL in live.features and as_of - live.features[GAP_SYMBOL]["known_at"] > timedelta(
                hours=1
            )
    assert seen_unlisted and seen_gap, "the window must include the late listing and the gap"
    assert (seen_news > 0) == (rule == "team")


def test_decisions_from_the_cursor_equal_decisions_from_the_live_snapshot(engine, data) -> None:
    from execution.accounts.registry import ensure_account

    settings = Settings(exchange=EXCHANGE)
    params = DecisionParams.from_settings(settings)
    scorer = LexiconScorer()
    start, symbols = data.end - timedelta(days=6), list(data.symbols)
    with engine.begin() as conn:
        ensure_account(conn, "cursor-parity", "paper", "USDT", "paper", Decimal(100_000), RUN)
        cursor = ReplayCursor.load(conn, symbols=symbols, start=start, end=data.end, params=params, scorer=scorer,
                                   run_id=RUN, returns_bars=settings.risk.correlation_lookback_bars)  # fmt: skip
        rng = random.Random(9)
        decided = 0
        for as_of in sorted(start + timedelta(hours=rng.randrange(24 * 6)) for _ in range(25)):
            kwargs = {"account": "cursor-parity", "symbols": symbols, "as_of": as_of.replace(tzinfo=UTC),
                      "run_id": RUN, "settings": settings, "params": params, "scorer": scorer}  # fmt: skip
            live = read_snapshot(conn, **kwargs)
            replayed = read_snapshot(conn, **kwargs, source=cursor)
            assert _same(_as_plain(replayed.market), _as_plain(live.market))
            assert replayed.account_view.portfolio.exposures == live.account_view.portfolio.exposures
            pd.testing.assert_frame_equal(replayed.account_view.portfolio.returns, live.account_view.portfolio.returns)
            drafts = decide_snapshot(live, params, run_id=RUN)
            assert decide_snapshot(replayed, params, run_id=RUN) == drafts
            decided += len(drafts)
    assert decided >= 25 * (len(symbols) - 1)


def _outcomes(conn, account: str) -> list[tuple]:
    return [
        tuple(r)
        for r in conn.execute(
            text("""select decision_id, agent, account, symbol, as_of, realised_at, horizon_bars, action, confidence,
                           entry_price, exit_price, realised_return, hit, score
                    from audit.opinion_outcomes where account = :a order by decision_id, agent"""),
            {"a": account},
        )
    ]  # fmt: skip


def test_the_incremental_memory_equals_scoring_and_weighing_from_the_database(engine, data) -> None:
    from agents.memory import load_weights, realised_trade_returns, score_outcomes
    from agents.risk.sizing import trade_stats
    from agents.team import Team
    from execution.accounts.registry import ensure_account
    from flows.backtest import Replay, ReplayWindow, _step
    from flows.decide import decision_times

    settings = get_settings().model_copy(update={"risk.sizing_lookback_trades": 5})
    account, run_id, symbols = "memory-parity", "memory-parity-run", list(data.symbols)
    strategy = StrategyParams()
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(100_000), run_id)
    times = decision_times(data.end, 72, "1h")
    scorer = LexiconScorer()
    window = ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                               settings=settings, strategy=strategy, scorer=scorer)  # fmt: skip
    replay = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "close", times[-1], {}, window)
    base = strategy.base_weights()
    for as_of in times:
        _step(replay, as_of)
        with engine.connect() as conn:
            assert window.memory.weights() == load_weights(conn, account=account, as_of=as_of, base=base), as_of
            returns = realised_trade_returns(conn, account=account, as_of=as_of, limit=5)
            assert window.memory.trades() == trade_stats(returns), as_of
    with engine.connect() as conn:
        incremental = _outcomes(conn, account)
        weights = load_weights(conn, account=account, as_of=times[-1], base=base)
    assert len(incremental) > 100 and any(w.scored for w in weights.values())
    assert any(w.weight != base[a] for a, w in weights.items()), "the weights must have learned something"
    with engine.connect() as conn, conn.begin() as tx:  # the database path, step by step, on the same decisions
        conn.execute(text("delete from audit.opinion_outcomes where account = :a"), {"a": account})
        for as_of in times:
            score_outcomes(conn, account=account, as_of=as_of, timeframe="1h", run_id=run_id)
        assert _outcomes(conn, account) == incremental
        tx.rollback()


_AUDIT = {  # every row a replay writes, without generated ids, recording times, account, run and decision ids
    "decisions": """select d.symbol, d.as_of, d.action, d.score, d.config_version, d.dbt_invocation_id, d.inputs,
                           c.config
                    from audit.decisions d left join audit.decision_configs c using (config_version)
                    where d.account = :a order by 1, 2""",
    "agent_outputs": """select d.symbol, d.as_of, o.agent, o.model, o.prompt_hash, o.input_ref, o.output, o.skipped,
                               o.tokens, o.latency_ms
                        from audit.agent_outputs o join audit.decisions d using (decision_id)
                        where d.account = :a order by 1, 2, 3""",
    "risk_checks": """select d.symbol, d.as_of, r.check_name, r.approved, r.reason, r.numbers
                      from audit.risk_checks r join audit.decisions d using (decision_id)
                      where d.account = :a order by d.symbol, d.as_of, r.id""",
    "lineage": """select d.symbol, d.as_of, l.parent_table, l.parent_key::text
                  from audit.lineage l join audit.decisions d on d.decision_id = l.child_id
                  where d.account = :a order by 1, 2, 3, 4""",
    "orders": """select d.symbol, d.as_of, o.leg, o.venue, o.side, o.order_type, o.quantity, o.limit_price,
                        o.reference_price, o.status, o.filled_quantity, o.arrival_price,
                        o.parent_client_order_id is null as parent
                 from audit.orders o join audit.decisions d using (decision_id)
                 where o.account = :a order by 1, 2, 3""",
    "order_events": """select d.symbol, d.as_of, o.leg, e.event, e.from_status, e.to_status, e.event_ts
                       from audit.order_events e join audit.orders o using (client_order_id)
                       join audit.decisions d using (decision_id) where o.account = :a order by 1, 2, 3, e.id""",
    "fills": """select d.symbol, d.as_of, o.leg, f.side, f.quantity, f.price, f.fee, f.fee_currency, f.slippage, f.ts,
                       f.realized_pnl
                from audit.fills f join audit.orders o using (client_order_id) join audit.decisions d using (decision_id)
                where f.account = :a order by 1, 2, 3, f.ts""",
    "opinion_outcomes": """select symbol, as_of, agent, realised_at, horizon_bars, action, confidence, entry_price,
                                  exit_price, realised_return, hit, score
                           from audit.opinion_outcomes where account = :a order by 1, 2, 3""",
    "agent_weights": """select agent, as_of, weight, hit_rate, scored from audit.agent_weights where account = :a
                        order by 1, 2""",
    "equity_marks": "select as_of, equity from audit.equity_marks where account = :a order by 1",
    "positions": "select symbol, quantity, avg_price from audit.positions where account = :a order by 1",
    "balances": "select currency, amount from audit.balances where account = :a order by 1",
}


def test_the_replay_engine_writes_the_audit_rows_of_the_live_step_path(engine, data) -> None:
    """The replay (window in memory, audit rows held and written in bulk with COPY per chunk and before each
    execution) writes the rows the live step path writes one step at a time; so does the replay whose chunks' rows
    are written by a background writer while the next chunk runs (``Replay.writer``, as ``replay_run``)."""
    from agents.audit_buffer import AuditBuffer
    from agents.team import Team
    from execution.accounts.registry import ensure_account
    from flows.backtest import CHUNK_STEPS, Replay, ReplayWindow, _bar_opens, _step, replay_chunk
    from flows.decide import decision_times

    settings, strategy, scorer = get_settings(), StrategyParams(), LexiconScorer()
    symbols = list(data.symbols)[:3]
    times = decision_times(data.end - timedelta(days=2), 150, "1h")
    opens = _bar_opens(engine, settings, symbols, times[0], times[-1])
    rows = {}
    for path in ("live", "replay", "background"):
        account, run_id = f"audit-parity-{path}", f"audit-parity-{path}-run"
        with engine.begin() as conn:
            conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
            ensure_account(conn, account, "paper", "USDT", "paper", settings.starting_cash, run_id)
        window = (
            ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                              settings=settings, strategy=strategy, scorer=scorer)
            if path != "live" else None
        )  # fmt: skip
        audit = AuditBuffer("full") if path != "live" else None
        with CountingWriter() as writer:
            replay = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "next_open",
                            times[-1], opens, window, audit, writer if path == "background" else None)  # fmt: skip
            if path == "live":
                for as_of in times:
                    _step(replay, as_of)
            else:  # 150 steps: a chunk of 100 and one of 50, as the flow runs them
                for first in range(0, len(times), CHUNK_STEPS):
                    replay_chunk.fn(replay, times[first : first + CHUNK_STEPS])
                assert audit.pending == 0
        assert writer.submitted == (2 if path == "background" else 0), "each chunk's rows by the writer"
        with engine.connect() as conn:
            rows[path] = {name: conn.execute(text(sql), {"a": account}).all() for name, sql in _AUDIT.items()}
    assert len(rows["live"]["decisions"]) == 150 * len(symbols) and rows["live"]["fills"]
    assert rows["live"]["opinion_outcomes"] and rows["live"]["risk_checks"]
    # the config is not in each decision's inputs but reachable by its version (each path's rows: compared below)
    params = DecisionParams.from_settings(settings, strategy)
    assert {(r.config_version, "config" in r.inputs) for r in rows["live"]["decisions"]} == {(params.version, False)}
    assert all(r.config == params.config for r in rows["live"]["decisions"])
    for name in _AUDIT:
        assert rows["replay"][name] == rows["live"][name], name
        assert rows["background"][name] == rows["live"][name], name


class _CheckedAccount:
    """The replay's in-memory account, checked against the database readers each time a step (its snapshot or the
    portfolio gate of a released slice) asks it for the account's context."""

    def __init__(self, inner, settings: Settings, cursor: ReplayCursor) -> None:
        self.inner, self.settings, self.cursor = inner, settings, cursor
        self.checked: list[tuple[datetime, tuple[str, ...]]] = []
        self.closed = 0

    def book(self, account, symbol, quantity, avg_price, moves) -> None:
        self.closed += quantity == 0 and self.inner.positions([symbol])[symbol][0] > 0
        self.inner.book(account, symbol, quantity, avg_price, moves)

    def positions(self, symbols):
        return self.inner.positions(symbols)

    @property
    def slices_scheduled(self) -> bool:
        return self.inner.slices_scheduled

    @slices_scheduled.setter
    def slices_scheduled(self, value: bool) -> None:
        self.inner.slices_scheduled = value

    def context(self, conn, account, symbols, as_of):
        import dataclasses

        from agents.risk.context import portfolio_context
        from agents.snapshot import current_positions

        mine = self.inner.context(conn, account, symbols, as_of)
        # the same equity mark is upserted again: the database path sees what the in-memory one wrote
        theirs = portfolio_context(conn, account=account, symbols=symbols, as_of=as_of, settings=self.settings,
                                   market=self.cursor)  # fmt: skip
        plain = {"returns": pd.DataFrame(), "inputs": None}
        assert dataclasses.replace(mine, **plain) == dataclasses.replace(theirs, **plain), as_of
        assert (str(mine.equity), str(mine.peak_equity)) == (str(theirs.equity), str(theirs.peak_equity)), as_of
        assert {s: str(e) for s, e in mine.exposures.items()} == {s: str(e) for s, e in theirs.exposures.items()}
        pd.testing.assert_frame_equal(mine.returns, theirs.returns)
        assert self.inner.positions(symbols) == current_positions(conn, account, symbols), as_of
        self.checked.append((as_of, tuple(symbols)))
        return mine

    def context_on_read(self, conn, account, symbols, as_of):
        mine = self.context(conn, account, symbols, as_of)  # checked at once
        return lambda: mine


def test_the_equity_does_not_depend_on_the_order_the_positions_and_balances_come_in() -> None:
    """The in-memory account holds its positions and balances in booking order; the database returns the rows of
    audit.positions and audit.balances in whatever order their pages hold them (other accounts' rows and updates
    move them). Exposures converted at 1 / 2.125 carry 28 digits, so a sum in row order rounds differently."""
    from itertools import permutations

    from agents.risk.context import account_equity

    rates = {("USDT", "XTS"): 1 / Decimal("2.125")}
    positions = {"BTC/USDT": (Decimal("2.202"), Decimal("95497.56")), "SOL/USDT": (Decimal("1.034"), Decimal("42794.48")),
                 "ETH/USDT": (Decimal("1.932"), Decimal("83121.21"))}  # fmt: skip
    balances = [("XTS", Decimal("7979.27")), ("USDT", Decimal("-4713.26"))]
    results = [account_equity(list(cash), dict(held), {}, rates, "XTS") for cash in permutations(balances)
               for held in permutations(positions.items())]  # fmt: skip
    equities = {str(equity) for equity, _ in results}
    assert len(equities) == 1, sorted(equities)
    # the net exposure of the limits (agents.risk.portfolio sums the exposures in their order) is one figure too
    assert len({str(sum(exposures.values(), Decimal(0))) for _, exposures in results}) == 1


def test_the_in_memory_account_equals_the_database_reader_at_every_step(engine, data) -> None:
    from agents.snapshot import current_positions
    from agents.team import Team
    from alphaloom.fx import store_rate
    from execution.accounts.registry import ensure_account
    from flows.backtest import Replay, ReplayWindow, _bar_opens, _step
    from flows.decide import decision_times

    # TWAP slices released by later steps (through the portfolio gate), fills with fees at the next open, cash in
    # the symbols' quote currency (USDT) counted in the account's own (XTS) at rates that change during the window.
    settings = get_settings().model_copy(update={"split.above_notional": Decimal(1500), "split.slices": 3,
                                                 "split.twap_duration_minutes": 150})  # fmt: skip
    strategy, scorer = StrategyParams(), LexiconScorer()
    symbols = list(data.symbols)[:3]
    times = decision_times(data.end - timedelta(days=1), 140, "1h")
    account, run_id = "account-parity", "account-parity-run"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "XTS", "paper", Decimal(200_000), run_id)
        store_rate(conn, "USDT", "XTS", Decimal("0.5"), times[0] - timedelta(days=2))
        store_rate(conn, "XTS", "USDT", Decimal("2.125"), times[50])  # the inverse pair, newer: it wins from then on
        store_rate(conn, "USDT", "XTS", Decimal("0.4875"), times[100] + timedelta(minutes=30))
    window = ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                               settings=settings, strategy=strategy, scorer=scorer)  # fmt: skip
    checked = _CheckedAccount(window.account, settings, window.cursor)
    window.account = checked  # type: ignore[assignment]
    opens = _bar_opens(engine, settings, symbols, times[0], times[-1])
    replay = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "next_open", times[-1], opens,
                    window)  # fmt: skip
    for as_of in times:
        _step(replay, as_of)
    with engine.connect() as conn:
        fills = conn.execute(
            text("select side, fee, client_order_id from audit.fills where account = :a"), {"a": account}
        ).all()
        released = conn.execute(
            text("select count(*) from audit.scheduled_slices where account = :a and status = 'released'"),
            {"a": account},
        ).scalar_one()
        positions = current_positions(conn, account, symbols)
        balances = dict(conn.execute(text("select currency, amount from audit.balances where account = :a"),
                                     {"a": account}).all())  # fmt: skip
    steps = {as_of for as_of, _ in checked.checked}
    gated = [as_of for as_of, asked in checked.checked if len(asked) == 1]
    assert steps == set(times), "every step's snapshot came from the in-memory account and was checked"
    assert gated, "released slices passed the portfolio gate on the in-memory account"
    assert {side for side, _, _ in fills} == {"buy", "sell"} and all(fee > 0 for _, fee, _ in fills)
    assert checked.closed >= 1 and released >= 1, (checked.closed, released)
    assert checked.inner.bookings == len({order for *_, order in fills}), "one booking per order with fills"
    assert checked.inner.positions(symbols) == positions
    assert checked.inner._balances == balances and set(balances) == {"XTS", "USDT"}


@pytest.mark.parametrize("runs", ["steps", "chunk"])
def test_the_kill_switch_stops_a_replay_on_the_in_memory_account(engine, data, runs) -> None:
    """Engaged between two steps: of a replay run step by step (each step reads it), or in the middle of a chunk
    (one connection, the state read at the chunk's start and again by each step that proposes an order)."""
    from agents.audit_buffer import AuditBuffer
    from agents.team import Team
    from alphaloom.ops.kill_switch import set_kill_switch
    from execution.accounts.registry import ensure_account
    from flows.backtest import Replay, ReplayWindow, _step, replay_chunk
    from flows.decide import decision_times

    settings = get_settings().model_copy(update={"split.above_notional": Decimal(1500), "split.slices": 3,
                                                 "split.twap_duration_minutes": 150})  # fmt: skip
    strategy, scorer = StrategyParams(), LexiconScorer()
    symbols = list(data.symbols)[:3]
    times = decision_times(data.end - timedelta(days=1), 100, "1h")
    account, run_id = f"killswitch-replay-{runs}", f"killswitch-replay-{runs}-run"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(200_000), run_id)
    window = ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                               settings=settings, strategy=strategy, scorer=scorer)  # fmt: skip
    audit = AuditBuffer("full") if runs == "chunk" else None
    replay = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "close", times[-1], {}, window,
                    audit)  # fmt: skip

    def scheduled() -> int:
        with engine.connect() as conn:
            return conn.execute(
                text("select count(*) from audit.scheduled_slices where account = :a and status = 'scheduled'"),
                {"a": account},
            ).scalar_one()

    engaged_at = None
    done = 0

    def engage_when_slices_wait(_: int = 1) -> None:  # engaged by an operator between two steps, slices pending
        nonlocal engaged_at, done
        done += 1
        if engaged_at is None and done < len(times) and scheduled():
            with engine.begin() as conn:
                set_kill_switch(conn, True, "operator stop during a replay", "pytest")
            engaged_at = times[done]

    try:
        if runs == "chunk":
            replay_chunk.fn(replay, times, engage_when_slices_wait)
        else:
            for as_of in times:
                _step(replay, as_of)
                engage_when_slices_wait()
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test done", "pytest")
    assert engaged_at is not None, "the replay must have scheduled TWAP slices"
    with engine.connect() as conn:
        orders = conn.execute(
            text("""select e.event_ts from audit.order_events e join audit.orders o using (client_order_id)
                    where o.account = :a and e.event = 'created'"""),
            {"a": account},
        ).scalars().all()  # fmt: skip
        denied = conn.execute(
            text("""select count(*) from audit.risk_checks r join audit.decisions d using (decision_id)
                    where d.account = :a and d.as_of >= :t and r.check_name = 'kill_switch' and not r.approved"""),
            {"a": account, "t": engaged_at},
        ).scalar_one()
        after = conn.execute(
            text("""select count(*) from audit.decisions where account = :a and as_of >= :t"""),
            {"a": account, "t": engaged_at},
        ).scalar_one()
        cancelled = conn.execute(
            text("""select count(*) from audit.scheduled_slices where account = :a and status = 'cancelled'
                    and reason like 'kill switch%'"""),
            {"a": account},
        ).scalar_one()
    assert orders and all(at < engaged_at for at in orders), "no order after the kill switch was engaged"
    assert denied >= 1, "the step's snapshot read the kill switch: risk denied the decisions' intents"
    assert after == len(symbols) * len([t for t in times if t >= engaged_at]), "the replay went on deciding"
    assert cancelled >= 1 and scheduled() == 0, "the pending slices were cancelled, not sent"


_ORDER_ROWS = {  # execution's rows of one account, keyed by decision (symbol, as_of) and leg, without generated ids
    "orders": """select d.symbol, d.as_of, o.leg, o.venue, o.side, o.order_type, o.quantity, o.limit_price,
                        o.reference_price, o.status, o.filled_quantity, o.arrival_price, o.venue_order_id is null,
                        o.parent_client_order_id, o.run_id = :r
                 from audit.orders o join audit.decisions d using (decision_id)
                 where o.account = :a order by 1, 2, 3""",
    "order_events": """select d.symbol, d.as_of, o.leg, e.event, e.from_status, e.to_status, e.event_ts,
                              e.details - 'venue_order_id' - 'fill_ids', jsonb_array_length(e.details -> 'fill_ids'),
                              e.run_id = :r
                       from audit.order_events e join audit.orders o using (client_order_id)
                       join audit.decisions d using (decision_id) where o.account = :a order by 1, 2, 3, e.id""",
    "fills": """select d.symbol, d.as_of, o.leg, f.fill_id = o.client_order_id || '-0', f.side, f.quantity, f.price,
                       f.fee, f.fee_currency, f.slippage, f.ts, f.realized_pnl, f.run_id = :r, f.fee_from_units
                from audit.fills f join audit.orders o using (client_order_id) join audit.decisions d using (decision_id)
                where f.account = :a order by 1, 2, 3, f.fill_id""",
    "positions": """select symbol, quantity, avg_price, realized_pnl, run_id = :r from audit.positions
                    where account = :a order by 1""",
    "balances": "select currency, amount, run_id is null or run_id = :r from audit.balances where account = :a order by 1",
    "execution_checks": """select d.symbol, d.as_of, r.check_name, r.approved, r.reason, r.numbers, r.run_id = :r
                           from audit.risk_checks r join audit.decisions d using (decision_id)
                           where d.account = :a and r.check_name like 'execution_guard%' order by 1, 2, 3""",
    "order_lineage": """select d.symbol, d.as_of, o.leg, l.child_table, l.parent_table,
                               l.parent_key = jsonb_build_object('decision_id', o.decision_id)
                               or l.parent_key = jsonb_build_object('client_order_id', o.client_order_id)
                        from audit.lineage l join audit.orders o
                          on l.child_id = o.client_order_id or l.child_id like o.client_order_id || '-%'
                        join audit.decisions d using (decision_id)
                        where o.account = :a order by 1, 2, 3, 4""",
    "submit_attempts": """select d.symbol, d.as_of, o.leg, s.venue, s.details - 'decision_id' - 'run_id',
                                 s.details ->> 'decision_id' = o.decision_id, s.details ->> 'run_id' = :r,
                                 s.resolved_at is null
                          from audit.submit_attempts s join audit.orders o using (client_order_id)
                          join audit.decisions d using (decision_id) where o.account = :a order by 1, 2, 3""",
    "guard_trips": """select symbol, guard, reason, numbers, run_id = :r from audit.guard_trips where account = :a
                      order by id""",
    "account_halts": "select halted, reason, numbers from audit.account_halts where account = :a order by id",
}


@pytest.mark.parametrize("daily_loss_limit", [None, Decimal("20")], ids=["default", "daily-loss-halts"])
def test_the_in_memory_order_store_writes_the_rows_of_the_database_store(engine, data, daily_loss_limit) -> None:
    """The same replay (window in memory, audit buffer) with execution's rows read and written in the database
    (``execution.orders.store.DB_STORE``) and held in memory and written in bulk
    (``execution.orders.memory_store.MemoryOrderStore``) ends with the same orders, events, fills, positions,
    balances, guard checks, lineage, journal entries, guard trips and halts; with a tight daily loss limit the
    account is halted during the replay and later orders are refused."""
    from agents.audit_buffer import AuditBuffer
    from agents.team import Team
    from execution.accounts.registry import ensure_account
    from execution.orders.memory_store import MemoryOrderStore
    from flows.backtest import CHUNK_STEPS, Replay, ReplayWindow, _bar_opens, replay_chunk
    from flows.decide import decision_times

    settings, strategy, scorer = get_settings(), StrategyParams(), LexiconScorer()
    if daily_loss_limit is not None:
        settings = settings.model_copy(update={"risk.daily_loss_limit": daily_loss_limit})
    symbols = list(data.symbols)[:3]
    times = decision_times(data.end - timedelta(days=2), 150, "1h")
    opens = _bar_opens(engine, settings, symbols, times[0], times[-1])
    rows, kept = {}, {}
    tag = "default" if daily_loss_limit is None else "halts"
    for path in ("database", "memory", "background"):
        account, run_id = f"store-parity-{tag}-{path}", f"store-parity-{tag}-{path}-run"
        with engine.begin() as conn:
            conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
            ensure_account(conn, account, "paper", "USDT", "paper", settings.starting_cash, run_id)
        window = ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                                   settings=settings, strategy=strategy, scorer=scorer)  # fmt: skip
        assert isinstance(window.orders, MemoryOrderStore)
        if path == "database":
            window.orders = None
        with CountingWriter() as writer:  # "background": each chunk's rows written while the next chunk runs
            replay = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "next_open",
                            times[-1], opens, window, AuditBuffer("full"),
                            writer if path == "background" else None)  # fmt: skip
            kept[path] = replay.order_store
            for first in range(0, len(times), CHUNK_STEPS):
                replay_chunk.fn(replay, times[first : first + CHUNK_STEPS])
        assert writer.submitted == (2 if path == "background" else 0)
        with engine.connect() as conn:
            rows[path] = {name: conn.execute(text(sql), {"a": account, "r": run_id}).all()
                          for name, sql in _ORDER_ROWS.items()}  # fmt: skip
    assert kept["database"] is None and kept["memory"] is not None and kept["memory"].pending == 0
    db = rows["database"]
    assert db["orders"] and db["fills"] and db["order_events"] and db["execution_checks"] and db["submit_attempts"]
    if daily_loss_limit is not None:
        assert db["account_halts"] and any(not r.approved for r in db["execution_checks"]) and db["guard_trips"]
    assert kept["background"] is not None and kept["background"].pending == 0
    for name in _ORDER_ROWS:
        assert rows["memory"][name] == db[name], name
        assert rows["background"][name] == db[name], name


def test_the_in_memory_accounts_context_read_later_is_its_context_and_its_mark_is_taken_at_once() -> None:
    """A snapshot's portfolio context is built when the step reads it (a sparse step that drafts no symbol never
    does): the equity mark is taken when the snapshot is read, the context read later is the one ``context`` gives
    (built once), and an ``AccountView`` given the function calls it on first read only."""
    import dataclasses

    from agents.replay_account import EquityMarks, FxHistory, ReplayAccount
    from agents.risk.portfolio import PortfolioContext
    from agents.risk.sizing import trade_stats
    from agents.snapshot import AccountView
    from alphaloom.markets import resolve
    from alphaloom.ops.kill_switch import KillSwitchState

    class Market:
        def marks(self, symbols, as_of):
            return {s: Decimal("101.5") for s in symbols}

        def returns(self, symbols, as_of, bars):
            return pd.DataFrame()

        def returns_inputs(self, symbols, as_of, bars):
            return None

    at = datetime(2026, 1, 5, 12, tzinfo=UTC)
    symbols = ["X/USDT", "Y/USDT"]
    account = ReplayAccount(account="a", base_currency="USDT", starting_cash=Decimal(1000),
                            balances={"USDT": Decimal("900")}, positions={"X/USDT": (Decimal(2), Decimal(100))},
                            marks=EquityMarks(), markets={s: resolve(s, {}, {}, {}) for s in symbols},
                            fx=FxHistory("USDT", at), settings=get_settings(), market=Market())  # fmt: skip
    account.defer_marks = True
    on_read = account.context_on_read(None, "a", symbols, at)  # type: ignore[arg-type]
    assert account.unwritten_marks == 1 and account.day_equity(at, at) == (Decimal("1103.0"), Decimal("1103.0"))
    built = on_read()
    assert on_read() is built
    now = account.context(None, "a", symbols, at)  # type: ignore[arg-type]
    plain = {"returns": pd.DataFrame(), "inputs": None}
    assert dataclasses.replace(built, **plain) == dataclasses.replace(now, **plain)
    assert built.equity == Decimal("1103.0") and built.peak_equity == Decimal("1103.0")
    assert set(built.markets) == set(symbols) and built.exposures == {"X/USDT": Decimal("203.0")}
    calls: list[int] = []

    def counted() -> PortfolioContext:
        calls.append(1)
        return built

    view = AccountView(KillSwitchState(False, "never engaged", ""), {}, {}, trade_stats([]), portfolio=counted)
    assert calls == [], "not built before it is read"
    assert view.portfolio is built and view.portfolio is built and calls == [1]
    given = AccountView(KillSwitchState(False, "never engaged", ""), {}, {}, trade_stats([]), portfolio=built)
    assert given.portfolio is built and given == view


def test_the_returns_history_of_a_context_is_computed_once_and_only_when_read() -> None:
    """The in-memory account gives its context the returns history as a function (most replay steps propose no
    order, and only an order's correlation and VaR checks read it): computed on the first read, then kept, also by
    the contexts derived from it; a frame given as such is the frame read."""
    import dataclasses

    from agents.risk.portfolio import PortfolioContext

    frame = pd.DataFrame({"BTC/USDT": [0.01, -0.02]})
    calls: list[int] = []

    def computed() -> pd.DataFrame:
        calls.append(1)
        return frame

    context = PortfolioContext(equity=Decimal(100), peak_equity=Decimal(100), returns=computed)
    derived = dataclasses.replace(context, equity=Decimal(90))
    assert calls == [1], "replace reads every field: the derived context holds the computed frame"
    assert context.returns is frame and derived.returns is frame and calls == [1]
    untouched = PortfolioContext(equity=Decimal(1), peak_equity=Decimal(1), returns=computed)
    assert calls == [1], "not computed before it is read"
    assert untouched.prepared().inputs is not None and calls == [1, 1]
    assert PortfolioContext(equity=Decimal(1), peak_equity=Decimal(1)).returns.empty
    assert PortfolioContext(equity=Decimal(1), peak_equity=Decimal(1), returns=frame).returns is frame


def test_a_replay_reads_the_kill_switch_again_once_the_state_it_holds_is_max_age_old(engine) -> None:
    """With the orders held in memory a replay's order step reads the switch only once the state it holds is
    ``max_age_s`` old (and each chunk reads it at its start); with ``max_age_s`` 0 every order step reads it."""
    from agents.snapshot import KnownKillSwitch
    from alphaloom.ops.kill_switch import set_kill_switch

    with engine.begin() as conn:
        set_kill_switch(conn, False, "test start", "pytest")
        held = KnownKillSwitch.read(conn, max_age_s=3600.0)
        every = KnownKillSwitch.read(conn)
        expired = KnownKillSwitch.read(conn, max_age_s=1e-9)
    try:
        with engine.begin() as conn:
            set_kill_switch(conn, True, "operator stop during a replay", "pytest")
        with engine.begin() as conn:
            assert not held.refresh(conn).engaged, "read less than max_age_s ago: the state held"
            assert every.refresh(conn).engaged and every.state.engaged
            assert expired.refresh(conn).engaged, "older than max_age_s: read again"
            assert KnownKillSwitch.read(conn, max_age_s=3600.0).state.engaged, "a chunk's start reads it"
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test done", "pytest")


def test_a_replay_with_its_orders_in_memory_sends_no_order_after_the_chunk_the_kill_switch_was_engaged_in(
    engine, data
) -> None:
    """The bound of ``agents.snapshot.KnownKillSwitch`` with the orders held in memory: an operator's engagement in
    the middle of a chunk is read at the latest by the next chunk's start, and from then on the replay sends no
    order and risk denies every intent."""
    from agents.audit_buffer import AuditBuffer
    from agents.team import Team
    from alphaloom.ops.kill_switch import set_kill_switch
    from execution.accounts.registry import ensure_account
    from flows.backtest import Replay, ReplayWindow, replay_chunk
    from flows.decide import decision_times

    settings, strategy, scorer = get_settings(), StrategyParams(), LexiconScorer()
    symbols = list(data.symbols)[:3]
    times = decision_times(data.end - timedelta(days=1), 60, "1h")
    account, run_id = "killswitch-bound", "killswitch-bound-run"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", Decimal(200_000), run_id)
    window = ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                               settings=settings, strategy=strategy, scorer=scorer)  # fmt: skip
    replay = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "close", times[-1], {}, window,
                    AuditBuffer("full"))  # fmt: skip
    assert replay.order_store is not None, "the orders are held in memory"
    done = 0

    def engage_midway(_: int = 1) -> None:
        nonlocal done
        done += 1
        if done == 20:
            with engine.begin() as conn:
                set_kill_switch(conn, True, "operator stop during a replay", "pytest")

    try:
        replay_chunk.fn(replay, times[:30], engage_midway)
        replay_chunk.fn(replay, times[30:])
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test done", "pytest")
    with engine.connect() as conn:
        created = conn.execute(
            text("""select e.event_ts from audit.order_events e join audit.orders o using (client_order_id)
                    where o.account = :a and e.event = 'created'"""),
            {"a": account},
        ).scalars().all()  # fmt: skip
        checks = conn.execute(
            text("""select r.approved from audit.risk_checks r join audit.decisions d using (decision_id)
                    where d.account = :a and d.as_of >= :t and r.check_name = 'kill_switch'"""),
            {"a": account, "t": times[30]},
        ).scalars().all()  # fmt: skip
    assert all(at < times[30] for at in created), "no order from the next chunk on"
    assert checks and not any(checks), "every intent from the next chunk on denied by the kill switch"


def test_the_cursors_returns_inputs_equal_those_prepared_from_its_frame_bit_for_bit(engine, data) -> None:
    """What the correlation and VaR checks read in a replay (``ReplayCursor.returns_inputs``, from arrays) equals
    ``returns_inputs`` of the frame ``returns`` gives, bit for bit and laid out alike (the VaR's matrix product), or
    is None where the frame is built the general way (a late listing's or a gap's bars differ)."""
    import numpy as np

    from agents.risk.portfolio import returns_inputs

    settings = Settings(exchange=EXCHANGE)
    params = DecisionParams.from_settings(settings, StrategyParams())
    start = data.start + timedelta(days=7)
    symbols = list(data.symbols)
    with engine.connect() as conn:
        cursor = ReplayCursor.load(conn, symbols=symbols, start=start, end=data.end, params=params,
                                   scorer=LexiconScorer(), run_id=RUN, returns_bars=50)  # fmt: skip
    fast = general = 0
    for as_of in _times(data, start, random.Random(8), 120):
        for chosen in (symbols, [s for s in symbols if s not in (GAP_SYMBOL, LATE_SYMBOL)], symbols[:1]):
            got = cursor.returns_inputs(chosen, as_of, 50)
            if got is None:
                general += 1
                continue
            fast += 1
            expected = returns_inputs(cursor.returns(chosen, as_of, 50))
            assert got.symbols == expected.symbols
            assert got.matrix.tobytes(order="A") == expected.matrix.tobytes(order="A")
            assert got.matrix.flags.f_contiguous == expected.matrix.flags.f_contiguous
            assert got.correlation_values.tobytes() == expected.correlation_values.tobytes()
            exposures = np.linspace(-3.0, 5.0, len(got.symbols))
            assert (np.nan_to_num(got.matrix) @ exposures).tobytes() == (
                np.nan_to_num(expected.matrix) @ exposures
            ).tobytes()
    assert fast and general


def test_the_cursors_shared_returns_equal_those_prepared_from_its_frame_at_every_bar(engine, data, monkeypatch) -> None:
    """At every bar close of several hundred (and between two), for symbols whose bars line up throughout the window,
    ``ReplayCursor.returns_inputs`` slices the matrix it made once for them (the per-step alignment is not run) and
    equals ``returns_inputs`` of the frame bit for bit, laid out alike, correlations and VaR product included; for
    symbols whose bars do not line up (stocks' sessions and crypto's hours, a gap, a late listing) it aligns them
    each step as before."""
    import numpy as np

    from agents.risk.portfolio import returns_inputs

    settings = Settings(exchange=EXCHANGE)
    params = DecisionParams.from_settings(settings, StrategyParams())
    start = data.start + timedelta(days=7)
    symbols = list(data.symbols)
    stocks = [s for s in symbols if s.endswith("/USD")]  # the session's bars, each stock's the same
    assert len(stocks) > 1
    with engine.connect() as conn:
        cursor = ReplayCursor.load(conn, symbols=symbols, start=start, end=data.end, params=params,
                                   scorer=LexiconScorer(), run_id=RUN, returns_bars=60)  # fmt: skip
    per_step = cursor._aligned_returns
    steps = [start + timedelta(hours=h, minutes=m) for h in range(int((data.end - start) / timedelta(hours=1)))
             for m in (0, 31)]  # fmt: skip
    assert len(steps) > 500
    compared = 0
    for as_of in steps:
        for chosen, bars in ((stocks, 60), (stocks[:2], 25), (["BTC/USDT"], 60), (symbols, 60)):
            if chosen is symbols:
                got = cursor.returns_inputs(chosen, as_of, bars)
            else:
                monkeypatch.setattr(cursor, "_aligned_returns", None)  # the shared matrix's slice, no alignment
                got = cursor.returns_inputs(chosen, as_of, bars)
                monkeypatch.setattr(cursor, "_aligned_returns", per_step)
                assert got is not None
            if got is None:
                continue
            expected = returns_inputs(cursor.returns(chosen, as_of, bars))
            assert got.symbols == expected.symbols
            assert got.matrix.shape == expected.matrix.shape
            assert got.matrix.tobytes(order="A") == expected.matrix.tobytes(order="A")
            assert got.matrix.flags.f_contiguous == expected.matrix.flags.f_contiguous
            assert not got.matrix.flags.writeable
            assert got.correlation_values.tobytes() == expected.correlation_values.tobytes()
            exposures = np.linspace(-3.0, 5.0, len(got.symbols))
            assert (np.nan_to_num(got.matrix) @ exposures).tobytes() == (
                np.nan_to_num(expected.matrix) @ exposures
            ).tobytes()
            compared += 1
    assert compared > 2 * len(steps)


def test_a_context_prepared_from_its_inputs_source_never_builds_the_returns_frame() -> None:
    """``PortfolioContext.prepared`` takes the returns inputs from ``inputs_source`` when it gives them (the frame
    stays unbuilt, also in the contexts ``after`` derives); when it gives None they are prepared from the frame."""
    from agents.risk.portfolio import PortfolioContext, returns_inputs
    from alphaloom.domain import AccountId, DecisionId, OrderIntent, Side, Symbol

    frame = pd.DataFrame({"BTC/USDT": [0.01, -0.02, 0.03]})
    built: list[int] = []

    def computed() -> pd.DataFrame:
        built.append(1)
        return frame

    inputs = returns_inputs(frame)
    context = PortfolioContext(equity=Decimal(100), peak_equity=Decimal(100), returns=computed,
                               inputs_source=lambda: inputs)  # fmt: skip
    prepared = context.prepared()
    intent = OrderIntent(DecisionId("d"), AccountId("acct"), Symbol("BTC/USDT"), Side.BUY, Decimal(1), Decimal(10))
    later = prepared.after(intent, Decimal(1))
    assert prepared.inputs is inputs and later.inputs is inputs and built == []
    assert later.returns is frame and built == [1]
    fallback = PortfolioContext(equity=Decimal(1), peak_equity=Decimal(1), returns=computed, inputs_source=lambda: None)
    assert fallback.prepared().inputs is not None and built == [1, 1]


_TRADED_ROWS = ("orders", "order_events", "fills", "equity_marks", "positions", "balances")


@pytest.mark.parametrize("rule", ["team", "sma_cross"])
def test_the_sparse_step_decides_trades_and_learns_exactly_as_drafting_every_symbol(engine, data, rule) -> None:
    """``--audit none`` replays decide sparsely (``agents.sparse_step``: only the symbols whose action sends an
    order drafted in full): over 400 steps of six symbols with news (late stories, a gap, a symbol listed
    mid-window), every decision's action, score and opinions told to the memory, the orders, their events, fills,
    equity marks, the final positions, balances, learned weights and trade statistics, and the decision rows of
    the orders equal those of the same replay drafting every symbol (``--audit decisions``, and ``full``: its
    memory builds the outcome rows)."""
    from agents.audit_buffer import AuditBuffer
    from agents.team import Team
    from alphaloom.domain import decision_ids_for
    from execution.accounts.registry import ensure_account
    from flows.backtest import CHUNK_STEPS, Replay, ReplayWindow, replay_chunk
    from flows.decide import decision_times

    settings = get_settings().model_copy(update={"risk.sizing_mode": "kelly", "risk.sizing_lookback_trades": 5})
    strategy = (
        StrategyParams() if rule == "team" else StrategyParams(rule="sma_cross", sma_cross=SmaCrossParams(10, 20))
    )
    scorer, symbols = LexiconScorer(), list(data.symbols)
    times = decision_times(data.end, 400, "1h")
    told, rows, learned = {}, {}, {}
    for mode in ("full", "decisions", "none"):
        account, run_id = f"sparse-{rule}-{mode}", f"sparse-{rule}-{mode}-run"
        with engine.begin() as conn:
            conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
            ensure_account(conn, account, "paper", "USDT", "paper", settings.starting_cash, run_id)
        window = ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                                   settings=settings, strategy=strategy, scorer=scorer)  # fmt: skip
        memory, calls = window.memory, []
        remember_votes = memory.remember_votes

        def telling(*args, remember_votes=remember_votes, calls=calls, account=account, version=window.params.version):
            decision_id, symbol, as_of, entry, votes, action, score = args  # every decision the memory learns
            own_id = decision_id == decision_ids_for(account, [symbol], "1h", as_of, version)[symbol]
            said = tuple((o.agent, o.action, o.confidence, (o.details or {}).get("horizon_bars"))
                         for o in votes)  # fmt: skip
            calls.append((as_of, symbol, own_id, entry, said, action, score))
            remember_votes(*args)

        memory.remember_votes = telling  # type: ignore[method-assign]
        replay = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "close", times[-1], {},
                        window, AuditBuffer(mode))  # fmt: skip
        assert replay.sparse is (mode == "none")
        assert (window.cursor.market_at(times[0]).technical is not None) is (rule == "team"), "votes computed ahead"
        for first in range(0, len(times), CHUNK_STEPS):
            replay_chunk.fn(replay, times[first : first + CHUNK_STEPS])
        told[mode] = sorted(calls, key=lambda call: call[:2])
        learned[mode] = (memory.weights(), memory.trades(), window.account.positions(symbols))
        with engine.connect() as conn:
            rows[mode] = {name: conn.execute(text(_AUDIT[name]), {"a": account}).all()
                          for name in ("decisions", *_TRADED_ROWS)}  # fmt: skip
    decided = told["decisions"]
    assert all(call[2] for call in decided + told["none"]), "each decision under its own id"
    assert len(decided) > 300 * len(symbols) and len({call[1] for call in decided}) == len(symbols)
    assert {call[5].value for call in decided} >= {"buy", "sell"}
    assert rows["decisions"]["fills"] and {f.side for f in rows["decisions"]["fills"]} == {"buy", "sell"}
    if rule == "team":
        assert any(call[4][1][1].value != "hold" for call in decided), "the news analyst voted"
        assert any(call[5].value == "hold" for call in decided)
        assert any(
            w.weight != b for w, b in zip(learned["none"][0].values(), strategy.base_weights().values(), strict=True)
        )
    assert told["none"] == decided and told["full"] == decided
    assert learned["none"] == learned["decisions"] == learned["full"], "learning without the outcome rows: the same"
    for name in _TRADED_ROWS:
        assert rows["none"][name] == rows["decisions"][name] == rows["full"][name], name
    ordered = {(d.symbol, d.as_of) for d in rows["none"]["orders"]}
    assert rows["none"]["decisions"] == [d for d in rows["decisions"]["decisions"] if (d.symbol, d.as_of) in ordered]


class _Closes:
    """A cursor's ``latest_row`` over hourly rows: the close of hour h (known at its end) is 100 + h % 7."""

    def __init__(self, start: datetime) -> None:
        self.start = start

    def latest_row(self, symbol: str, as_of: datetime) -> dict[str, Any] | None:
        hours = int((as_of - self.start) / timedelta(hours=1))
        return None if hours < 1 else {"close": 100.0 + (hours - 1) % 7, "ts": self.start + timedelta(hours=hours - 1)}


def test_the_memory_learns_a_decision_remembered_at_a_time_whose_others_were_already_scored() -> None:
    """A step's decisions share one entry of the memory's queue: one remembered at that step's time after the entry
    was taken off (a replay going back) is queued again, and learnt as if it had come with the others."""
    from agents.memory import MemoryParams
    from agents.replay_memory import ReplayMemory
    from agents.sparse_step import Vote
    from alphaloom.domain import Action

    start, hour = datetime(2025, 1, 1, tzinfo=UTC), timedelta(hours=1)
    params, base = MemoryParams(), StrategyParams().base_weights()
    at, due = start + 2 * hour, start + (2 + params.horizon_bars) * hour

    def memory() -> ReplayMemory:
        return ReplayMemory(account="a", timeframe="1h", params=params, base=base, cursor=_Closes(start),  # type: ignore[arg-type]
                            trade_lookback=5)  # fmt: skip

    def remember(m: ReplayMemory, symbol: str, action: Action) -> None:
        m.remember_votes(f"d-{symbol}", symbol, at, (100.0, at - hour), (Vote("technical", action, 1.0),), action, 1.0)

    late, together = memory(), memory()
    remember(late, "A", Action.BUY)
    late.advance(due, run_id="r", rows=False)
    remember(late, "B", Action.SELL)
    assert late.pending == 2  # B's technical and team opinions, queued again
    late.advance(due + hour, run_id="r", rows=False)
    remember(together, "A", Action.BUY)
    remember(together, "B", Action.SELL)
    assert together.pending == 4
    together.advance(due + hour, run_id="r", rows=False)
    assert late.pending == together.pending == 0
    assert late.weights() == together.weights() and late.weights()["technical"].scored == 2
    assert late.trades() == together.trades()
