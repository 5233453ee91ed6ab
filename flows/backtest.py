"""Flow: replay the live decision code step by step over history on a fresh paper account, then report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Engine, text

from agents.audit_buffer import AuditBuffer
from agents.params import DecisionParams
from agents.replay_account import ReplayAccount
from agents.replay_cursor import ReplayCursor
from agents.replay_memory import ReplayMemory
from agents.risk.gate import portfolio_gate
from agents.sentiment import SentimentScorer
from agents.snapshot import REPLAY_MAX_AGE_S, KnownKillSwitch
from agents.sparse_step import covers
from agents.strategies.sma_cross import SmaCrossParams
from agents.team import StrategyParams, Team, build_team, decide, decide_sparse
from alphaloom.backtest.exposure import llm_exposure
from alphaloom.db.background import BackgroundWriter
from alphaloom.db.copy import relaxed_bulk_write
from alphaloom.db.engine import get_engine
from alphaloom.domain import AccountId, bar_close, last_closed_open
from alphaloom.errors import ConfigError, DataUnavailableError
from alphaloom.garbage import collected_between_chunks
from alphaloom.ops.kill_switch import KillSwitchState, kill_switch_state
from alphaloom.progress import progress
from alphaloom.reporting.run_report import (
    AUDIT_MODES,
    FILL_MODES,
    RunReport,
    backtest_account,
    build_run_report,
    refusal_counts,
)
from alphaloom.settings import Settings, get_settings
from execution.algos.release import release_due_children
from execution.brokers.base import Broker
from execution.brokers.next_open import NextOpenPaperBroker
from execution.brokers.paper import InMemoryVenue, PaperBroker, PaperVenue, PostgresPaperVenue
from execution.orders.memory_store import MemoryOrderStore
from execution.orders.send_context import SliceGate
from execution.orders.store import DB_STORE, FillBooking, cash_moves
from execution.orders.venue_reports import BookingListener
from execution.submit import execute
from flows._alerts import alert_on_failure
from flows._audit import audited_run
from flows.decide import _ensure_paper_account, decision_times

log = logging.getLogger(__name__)


CHUNK_STEPS = 100


class ReplayWindow:
    """What a replay loads once for its whole window: the decision parameters, the market cursor (features, closes,
    news and scores in memory), the account's memory advanced in memory and its cash and positions kept in memory
    (``agents.replay_account``, told of every fill booked), and its paper venue's book (``venue``: in memory, the
    paper broker's fills and order states advancing through the same broker code; dropped with a replay that stops
    at a failed step, so the submit journal goes in the step's transaction). A plain class, not a dataclass, so
    Prefect does not walk it as a task input."""

    def __init__(
        self, params: DecisionParams, cursor: ReplayCursor, memory: ReplayMemory, account: ReplayAccount | None = None,
        orders: MemoryOrderStore | None = None,
    ) -> None:  # fmt: skip
        self.params, self.cursor, self.memory, self.account = params, cursor, memory, account
        self.venue: PaperVenue = InMemoryVenue(outlives_caller=False)
        # the account's order rows held in memory (``execution.orders.memory_store``); None: in the database
        self.orders = orders

    @classmethod
    def load(
        cls, engine: Engine, *, account: str, symbols: list[str], times: list[datetime], run_id: str,
        settings: Settings, strategy: StrategyParams, scorer: SentimentScorer,
    ) -> ReplayWindow:  # fmt: skip
        params = DecisionParams.from_settings(settings, strategy)
        with engine.begin() as conn:  # scoring the window's news stores the new scores
            cursor = ReplayCursor.load(conn, symbols=symbols, start=times[0], end=times[-1], params=params,
                                       scorer=scorer, run_id=run_id,
                                       returns_bars=settings.risk.correlation_lookback_bars)  # fmt: skip
            ledger = ReplayAccount.load(conn, account=account, symbols=symbols, end=times[-1], settings=settings,
                                        market=cursor)  # fmt: skip
            orders = _order_store(conn, ledger, symbols=symbols, times=times, settings=settings)
        memory = ReplayMemory(account=account, timeframe=settings.timeframe, params=strategy.memory,
                              base=params.strategy.base_weights(), cursor=cursor,
                              trade_lookback=settings.risk.sizing_lookback_trades)  # fmt: skip
        return cls(params, cursor, memory, ledger, orders)


def _order_store(
    conn: Connection, ledger: ReplayAccount, *, symbols: list[str], times: list[datetime], settings: Settings
) -> MemoryOrderStore | None:
    """The replay's order rows in memory, when its orders are plain ones (execution splits none: no TWAP schedule
    or child order is planned in the database) on a fresh account; else None (the database store)."""
    if settings.split.above_notional is not None or ledger.slices_scheduled:
        return None
    tf = settings.timeframe
    return MemoryOrderStore.load(conn, account=AccountId(ledger.account), symbols=symbols, exchange=settings.exchange,
                                 timeframe=tf, first_cutoff=last_closed_open(times[0], tf),
                                 last_cutoff=last_closed_open(times[-1], tf), equity=ledger.day_equity)  # fmt: skip


@dataclass(frozen=True)
class Replay:
    """What every step of one backtest shares (``window``: the inputs loaded once; without it each step reads them
    from the database, as the live flow does; ``audit``: the buffer of the steps' audit rows, written in bulk by
    ``flush_audit``; without it each step writes its rows as the live flow does; ``writer``: where ``flush_audit``
    writes a chunk's rows while the next chunk's steps run, when they run in memory (``in_memory``); without it, or
    when they do not, it writes them before the next chunk, on the chunk's connection). The caller of the chunks
    waits for the writer after the last (``BackgroundWriter.wait``, or the exit of its ``with`` block)."""

    account: AccountId
    symbols: list[str]
    run_id: str
    settings: Settings
    team: Team
    strategy: StrategyParams
    fill_at: str
    fill_until: datetime
    opens: dict[tuple[str, datetime], Decimal]
    window: ReplayWindow | None = None
    audit: AuditBuffer | None = None
    writer: BackgroundWriter | None = None

    def broker(self, kill_switch: Callable[[], KillSwitchState], engine: Engine) -> Broker:
        """The paper broker the live decision flow uses, filling at the next open when so configured; its venue: the
        window's in-memory book, else (no window: the live step path) ``paper_venue.orders``."""
        venue = PostgresPaperVenue(engine) if self.window is None else self.window.venue
        paper = PaperBroker(fee_bps=self.settings.paper.fee_bps, slippage_bps=self.settings.paper.slippage_bps,
                            kill_switch=kill_switch, venue=venue)  # fmt: skip
        if self.fill_at == "close":
            return paper
        return NextOpenPaperBroker(
            paper, bar_open=lambda symbol, at: self.opens.get((symbol, at)), fill_until=self.fill_until
        )

    @cached_property
    def gate(self) -> SliceGate:
        """The portfolio gate of released slices, built once (on the in-memory account when the window has one)."""
        account = None if self.window is None else self.window.account
        return portfolio_gate(self.settings, None if account is None else account.context)

    @cached_property
    def order_store(self) -> MemoryOrderStore | None:
        """The window's in-memory order store when this replay holds its rows in memory: an audit buffer (flushed
        with it) and no LLM agent (which reads the account's past from the database); None: the database store."""
        if self.window is None or self.audit is None or self.team.llm_agent is not None:
            return None
        return self.window.orders

    @property
    def in_memory(self) -> bool:
        """Whether a step reads and writes no row of the flushes in the database (beyond the equity marks' own
        statement, ``flush_audit``): its orders held by the in-memory order store (``order_store``: an audit buffer,
        no LLM agent) and no slice scheduled on the in-memory account (no release pass, which reads the orders and
        the marks). Decided again at each step and each flush: a step that starts a release pass waits for the
        writer first (``_step``)."""
        ledger = None if self.window is None else self.window.account
        return self.order_store is not None and ledger is not None and not ledger.slices_scheduled

    @cached_property
    def sparse(self) -> bool:
        """Whether the steps decide sparsely (``agents.team.decide_sparse``: only the symbols whose action yields an
        order drafted in full): a window with its in-memory account, an audit buffer that keeps no row of a decision
        that sends nothing (``--audit none``), no LLM agent and parameters the sparse step covers
        (``agents.sparse_step.covers``: no pattern analyst). Otherwise every symbol is drafted (``decide``)."""
        window, audit = self.window, self.audit
        return (window is not None and window.account is not None and audit is not None and audit.mode == "none"
                and covers(window.params, llm_agent=self.team.llm_agent is not None))  # fmt: skip

    @cached_property
    def on_booking(self) -> BookingListener | None:
        """What tells the in-memory account of each booking of fills execution writes (None without one)."""
        return None if self.window is None or self.window.account is None else _booking_listener(self.window.account)


def _booking_listener(ledger: ReplayAccount) -> BookingListener:
    """Tells the replay's in-memory account of each booking of fills execution writes."""

    def booked(booking: FillBooking) -> None:
        ledger.book(booking.account, booking.symbol, booking.holding.quantity, booking.holding.avg_price,
                    cash_moves(booking))  # fmt: skip

    return booked


def _step(
    replay: Replay, as_of: datetime, conn: Connection | None = None, kill_switch: KnownKillSwitch | None = None
) -> dict[str, int]:
    """Send the TWAP/iceberg slices due by ``as_of`` at the bar's prices, each through the portfolio gate as in the
    live flows (``agents.risk.gate``: drawdown halt, exposure, VaR at ``as_of``), then decide every symbol at
    ``as_of`` and send what risk approved, in one transaction (as the live flow does). With a window, the account
    half of the snapshot and the gate's context come from its in-memory account (told of every fill booked), and the
    release pass runs once that account may have slices scheduled.

    ``conn``: the chunk's connection (default: one of its own), each step its own transaction on it (a step that
    sends nothing and holds its rows in the audit buffer sends no statement at all); ``kill_switch``: the state the
    chunk read last (``agents.snapshot.KnownKillSwitch``; default: read in the step). With a window and an audit
    buffer, the decision's equity mark is held by the in-memory account and written before anything reads the marks
    (a release pass, an execution) and at the chunk's end (``flush_audit``). With the replay's order store in memory
    (``Replay.order_store``), execution reads the marks and the kill switch from memory too and holds its rows there:
    an order step sends no statement beyond the kill switch's refresh. A step that is not ``Replay.in_memory`` first
    waits for the replay's writer (the rows of the chunk before, which it may read)."""
    if conn is None:
        with get_engine().connect() as own:
            return _step(replay, as_of, own, kill_switch)
    if replay.writer is not None and not replay.in_memory:
        replay.writer.wait()
    window = replay.window
    ledger = None if window is None else window.account
    deferred = ledger if replay.audit is not None else None  # the account whose marks wait with the audit rows
    on_booking = replay.on_booking
    held = replay.order_store
    with conn.begin():
        brokers: list[Broker] = []  # built when a release pass or an execution needs it (most steps do not)

        def switch() -> KillSwitchState:
            # The paper venue's own check, just after execution's gate read the switch in this transaction (an
            # engaged one stops the order there): off as the replay last read it needs no second read.
            if kill_switch is not None and not kill_switch.state.engaged:
                return kill_switch.state
            return kill_switch_state(conn)

        def broker() -> Broker:
            if not brokers:
                brokers.append(replay.broker(switch, get_engine()))
            return brokers[0]

        if ledger is None or ledger.slices_scheduled:  # the in-memory account knows when none was ever scheduled
            if deferred is not None:
                deferred.write_marks(conn)  # execution's daily-loss guard reads them
            release_due_children(conn, broker(), as_of, settings=replay.settings, run_id=replay.run_id,
                                 account=replay.account, gate=replay.gate, on_booking=on_booking)  # fmt: skip
        if deferred is not None:
            deferred.defer_marks = True
        quiet = 0  # the decisions of a sparse step that send nothing (not drafted)
        try:
            if replay.sparse:
                assert window is not None and ledger is not None and replay.audit is not None  # ``Replay.sparse``
                decisions, quiet = decide_sparse(
                    conn, account=replay.account, symbols=replay.symbols, as_of=as_of, run_id=replay.run_id,
                    settings=replay.settings, scorer=replay.team.scorer, params=window.params, source=window.cursor,
                    memory=window.memory, account_state=ledger, audit=replay.audit, kill_switch=kill_switch,
                )  # fmt: skip
            else:
                decisions = decide(
                    conn, account=replay.account, symbols=replay.symbols, as_of=as_of, run_id=replay.run_id,
                    settings=replay.settings, scorer=replay.team.scorer, strategy=replay.strategy,
                    llm_agent=replay.team.llm_agent, params=None if window is None else window.params,
                    source=None if window is None else window.cursor,
                    memory=None if window is None else window.memory, account_state=ledger, audit=replay.audit,
                    kill_switch=kill_switch,
                )  # fmt: skip
        finally:
            if deferred is not None:
                deferred.defer_marks = False
        intents = [intent for decision in decisions for intent in decision.intents]
        if intents:
            if held is not None:  # the marks and the switch from memory; the orders flushed after their decisions
                held.kill_switch = kill_switch_state if kill_switch is None else _known(kill_switch)
            else:
                if replay.audit is not None:
                    replay.audit.flush_decisions(conn)  # the orders reference their decisions
                if deferred is not None:
                    deferred.write_marks(conn)  # execution's daily-loss guard reads the step's mark
            result = execute(
                conn,
                intents,
                run_id=replay.run_id,
                broker=broker(),
                settings=replay.settings,
                event_time=as_of,
                replay=True,
                on_booking=on_booking,
                store=DB_STORE if held is None else held,
            )
            if ledger is not None and result.scheduled:
                ledger.slices_scheduled = True
    return {"decisions": len(decisions) + quiet, "intents": len(intents)}


def _known(kill_switch: KnownKillSwitch) -> Callable[[Connection], KillSwitchState]:
    """The state the step read last (``agents.team.decide`` refreshes it when a draft proposes an order)."""

    def state(_conn: Connection) -> KillSwitchState:
        return kill_switch.state

    return state


# NO_CACHE: the replay holds a model and an HTTP client, which must not be hashed as task inputs on every step.
@task(cache_policy=NO_CACHE)
def replay_step(replay: Replay, as_of: datetime) -> dict[str, int]:
    """One step (``_step``) as its own task."""
    return _step(replay, as_of)


@task(cache_policy=NO_CACHE)
def replay_chunk(replay: Replay, times: list[datetime], advance: Callable[..., None] | None = None) -> dict[str, int]:
    """Consecutive steps as one task (Prefect's per-task cost paid once per chunk, not once per step); each step is
    still its own transaction, in order, on one connection (the kill switch read at the start and again by each step
    that proposes an order, or with the orders held in memory by such a step once the state read is
    ``REPLAY_MAX_AGE_S`` old: ``agents.snapshot.KnownKillSwitch``); the audit rows and equity marks the steps held
    are written at the end (``flush_audit``: by the replay's writer while the next chunk runs, when it has one; a
    failure of the chunk before's write is raised at this chunk's start when it ended by then, else at its end).
    ``advance`` is told of each step done (the progress bar)."""
    totals = {"decisions": 0, "intents": 0}
    if replay.writer is not None:
        replay.writer.check()
    with get_engine().connect() as conn:
        with conn.begin():  # orders held in memory take this state: read again at most every REPLAY_MAX_AGE_S
            kill_switch = KnownKillSwitch.read(conn, 0.0 if replay.order_store is None else REPLAY_MAX_AGE_S)
        for as_of in times:
            for key, value in _step(replay, as_of, conn, kill_switch).items():
                totals[key] += value
            if advance is not None:
                advance(1)
        flush_audit(replay, conn)
    return totals


def flush_audit(replay: Replay, conn: Connection | None = None) -> None:
    """Write the audit rows held in the replay's buffer (``agents.audit_buffer``), the equity marks its in-memory
    account holds and the order rows its order store holds (after the decisions they reference), in a transaction
    of their own (on ``conn`` when given).

    With a writer (``Replay.writer``) and steps in memory (``Replay.in_memory``), the buffer's and the order store's
    rows are handed over (``take``: the steps go on with empty ones) to the writer, which writes them on its own
    connection while the next steps run, once the write before is done (raising its failure); the equity marks are
    written here first (one statement; the in-memory account keeps no rows to hand over). Otherwise it waits for
    the writer before it writes."""
    ledger = None if replay.window is None else replay.window.account
    marks = ledger if ledger is not None and replay.audit is not None and ledger.unwritten_marks else None
    orders = replay.order_store if replay.order_store is not None and replay.order_store.pending else None
    if marks is None and orders is None and (replay.audit is None or not replay.audit.pending):
        return
    if conn is None:
        with get_engine().connect() as own:
            flush_audit(replay, own)
        return
    writer = replay.writer
    if writer is not None and replay.in_memory:
        writer.wait()  # one write at a time; nothing handed over after a failed one
        if marks is not None:
            with conn.begin():
                relaxed_bulk_write(conn)  # a replay's rows: see agents.audit_buffer.AuditBuffer.flush
                marks.write_marks(conn)
        audit = replay.audit.take() if replay.audit is not None and replay.audit.pending else None
        held = None if orders is None else orders.take()

        def write(own: Connection) -> None:
            if audit is not None:
                audit.flush(own)
            if held is not None:
                held.write(own)

        writer.submit(write)
        return
    if writer is not None:
        writer.wait()
    with conn.begin():
        if marks is not None:
            marks.write_marks(conn)
        if replay.audit is not None and replay.audit.pending:
            replay.audit.flush(conn)
        if orders is not None:
            orders.flush(conn)


def _bar_opens(
    engine: Engine, settings: Settings, symbols: list[str], start: datetime, end: datetime
) -> dict[tuple[str, datetime], Decimal]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("""select symbol, ts, open from raw.ohlcv where exchange = :e and timeframe = :tf
                    and symbol = any(:s) and ts >= :start and ts < :end"""),
            {"e": settings.exchange, "tf": settings.timeframe, "s": symbols, "start": start, "end": end},
        ).all()  # fmt: skip
    return {(r.symbol, r.ts): Decimal(r.open) for r in rows}


