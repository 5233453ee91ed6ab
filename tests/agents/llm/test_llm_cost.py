"""LLM budgets and cost (issue 16, items 3 and 7) through the real openai SDK against the stand-in server of
support.llm_endpoint: the per-decision caps, per-model prices stored exactly, a run report and `alphaloom pnl` showing the LLM
spend and the return net of it (converted point in time), the training-cutoff guard over every role's model, and bad
price settings refused in one line."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from support import llm_endpoint
from support.llm_endpoint import Case, answer
from typer.testing import CliRunner

from agents.llm import LlmAnalyst
from agents.llm.budget import Spent, budget_exceeded, estimate
from agents.llm.prompts import render_messages
from alphaloom.backtest.exposure import llm_exposure
from alphaloom.cli import app
from alphaloom.domain import DecisionId, OrderIntent, Side
from alphaloom.errors import ConfigError
from alphaloom.fx import store_rate
from alphaloom.ops.kill_switch import KillSwitchState, kill_switch_state
from alphaloom.reporting.llm_spend import account_llm_spend, runs_llm_spend
from alphaloom.reporting.run_report import build_run_report
from alphaloom.settings import LlmPrice, LlmSettings, PaperSettings, RiskSettings, Settings, get_settings
from execution.accounts.registry import ensure_account
from execution.brokers.paper import PaperBroker
from execution.submit import execute

D = Decimal
runner = CliRunner()
ROOMY = {"run_token_budget": 10**9, "run_cost_budget": D(10**6), "daily_token_budget": 10**12,
         "daily_cost_budget": D(10**9)}  # fmt: skip

# the module's fixtures: the stand-in endpoint (one per module) and one test's run and symbol against it
endpoint, case = llm_endpoint.endpoint, llm_endpoint.case


def _reservation(case: Case, **features: float) -> int:
    return estimate(sum(len(m["content"]) for m in render_messages(case.inputs(**features))), Settings()).total_tokens


def test_the_decision_cap_skips_a_role_whose_call_would_not_fit_and_records_it(case: Case) -> None:
    """Two calls for one decision (symbol, as_of) with different prompts: the second's reservation does not fit in
    what the decision has left, so it is not sent; another decision of the same run still has its own room."""
    other = f"{case.symbol}-2"
    case.script(("json", (answer(), (400, 100))), ("json", (answer(), (400, 100))))
    case.script(("json", (answer(), (400, 100))), symbol=other)
    second_size = _reservation(case, close=102.0)
    cap = 500 + second_size - 1  # the first call's 500 tokens plus all but one of the second's reservation
    analyst = LlmAnalyst(case.settings(decision_token_budget=cap, **ROOMY))
    first = case.opine(analyst)
    second = case.opine(analyst, case.inputs(close=102.0))
    third = case.opine(analyst, case.inputs(other))
    assert not first.skipped and not third.skipped
    assert second.skipped and second.details["status"] == "budget_exceeded"
    assert f"decision token budget would be passed: 500 spent + {second_size} reserved > {cap}" in second.rationale
    assert case.endpoint.hits(case.symbol) == 1 and case.endpoint.hits(other) == 1
    rows = case.ledger()
    assert [(r.symbol, r.status, r.total_tokens) for r in rows] == [
        (case.symbol, "ok", 500), (case.symbol, "budget_exceeded", 0), (other, "ok", 500)]  # fmt: skip
    assert rows[1].detail.startswith("analyst skipped: decision token budget would be passed")


def test_the_decision_cost_cap_is_in_usd_at_the_models_price(case: Case) -> None:
    case.script(("json", (answer(), (1000, 100))))
    # 10 USD per 1M prompt tokens: the reservation alone (prompt estimate + 600 completion tokens at 20) passes 0.01
    analyst = LlmAnalyst(case.settings(prices={"test-model": LlmPrice(input=D(10), output=D(20))},
                                       decision_cost_budget=D("0.01"), **ROOMY))  # fmt: skip
    opinion = case.opine(analyst)
    assert opinion.skipped and "decision cost budget would be passed: 0 spent + " in opinion.rationale
    assert case.endpoint.hits(case.symbol) == 0
    assert [r.status for r in case.ledger()] == ["budget_exceeded"]


def test_budget_verdict_for_a_decision_is_pure() -> None:
    settings = Settings(llm=LlmSettings(decision_token_budget=1000, decision_cost_budget=D("0.02")))
    room, day = Spent(0, D(0)), Spent(0, D(0))
    assert budget_exceeded(room, day, settings, decision=Spent(400, D("0.01")), size=Spent(600, D("0.01"))) is None
    assert "decision token" in (budget_exceeded(room, day, settings, decision=Spent(401, D(0)), size=Spent(600, D(0)))
                                or "")  # fmt: skip
    assert "decision cost" in (budget_exceeded(room, day, settings, decision=Spent(0, D("0.015")),
                                               size=Spent(1, D("0.006"))) or "")  # fmt: skip


def test_each_model_is_priced_from_the_table_and_the_cost_is_stored_exactly(case: Case) -> None:
    prices = {"test-model": LlmPrice(input=D("0.15"), output=D("0.6")),
              "other-model": LlmPrice(input=D("2.5"), output=D("10"))}  # fmt: skip
    other = f"{case.symbol}-2"
    case.script(("json", (answer(), (1234, 567))))
    case.script(("json", (answer(), (1234, 567))), symbol=other)
    case.opine(LlmAnalyst(case.settings(prices=prices, **ROOMY)))
    opinion = case.opine(LlmAnalyst(case.settings(prices=prices, model="other-model", **ROOMY)),
                         case.inputs(other))  # fmt: skip
    # (1234 * 0.15 + 567 * 0.6) / 1e6 and (1234 * 2.5 + 567 * 10) / 1e6, USD, exact
    assert [(r.status, r.cost) for r in case.ledger()] == [("ok", D("0.0005253")), ("ok", D("0.008755"))]
    assert D(opinion.details["cost"]) == D("0.008755")
    with case.engine.connect() as conn:
        models = conn.execute(text("select model from audit.llm_usage where run_id = :r order by id"),
                              {"r": case.run_id}).scalars().all()  # fmt: skip
    assert models == ["test-model", "other-model"]


def test_a_model_without_a_price_is_refused_before_any_call(case: Case) -> None:
    with pytest.raises(ConfigError, match=r"no price configured for LLM model 'free-model'.*ALPHALOOM_LLM_PRICES"):
        LlmAnalyst(case.settings(model="free-model"))
    with pytest.raises(ConfigError, match="set together"):
        LlmAnalyst(case.settings(prices={}, price_per_1k_prompt=D(1)))
    assert case.endpoint.hits(case.symbol) == 0


@pytest.mark.parametrize(
    ("value", "words"),
    [('{"gpt-4o": {"input": 1, "output": 2}', ("ALPHALOOM_LLM_PRICES", "JSON expected")),
     ('{"gpt-4o": {"input": -1, "output": 2}}', ("ALPHALOOM_LLM_PRICES['gpt-4o']['input']=-1", "greater than or equal to 0")),
     ('{"gpt-4o": {"input": 1}}', ("ALPHALOOM_LLM_PRICES", "Field required"))],
)  # fmt: skip
def test_bad_price_settings_are_one_line_naming_the_variable(monkeypatch, value: str, words: tuple[str, ...]) -> None:
    monkeypatch.setenv("ALPHALOOM_LLM_PRICES", value)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["pnl"])
    finally:
        monkeypatch.delenv("ALPHALOOM_LLM_PRICES")
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]


def test_the_cutoff_guard_judges_every_roles_model() -> None:
    cutoffs = {"old-model": datetime(2023, 10, 1).date(), "new-model": datetime(2025, 1, 1).date()}
    start = datetime(2024, 6, 1, tzinfo=UTC)
    roles = [("analyst", "old-model"), ("bull", "new-model"), ("bear", "new-model")]
    exposure = llm_exposure(roles, cutoffs, start)
    assert exposure is not None and "new-model's training cutoff 2025-01-01 (bull, bear)" in exposure
    assert "old-model" not in exposure
    assert llm_exposure([("analyst", "old-model")], cutoffs, start) is None
    unknown = llm_exposure([("analyst", "old-model"), ("risk reviewer", "mystery")], cutoffs, start)
    assert unknown is not None and "no training cutoff configured for LLM model 'mystery' (risk reviewer)" in unknown


def test_a_live_decision_is_not_refused_for_an_unknown_cutoff_but_a_past_one_is() -> None:
    from flows.decide import llm_cutoff_refusal

    settings = Settings(
        timeframe="1h",
        llm=LlmSettings(base_url="http://127.0.0.1:9/v1", model="mystery"),
        risk=RiskSettings(live_max_decision_age_bars=2),
    )
    now = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    assert llm_cutoff_refusal(settings, datetime(2026, 3, 2, 11, tzinfo=UTC), now) is None  # about now: not exposed
    past = llm_cutoff_refusal(settings, datetime(2026, 3, 1, tzinfo=UTC), now)
    assert past is not None and "decides about the past" in past and "no training cutoff configured" in past
    known = settings.model_copy(update={"llm.training_cutoffs": {"mystery": datetime(2025, 1, 1).date()}})
    assert llm_cutoff_refusal(known, datetime(2026, 3, 1, tzinfo=UTC), now) is None  # after its cutoff
    assert llm_cutoff_refusal(settings.model_copy(update={"llm.base_url": None}), datetime(2020, 1, 1, tzinfo=UTC),
                              now) is None  # fmt: skip


# -- spend in reports and `alphaloom pnl` ------------------------------------------------------------------------------

T0 = datetime(2025, 11, 3, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _traded_run(engine: Engine, tag: str) -> tuple[str, str, str, str]:
    """A decide run of an account whose base currency is a made-up one, ``Q<tag>``: bought 10 at 100 at T0 + 1h,
    marked at 110 at T0 + 3h: +100 gross on 10000 starting cash (+1%)."""
    ccy = f"Q{tag[:5].upper()}"
    account, run_id, symbol, exchange = f"llmcost-{tag}", f"run-llmcost-{tag}", f"LC{tag.upper()}/{ccy}", f"lc-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow, parameters) values (:r, 'decide', cast(:p as jsonb))"),
                     {"r": run_id, "p": json.dumps({"account": account})})  # fmt: skip
        ensure_account(conn, account, "paper", ccy, "paper", D(10000), run_id)
        for hour, close in enumerate((100, 100, 110, 110)):
            conn.execute(
                text("insert into raw.ohlcv (exchange, symbol, timeframe, ts, open, high, low, close, volume, run_id) "
                     "values (:e, :s, '1h', :t, :c, :c, :c, :c, 1, :r)"),
                {"e": exchange, "s": symbol, "t": T0 + hour * HOUR, "c": close, "r": run_id},
            )  # fmt: skip
    settings = Settings(
        base_currency=ccy,
        paper=PaperSettings(fee_bps=D(0), slippage_bps=D(0)),
        risk=RiskSettings(max_order_notional=D(100000), max_position_notional=D(100000)),
    )

    def switch() -> KillSwitchState:
        with engine.connect() as c:
            return kill_switch_state(c)

    broker = PaperBroker(fee_bps=D(0), slippage_bps=D(0), kill_switch=switch)
    for n, (action, hours) in enumerate((("buy", 1), ("hold", 3))):
        decision_id = DecisionId(f"d-llmcost-{tag}-{n}")
        with engine.begin() as conn:
            conn.execute(
                text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action,
                                                     score, config_version, inputs)
                        values (:d, :r, :a, :s, '1h', :t, :act, 1.0, 'test', '{}'::jsonb)"""),
                {"d": decision_id, "r": run_id, "a": account, "s": symbol, "t": T0 + hours * HOUR, "act": action},
            )  # fmt: skip
            if action == "buy":
                execute(conn, [OrderIntent(decision_id, account, symbol, Side.BUY, D(10), D(100))], run_id=run_id,
                        broker=broker, settings=settings, event_time=T0 + hours * HOUR,
                        last_prices={symbol: D(100)})  # fmt: skip
    return account, run_id, symbol, exchange


