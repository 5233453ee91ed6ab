"""Flow: the scheduled decision run — agents decide at ``as_of``, execution sends what risk approved."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from agents.deciding import LlmAnswer
from agents.params import DecisionParams
from agents.risk.gate import portfolio_gate
from agents.snapshot import read_snapshot
from agents.team import Team, build_team, consult_llm, decide
from alphaloom.backtest.exposure import llm_exposure
from alphaloom.db.engine import get_engine
from alphaloom.domain import AccountId, bar_open, require_utc, shift_bars, timeframe_delta
from alphaloom.errors import ConfigError
from alphaloom.ops.locks import account_run_lock
from alphaloom.reporting.decision_summary import summaries
from alphaloom.settings import Settings, get_settings
from alphaloom.task_runner import SettingsTaskRunner, runs_on_dask
from execution.accounts.registry import AccountMode, ensure_account
from execution.accounts.session import TradingSession, execute_in_session, open_session, release_in_session
from flows._alerts import alert_on_drawdown_transition, alert_on_failure
from flows._audit import audited_run


def decision_times(as_of: datetime, steps: int, timeframe: str) -> list[datetime]:
    """The ``steps`` bar-close times ending at ``as_of`` (floored to a bar boundary), oldest first: bar boundaries of
    the timeframe's grid (``bar_open``), so monthly decisions fall on month starts and weekly ones on Mondays."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    end = bar_open(require_utc(as_of, "as_of"), timeframe)
    return [shift_bars(end, timeframe, -k) for k in reversed(range(steps))]


# NO_CACHE: the team (a model, an HTTP client) and the session (a broker) must not be hashed as task inputs.
_worker_teams: dict[str, Team] = {}


def _process_team(settings: Settings) -> Team:
    """This process's team for ``settings``, built on first use (a Dask worker builds its own: a model and an HTTP
    client are never shipped between processes)."""
    key = settings.model_dump_json()
    if key not in _worker_teams:
        _worker_teams[key] = build_team(settings)
    return _worker_teams[key]


@task(cache_policy=NO_CACHE)
def consult_analysts(
    account: str, symbols: list[str], as_of: datetime, run_id: str, dry_run: bool, team: Team | None
) -> dict[str, LlmAnswer]:
    """The fan-out's share of a step: the expensive analysts of ``symbols`` at ``as_of`` (news scored by the sentiment
    model, the LLM analyst consulted), on the step's snapshot as the decision pass will read it. Committed (scores and
    LLM answers cached) unless ``dry_run``; nothing is decided, recorded or sent here. On a Dask worker ``team`` is
    None and the worker uses its own."""
    settings = get_settings()
    team = team or _process_team(settings)
    params = DecisionParams.from_settings(settings)
    with get_engine().connect() as conn, conn.begin() as tx:
        snapshot = read_snapshot(conn, account=account, symbols=symbols, as_of=as_of, run_id=run_id,
                                 settings=settings, params=params, scorer=team.scorer)  # fmt: skip
        answers = consult_llm(conn, snapshot, params, team.llm_agent, run_id=run_id)
        if dry_run:
            tx.rollback()
    return answers