def _summarise_refusals(engine: Engine, run_id: str, unrecorded: dict[str, int]) -> None:
    """One log line for the replay's refusals (each one is a row, or counted in ``unrecorded`` when the audit mode
    does not write it; a replay does not alert per refusal)."""
    with engine.connect() as conn:
        refusals = refusal_counts(conn, run_id, unrecorded)
    if refusals:
        counts = ", ".join(f"{reason} {n}" for reason, n in refusals.items())
        log.warning("backtest %s: %d orders refused (%s)", run_id, sum(refusals.values()), counts)


def _llm_usage(engine: Engine, run_id: str) -> dict[str, dict[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("""select status, count(*) as n, coalesce(sum(total_tokens), 0) as tokens from audit.llm_usage
                    where run_id = :r group by status order by status"""),
            {"r": run_id},
        ).all()  # fmt: skip
    return {r.status: {"count": int(r.n), "tokens": int(r.tokens)} for r in rows}


def replay_run(
    run_id: str, *, settings: Settings, rules: StrategyParams, symbols: list[str], times: list[datetime],
    fill_at: str, team: Team, audit: str = "full", out_dir: Path | None = None,
) -> tuple[RunReport, dict[str, int]]:  # fmt: skip
    """Replay the decision ``times`` with the team parameters of ``settings`` and ``rules`` on a fresh paper account
    of run ``run_id`` (its ``audit.runs`` row must exist, with ``audit`` in its parameters; the account is
    ``backtest_account(run_id)``) and return the run's metrics, with its HTML report written under ``out_dir`` when
    given, and the risk gate's refusals by check that ``audit`` did not write. The one replay engine: the backtest
    flow and the team walk-forward (each in-sample trial, each out-of-sample window) both run through it.

    ``audit`` (``AUDIT_MODES``): what the steps record, applied by the replay's audit buffer."""
    if audit not in AUDIT_MODES:
        raise ConfigError(f"audit must be one of {', '.join(AUDIT_MODES)}, got {audit!r}")
    engine = get_engine()
    account = backtest_account(run_id)
    _ensure_paper_account(settings, account, run_id)
    opens = _bar_opens(engine, settings, symbols, times[0], times[-1]) if fill_at == "next_open" else {}
    # the collector scans the window and the replay's history once per chunk, not every few hundred allocations
    with collected_between_chunks() as settle:
        window = ReplayWindow.load(engine, account=account, symbols=symbols, times=times, run_id=run_id,
                                   settings=settings, strategy=rules, scorer=team.scorer)  # fmt: skip
        settle()
        # each chunk's rows written while the next chunk runs; all written (or the writer's failure raised) at the exit
        with BackgroundWriter(name=f"replay-writer-{run_id[:8]}") as writer:
            replay = Replay(account, symbols, run_id, settings, team, rules, fill_at, times[-1], opens, window,
                            AuditBuffer(audit), writer)  # fmt: skip
            with progress(len(times), f"backtest {run_id[:8]}") as advance:
                for first in range(0, len(times), CHUNK_STEPS):
                    replay_chunk(replay, times[first : first + CHUNK_STEPS], advance)
                    settle()
    unrecorded = dict(replay.audit.refusals) if replay.audit is not None else {}
    _summarise_refusals(engine, run_id, unrecorded)
    with engine.connect() as conn:  # the report's notes (fills, LLM mode, exposure) come from the run's row
        report = build_run_report(conn, run_id, exchange=settings.exchange, timeframe=settings.timeframe,
                                  out_dir=out_dir, unrecorded_refusals=unrecorded)  # fmt: skip
    return report, unrecorded


@flow(name="backtest", on_failure=[alert_on_failure])
def backtest_flow(
    symbols: list[str] | None = None,
    end: datetime | None = None,
    steps: int = 168,
    llm_live: bool = False,
    llm_max_calls: int = 100,
    llm_max_tokens: int | None = None,
    allow_exposure: bool = False,
    strategy: str = "team",
    sma_fast: int = 10,
    sma_slow: int = 30,
    fill_at: str | None = None,
    audit: str = "full",
) -> dict[str, object]:
    """Decide at each of the ``steps`` bar closes up to ``end`` (default: the newest stored bar close) with the same
    ``decide`` and paper execution as the live flow, on an account of its own; returns metrics and the report path.

    - Point in time: decisions read only bars closed by then and news first seen by then.
    - Fills (``fill_at``, default the ``backtest_fill_at`` setting): ``next_open`` fills an order decided at bar t at
      bar t+1's open, with the paper broker's fees and slippage; the last step's orders expire unfilled. ``close``
      fills at the decision bar's close.
    - ``strategy``: ``team`` (every agent votes) or ``sma_cross`` (only SMA(``sma_fast``) vs SMA(``sma_slow``)).
    - LLM (team strategy with an endpoint configured): cache-only by default, so a replay costs nothing and repeats
      exactly; a miss is skipped and recorded. ``llm_live`` lets up to ``llm_max_calls`` misses be sent (and at most
      ``llm_max_tokens`` tokens in the run, default the ``llm_run_token_budget`` setting). A window starting before
      the model's training cutoff is refused (``ConfigError``) unless ``allow_exposure``; then the report flags it.
    - Live safety caps per run (``max_orders_per_run``) apply per decision step; every refusal is counted by reason
      (``refusals`` in the result and the report) and logged once as a summary, not alerted one by one.
    - ``audit`` (``alphaloom.reporting.run_report.AUDIT_MODES``): ``full`` records every decision's rows as the live
      flow does; ``decisions`` only the ``audit.decisions`` rows; ``none`` only the decisions that sent an order
      (the orders reference them). Every mode writes the run row and execution's rows (orders, fills, positions,
      balances), so the account and the report are the same; the mode is in the run's parameters and the report.
    """
    settings = get_settings()
    if llm_max_tokens is not None:
        settings = settings.model_copy(update={"llm.run_token_budget": llm_max_tokens})
    fill_at = fill_at or settings.backtest_fill_at
    if fill_at not in FILL_MODES:
        raise ConfigError(f"fill_at must be one of {sorted(FILL_MODES)}, got {fill_at!r}")
    if audit not in AUDIT_MODES:
        raise ConfigError(f"audit must be one of {', '.join(AUDIT_MODES)}, got {audit!r}")
    symbols = symbols or settings.symbols
    rules = StrategyParams(rule=strategy, sma_cross=SmaCrossParams(sma_fast, sma_slow))
    engine = get_engine()
    if end is None:
        with engine.connect() as conn:
            newest = conn.execute(
                text("select max(ts) from raw.ohlcv where exchange = :e and timeframe = :tf and symbol = any(:s)"),
                {"e": settings.exchange, "tf": settings.timeframe, "s": symbols},
            ).scalar()
        if newest is None:
            raise DataUnavailableError(f"no bars stored for {symbols} on {settings.exchange}")
        end = bar_close(newest, settings.timeframe)
    times = decision_times(end, steps, settings.timeframe)
    use_llm = settings.llm.base_url is not None and rules.rule == "team"
    exposure = llm_exposure(settings.llm.role_models, settings.llm.training_cutoffs, times[0]) if use_llm else None
    if exposure and not allow_exposure:
        raise ConfigError(f"backtest refused: {exposure}; pass --allow-exposure to run it anyway (it is flagged)")
    if use_llm and audit != "full":
        raise ConfigError(f"audit {audit!r} refused with the LLM analyst: it reads the account's past situations from "
                          "the audit rows; use audit full, or strategy sma_cross, or no LLM endpoint")  # fmt: skip

    parameters = {
        "symbols": symbols,
        "end": times[-1],
        "steps": steps,
        "llm_live": llm_live,
        "llm_max_calls": llm_max_calls,
        "llm_max_tokens": llm_max_tokens,
        "allow_exposure": allow_exposure,
        "strategy": strategy,
        "sma_fast": sma_fast,
        "sma_slow": sma_slow,
        "fill_at": fill_at,
        "audit": audit,
        "llm_model": settings.llm.model if use_llm else None,
        "exposure": exposure,
    }
    with audited_run("backtest", parameters) as (engine, run_id):
        team = build_team(settings)
        llm_agent = None
        if use_llm:  # the openai SDK is imported only for a run that consults the LLM
            from agents.llm.analyst import LlmAnalyst
            from agents.llm.team_agent import LlmTeam

            agent_class = LlmAnalyst if settings.llm.team_mode == "analyst" else LlmTeam
            llm_agent = agent_class(settings, live_calls=llm_max_calls if llm_live else 0)
        report, unrecorded = replay_run(run_id, settings=settings, rules=rules, symbols=symbols, times=times,
                                        fill_at=fill_at, team=Team(scorer=team.scorer, llm_agent=llm_agent),
                                        audit=audit, out_dir=settings.home / "reports")  # fmt: skip
        usage = _llm_usage(engine, run_id)
        with engine.connect() as conn:  # the report's notes (fills, LLM mode, exposure) come from the run's row
            refusals = refusal_counts(conn, run_id, unrecorded)
        calls = sum(usage.get(s, {}).get("count", 0) for s in ("ok", "repaired", "invalid", "timeout", "error"))
        return {"run_id": run_id, "account": report.account, "report": str(report.path), "trades": report.trades,
                "llm_tokens": sum(u["tokens"] for u in usage.values()), "llm_calls": calls, "llm_usage": usage,
                "exposed": exposure is not None, "refusals": refusals, "pnl_by": report.attribution, **report.metrics.as_dict()}  # fmt: skip