def test_a_run_report_and_pnl_show_llm_spend_and_returns_net_of_it(engine: Engine, case: Case, tmp_path,
                                                                   monkeypatch) -> None:  # fmt: skip
    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol, exchange = _traded_run(engine, tag)
    ccy = f"Q{tag[:5].upper()}"
    case = Case(case.engine, case.endpoint, run_id, symbol)
    analyst = LlmAnalyst(case.settings(prices={"test-model": LlmPrice(input=D(2), output=D(8))}, **ROOMY,
                                       decision_token_budget=10**9, decision_cost_budget=D(10**6)))  # fmt: skip
    with engine.begin() as conn:  # 1 USD = 0.8 of the account's currency when the first call is paid...
        store_rate(conn, "USD", ccy, D("0.8"), datetime.now(UTC) - timedelta(days=1), source=f"test-{tag}")
    case.script(("json", (answer(), (100_000, 25_000))))  # 0.2 + 0.2 = 0.4 USD -> 0.32
    case.opine(analyst, case.inputs())
    with engine.begin() as conn:  # ... and 0.5 when the second is
        store_rate(conn, "USD", ccy, D("0.5"), datetime.now(UTC), source=f"test-{tag}")
    case.script(("json", (answer(), (50_000, 12_500))))  # 0.1 + 0.1 = 0.2 USD -> 0.1
    case.opine(analyst, case.inputs(close=102.0))
    case.opine(analyst, case.inputs())  # the first answer again, from the cache: it first cost 0.32
    assert [(r.status, r.cost) for r in case.ledger()] == [("ok", D("0.4")), ("ok", D("0.2")), ("cached", 0)]

    with engine.connect() as conn:
        spend = runs_llm_spend(conn, [run_id], ccy)
        assert (spend.paid, spend.reused, spend.total) == (D("0.42"), D("0.32"), D("0.74"))
        assert (spend.calls, spend.cached, spend.tokens) == (2, 1, 187_500)
        assert account_llm_spend(conn, account, ccy).paid == D("0.42")
        report = build_run_report(conn, run_id, exchange=exchange, timeframe="1h", out_dir=tmp_path)
        from alphaloom.cli.backtest import _net_of_llm  # what `alphaloom backtest` adds to its table

        assert _net_of_llm(conn, run_id, account, 0.01) == {"llm_spend": 0.74,
                                                            "net_total_return": pytest.approx(0.01 - 0.74 / 10000)}  # fmt: skip
    assert report.metrics.total_return == pytest.approx(0.01)
    assert report.net_total_return == pytest.approx(0.01 - 0.74 / 10000)
    page = report.path.read_text()
    assert "net total return" in page and "0.99%" in page and "llm spend" in page and "0.7400" in page
    assert f"LLM spend 0.7400 {ccy} (paid by this run 0.4200 for 2 calls" in page
    assert "gross +1.0000%, net of LLM cost +0.9926%" in page

    monkeypatch.setenv("ALPHALOOM_EXCHANGE", exchange)
    get_settings.cache_clear()
    try:
        pnl = runner.invoke(app, ["pnl", "--account", account])
        shown = runner.invoke(app, ["report", run_id])
    finally:
        monkeypatch.delenv("ALPHALOOM_EXCHANGE")
        get_settings.cache_clear()
    assert pnl.exit_code == 0, pnl.output
    out = " ".join(pnl.output.split())
    assert f"LLM spend 0.4200 {ccy} (2 calls, 187500 tokens" in out
    assert "P&L gross +100.00, net of LLM +99.58" in out and "return gross +1.0000%, net of LLM +0.9958%" in out
    assert shown.exit_code == 0, shown.output
    assert "llm spend" in shown.output and "0.7400" in shown.output and "0.0099" in shown.output