@task(cache_policy=NO_CACHE)
def decide_symbols(
    account: str, symbols: list[str], as_of: datetime, run_id: str, dry_run: bool, team: Team,
    session: TradingSession | None = None, report: bool = False, answers: Mapping[str, LlmAnswer] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Decide and execute ``symbols`` at one step in one transaction, in order, through the account's ``session``; a
    dry run rolls everything back. With ``report``, ``details`` holds each decision's summary (read back before a dry
    run's rollback) and ``missing`` the symbols with no feature row known at ``as_of``. ``answers``: the LLM
    analyst's answers the fan-out obtained for this step (``consult_analysts``), instead of consulting it here."""
    settings = get_settings()
    with get_engine().connect() as conn, conn.begin() as tx:
        decisions = decide(
            conn, account=account, symbols=symbols, as_of=as_of, run_id=run_id, settings=settings,
            scorer=team.scorer, llm_agent=team.llm_agent, answers=answers,
        )  # fmt: skip
        intents = [intent for decision in decisions for intent in decision.intents]
        submitted = 0
        if intents and not dry_run and session is not None:
            result = execute_in_session(conn, session, intents, run_id=run_id, settings=settings, event_time=as_of)
            submitted = len(result.submitted)
        counts: dict[str, Any] = {"decisions": len(decisions), "intents": len(intents), "submitted": submitted}
        if report:
            decided = {d.symbol for d in decisions}
            counts["details"] = summaries(conn, decision_ids=[d.decision_id for d in decisions])
            counts["missing"] = [(as_of, s) for s in symbols if s not in decided]
        if dry_run:
            tx.rollback()
    return counts


@task(cache_policy=NO_CACHE)
def release_slices(as_of: datetime, run_id: str, session: TradingSession) -> int:
    """Send the account's TWAP slices due by ``as_of`` through the session's broker; returns the broker submits."""
    with get_engine().begin() as conn:
        settings = get_settings()
        released = release_in_session(conn, session, as_of, run_id=run_id, settings=settings,
                                      gate=portfolio_gate(settings))  # fmt: skip
    return released.broker_submits


@task(cache_policy=NO_CACHE)
def open_trading_session(account: str, run_id: str) -> TradingSession:
    """The account's broker; a live or shadow account is reconciled with its venue first (refusals recorded)."""
    return open_session(get_engine(), get_settings(), AccountId(account), run_id=run_id)


def _ensure_paper_account(settings: Settings, account: str, run_id: str) -> None:
    with get_engine().begin() as conn:
        ensure_account(
            conn,
            AccountId(account),
            venue="paper",
            base_currency=settings.base_currency,
            mode=AccountMode.PAPER,
            starting_cash=settings.starting_cash,
            run_id=run_id,
        )


def llm_cutoff_refusal(settings: Settings, first_decision: datetime, now: datetime | None = None) -> str | None:
    """Why a decision run from ``first_decision`` may not consult the configured LLM roles, or None.

    A decision about the present (``first_decision`` at most ``live_max_decision_age_bars`` bars before ``now``, the
    wall clock by default) is never exposed to look-ahead: no model can have been trained on what has not happened,
    so it is allowed whatever the models' training cutoffs, known or not. A decision about the past is judged as a
    backtest is (``llm_exposure``, every role's model): refused when it is before a model's cutoff, or when a model
    has no configured cutoff (its exposure cannot be judged)."""
    if settings.llm.base_url is None:
        return None
    now = now or datetime.now(UTC)
    if now - first_decision <= timeframe_delta(settings.timeframe) * settings.risk.live_max_decision_age_bars:
        return None
    exposure = llm_exposure(settings.llm.role_models, settings.llm.training_cutoffs, first_decision)
    if exposure is None:
        return None
    return (f"decision run refused: it decides about the past ({first_decision:%Y-%m-%d %H:%M} UTC), judged as a "
            f"backtest is: {exposure}; decide a later time, or replay it with `alphaloom backtest --allow-exposure`")  # fmt: skip


@flow(name="decide", on_failure=[alert_on_failure], task_runner=SettingsTaskRunner())
def decide_flow(
    symbols: list[str] | None = None,
    as_of: datetime | None = None,
    steps: int = 1,
    dry_run: bool = False,
    account: str | None = None,
    fan_out: bool = False,
    report: bool = False,
) -> dict[str, Any]:
    """Decide for ``symbols`` at the last ``steps`` bar closes up to ``as_of`` (default: now) on ``account``
    (default: the settings' paper account), through the account's own broker (``execution.accounts.session``): paper, live or
    shadow. A live or shadow account is reconciled with its venue before anything is decided; when it may not trade
    (not armed, no credentials, differences beyond tolerance: recorded and alerted) the run decides nothing and
    returns ``trading_refused`` = 1.

    One run per account at a time (``alphaloom.ops.locks``: a second one fails with "another decision run ... is in
    progress"). Steps run in order (a step sees the positions the previous one left). A step decides all symbols in
    one transaction, in order (``decide_symbols``), so portfolio-level risk sees the step's earlier orders and a replay
    is deterministic. ``fan_out=True`` first runs the step's expensive analysts (news sentiment scoring, the LLM
    analyst) for each symbol as its own task on the flow's task runner (``consult_analysts``; ``ALPHALOOM_DASK_ADDRESS``
    spreads them over Dask workers, each with its own team and engine); their answers then go into that same one
    transaction, where the vote, the portfolio-level risk checks (exposure per asset and class, leverage, correlation
    cluster, VaR, drawdown) and execution (orders per run, daily loss) run in symbol order in the flow's process. So a
    fan-out run records exactly what a run without fan-out records, whatever order its tasks finish in; one exception:
    the LLM budgets of a run (``llm_run_token_budget``, ``llm_run_cost_budget``) are reserved as each analyst task
    asks, so when they run out, which symbols' LLM opinions are skipped depends on the tasks' timing. Each step first
    sends the account's TWAP slices due by then (``execution.algos.release``; counted in ``released``). With
    ``report`` the result also lists every decision's summary (``details``: ``alphaloom.reporting.decision_summary``) and the
    (time, symbol) pairs without features (``missing``), for the operator's table. After each step, a move of the
    account's drawdown verdicts to reduce or halt raises an alert (``alphaloom.ops.drawdown_alerts``), once per transition.

    A live or shadow account's orders for a step more than ``live_max_decision_age_bars`` bars before the wall clock
    are refused (``execution.accounts.session``); with an LLM configured, a run deciding about the past before a role's model's
    training cutoff, or with a model whose cutoff is not configured, is refused whole (``ConfigError``), as a backtest
    is (``llm_cutoff_refusal``); a decision about the present never is."""
    settings = get_settings()
    account = account or settings.account
    symbols = symbols or settings.symbols
    times = decision_times(as_of or datetime.now(UTC), steps, settings.timeframe)
    refused = llm_cutoff_refusal(settings, times[0])
    if refused is not None:
        raise ConfigError(refused)
    parameters = {"account": account, "symbols": symbols, "as_of": times[-1].isoformat(), "steps": steps,
                  "dry_run": dry_run, "fan_out": fan_out}  # fmt: skip
    with (
        account_run_lock(get_engine(), account, wait_seconds=settings.ops.decision_lock_wait_seconds),
        audited_run("decide", parameters) as (_, run_id),
    ):
        _ensure_paper_account(settings, account, run_id)
        totals: dict[str, Any] = {"steps": len(times), "decisions": 0, "intents": 0, "submitted": 0, "released": 0,
                                  "trading_refused": 0}  # fmt: skip
        if report:
            totals |= {"run_id": run_id, "details": [], "missing": []}
        session = None if dry_run else open_trading_session(account, run_id)
        if session is not None and not session.may_trade:
            totals["trading_refused"] = 1  # recorded (audit.guard_trips) and alerted by the session
            return totals
        team = build_team(settings)
        remote = fan_out and runs_on_dask(settings)
        for step_time in times:
            if session is not None:
                totals["released"] += release_slices(step_time, run_id, session)
            answers = None
            if fan_out:
                answered = consult_analysts.map(
                    unmapped(account), [[symbol] for symbol in symbols], unmapped(step_time), unmapped(run_id),
                    unmapped(dry_run), unmapped(None if remote else team),
                ).result()  # fmt: skip
                answers = {symbol: answer for part in answered for symbol, answer in part.items()}
            counts = decide_symbols(account, symbols, step_time, run_id, dry_run, team, session, report, answers)
            for key, value in counts.items():
                totals[key] += value
            if not dry_run:  # a dry run rolled its verdicts back
                alert_on_drawdown_transition(get_engine(), AccountId(account), run_id, step_time)
        return totals
