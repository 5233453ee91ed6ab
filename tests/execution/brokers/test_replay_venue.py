"""A replay's paper venue lives in memory (the ``PaperVenue`` port's in-memory implementation, through the same paper
broker code): a replay's order steps send nothing to ``paper_venue.orders`` and check out no pooled connection of
their own (the submit journal goes in the step's transaction, in the statement that records the order), and the audit rows stay those of the live step path
(``tests/agents/test_replay_cursor.py``'s parity test). Anywhere else the journal is still committed apart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event, text

from alphaloom.domain import ClientOrderId
from alphaloom.ingest.sampledata import SampleData, generate
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import get_settings
from execution.brokers.next_open import NextOpenPaperBroker
from execution.brokers.paper import InMemoryVenue, PaperBroker, PostgresPaperVenue
from execution.orders.journal import journal_apart, record_attempt, was_attempted
from flows.build_features import build_features
from flows.ingest_prices import ingest_prices

EXCHANGE = "rvx"
OFF = KillSwitchState(False, "", "")
LATER = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def data(engine, prefect_harness, tmp_path_factory) -> Iterator[SampleData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_HOME", str(tmp_path_factory.mktemp("rvhome")))
        get_settings.cache_clear()
        sample = generate(Path(tmp_path_factory.mktemp("rv")), seed=31, days=20, exchange=EXCHANGE)
        for state in (
            ingest_prices([str(p) for p in sample.price_files], quality=False, return_state=True),
            build_features(return_state=True),
        ):
            assert state.is_completed(), state
        yield sample
    get_settings.cache_clear()


def _broker(venue) -> PaperBroker:
    return PaperBroker(fee_bps=Decimal(10), slippage_bps=Decimal(5), kill_switch=lambda: OFF, venue=venue)


def test_the_journal_is_committed_apart_unless_the_venue_is_a_replays(engine) -> None:
    replays = _broker(InMemoryVenue(outlives_caller=False))
    next_open = NextOpenPaperBroker(replays, bar_open=lambda s, t: None, fill_until=LATER)
    assert journal_apart(_broker(PostgresPaperVenue(engine)))
    assert journal_apart(_broker(InMemoryVenue()))  # a process that goes on after a failed transaction asks it again
    assert not journal_apart(replays) and not journal_apart(next_open)
    assert journal_apart(object())  # any other broker (a live venue)

    apart, inside = ClientOrderId("journal-apart-1"), ClientOrderId("journal-inside-1")
    from execution.accounts.registry import ensure_account

    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values ('journal-run', 'test')"))
        ensure_account(conn, "journal-acct", "paper", "USDT", "paper", Decimal(1000), "journal-run")
    with engine.connect() as conn:
        with conn.begin() as tx:
            record_attempt(conn, apart, "journal-acct", "paper", {"leg": 0})
            record_attempt(conn, inside, "journal-acct", "paper", {"leg": 0}, apart=False)
            assert was_attempted(conn, inside)  # written on the caller's connection
            tx.rollback()
        assert was_attempted(conn, apart) and not was_attempted(conn, inside)


def test_a_replay_chunk_sends_its_orders_on_its_one_connection_to_an_in_memory_venue(engine, data) -> None:
    from agents.audit_buffer import AuditBuffer
    from agents.params import StrategyParams
    from agents.sentiment import LexiconScorer
    from agents.team import Team
    from execution.accounts.registry import ensure_account
    from flows.backtest import Replay, ReplayWindow, _bar_opens, replay_chunk
    from flows.decide import decision_times

    settings, strategy, scorer = get_settings(), StrategyParams(), LexiconScorer()
    symbols = list(data.symbols)[:3]
    times = decision_times(data.end - timedelta(days=3), 60, "1h")
    account, run_id = "replay-venue", "replay-venue-run"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
        ensure_account(conn, account, "paper", "USDT", "paper", settings.starting_cash, run_id)
    window = ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                               settings=settings, strategy=strategy, scorer=scorer)  # fmt: skip
    opens = _bar_opens(engine, settings, symbols, times[0], times[-1])
    replay = Replay(account, symbols, run_id, settings, Team(scorer, None), strategy, "next_open", times[-1], opens,
                    window, AuditBuffer("full"))  # fmt: skip
    checkouts, statements = [], []

    def checked_out(*_) -> None:
        checkouts.append(1)

    def sent(conn, cursor, statement, *_) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "before_cursor_execute", sent)
    try:
        totals = replay_chunk.fn(replay, times)
    finally:
        event.remove(engine, "checkout", checked_out)
        event.remove(engine, "before_cursor_execute", sent)
    assert totals["intents"] > 0, "the window must send orders"
    assert len(checkouts) == 1, "the chunk's own connection only: no pooled connection per order"
    assert not [s for s in statements if "paper_venue" in s]
    # the journal is written by the statement that records each order, not by one of its own
    assert not [s for s in statements if s.startswith("insert into audit.submit_attempts")]
    # a sell realises against the average cost execution read (locked) with the order's state: not read again
    assert not [s for s in statements if s.startswith("select avg_price from audit.positions")]
    with engine.connect() as conn:
        orders = conn.execute(
            text("select client_order_id, venue_order_id, status from audit.orders where account = :a"),
            {"a": account},
        ).all()
        attempts = conn.execute(
            text("select client_order_id from audit.submit_attempts where account = :a"), {"a": account}
        ).scalars()
        sells = conn.execute(
            text("select count(*) from audit.fills where account = :a and side = 'sell' and realized_pnl is not null"),
            {"a": account},
        ).scalar_one()
        at_venue = conn.execute(
            text("select count(*) from paper_venue.orders where account = :a"), {"a": account}
        ).scalar_one()
    assert orders and {o.client_order_id for o in orders} == set(attempts), "every order journaled"
    assert at_venue == 0, "the replay's venue is in memory"
    assert sells, "the window must sell (a realised profit or loss)"
    for order in orders:  # the venue's book holds what the audit recorded, with the venue's ids
        report = window.venue.latest(order.client_order_id)
        assert report is not None and report.venue_order_id == order.venue_order_id
        assert report.status.value == order.status