def test_spend_without_a_usd_rate_is_named_not_guessed(engine: Engine, case: Case, tmp_path, monkeypatch) -> None:
    tag = uuid.uuid4().hex[:8]
    account, run_id, symbol, exchange = _traded_run(engine, tag)
    ccy = f"Q{tag[:5].upper()}"
    case = Case(case.engine, case.endpoint, run_id, symbol)
    case.script(("json", (answer(), (1000, 100))))
    case.opine(LlmAnalyst(case.settings(**ROOMY)))
    with engine.connect() as conn:
        report = build_run_report(conn, run_id, exchange=exchange, timeframe="1h", out_dir=tmp_path)
    assert report.llm is None and report.net_total_return is None  # the report is still written
    assert (
        f"LLM spend not converted into {ccy}, so no return net of it is shown: no fx rate to convert USD into {ccy}"
        in (report.path.read_text())
    )
    monkeypatch.setenv("ALPHALOOM_EXCHANGE", exchange)
    get_settings.cache_clear()
    try:
        pnl = runner.invoke(app, ["pnl", "--account", account])
    finally:
        monkeypatch.delenv("ALPHALOOM_EXCHANGE")
        get_settings.cache_clear()
    assert pnl.exit_code == 1 and f"no fx rate to convert USD into {ccy}" in " ".join(pnl.output.split())
