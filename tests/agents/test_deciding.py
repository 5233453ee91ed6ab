"""The pure decision stage decides from a hand-built ``Snapshot``, with no database and no network."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from agents.deciding import DecisionDraft, _Once, decide_snapshot, feature_values
from agents.memory import AgentWeight
from agents.params import DecisionParams
from agents.risk import PortfolioContext
from agents.risk.sizing import trade_stats
from agents.sentiment import SentimentScore
from agents.snapshot import FEATURE_COLUMNS, AccountView, MarketView, Snapshot, restrict
from alphaloom.domain import Action, NewsId, NewsItem, Side, decision_id_for
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import Settings

AS_OF = datetime(2024, 5, 1, 12, tzinfo=UTC)
BULLISH = {"close": 100.0, "ema_10": 105.0, "ema_50": 100.0, "macd_hist": 0.5, "rsi_14": 60.0, "ret_1": 0.004,
           "realized_vol_20": 0.01}  # fmt: skip


def _snapshot(params: DecisionParams, *, kill_switch: bool = False, recorded: frozenset[str] = frozenset()) -> Snapshot:
    symbols = ("AAA/USDT", "BBB/USDT", "CCC/USDT")
    row = {"exchange": params.exchange, "timeframe": params.timeframe, "ts": AS_OF - timedelta(hours=1),
           "known_at": AS_OF, "dbt_invocation_id": "inv-1", **BULLISH}  # fmt: skip
    story = NewsItem(NewsId("n1"), None, "AAA beats, record growth", "", AS_OF - timedelta(hours=2),
                     AS_OF - timedelta(hours=1), False, ("AAA/USDT",))  # fmt: skip
    market = MarketView(
        features={s: {**row, "symbol": s} for s in symbols[:2]},  # CCC has no feature row known yet
        closes={s: [100.0 + i for i in range(30)] for s in symbols[:2]},
        news={"AAA/USDT": [story], "BBB/USDT": []},
        scores={story.id: SentimentScore("positive", 0.8)},
    )
    account = AccountView(
        kill_switch=KillSwitchState(kill_switch, "test" if kill_switch else "never engaged", ""),
        portfolio=PortfolioContext(equity=Decimal(100_000), peak_equity=Decimal(100_000)).prepared(),
        positions=dict.fromkeys(symbols, (Decimal(0), Decimal(0))),
        weights={a: AgentWeight(a, 1.0, None, 0) for a in ("technical", "news", "llm")},
        trades=trade_stats([]),
    )
    ids = {s: decision_id_for("acct", s, params.timeframe, AS_OF, params.version) for s in symbols}
    return Snapshot("acct", AS_OF, symbols, ids, recorded, market, account, "lexicon-test", None)


def test_a_snapshot_decides_without_io_in_symbol_order() -> None:
    params = DecisionParams.from_settings(Settings(exchange="x"))
    drafts = decide_snapshot(_snapshot(params), params, run_id="r1", git_sha="abc")
    assert [d.decision.symbol for d in drafts] == ["AAA/USDT", "BBB/USDT"], "no feature row: no decision"
    first = drafts[0]
    assert first.decision.action is Action.BUY and [i.side for i in first.decision.intents] == [Side.BUY]
    assert [o.agent for o in first.outputs] == ["technical", "news", "llm"] and first.outputs[2].skipped
    assert first.row.inputs["news"][0]["id"] == "n1" and first.row.git_sha == "abc" and first.row.run_id == "r1"
    assert ("raw.news", {"id": "n1"}) in first.lineage
    assert decide_snapshot(_snapshot(params), params, run_id="r1", git_sha="abc") == drafts, "deterministic"


def test_a_drafts_audit_rows_are_built_when_first_read_and_rows_given_are_kept() -> None:
    """``DecisionDraft``: deciding builds no audit row (a replay that writes none never pays for them); the first
    read builds it from the draft's basis and keeps it; a row given (``dataclasses.replace``) is the one read."""
    params = DecisionParams.from_settings(Settings(exchange="x"))
    draft = decide_snapshot(_snapshot(params), params, run_id="r1", git_sha="abc")[0]
    assert not {"row", "outputs", "lineage"} & set(vars(draft)), "nothing built by deciding"
    row = draft.row
    assert draft.row is row and row.action == "buy" and row.inputs["intents"][0]["approved"] is True
    assert list(row.inputs["features"]["values"]) == list(FEATURE_COLUMNS), "the record keeps every column"
    assert draft.entry == (100.0, AS_OF - timedelta(hours=1)), "what memory scores the opinions from"
    given = dataclasses.replace(draft, row=dataclasses.replace(row, inputs={"note": "given"}))
    assert given.row.inputs == {"note": "given"} and given.decision == draft.decision and given.outputs == draft.outputs
    with pytest.raises(ValueError, match="nor a basis"):
        _ = DecisionDraft(draft.decision).row


def test_a_feature_the_record_cleans_is_read_clean_by_the_technical_analyst() -> None:
    """The decision reads the feature values cleaned as the record keeps them (one mapping, ``_SymbolRead.values``):
    an infinite RSI is missing (a warm-up hold) and recorded as None."""
    params = DecisionParams.from_settings(Settings(exchange="x"))
    snapshot = _snapshot(params)
    features = {s: {**row, "rsi_14": float("inf")} for s, row in snapshot.market.features.items()}
    market = dataclasses.replace(snapshot.market, features=features)
    draft = decide_snapshot(dataclasses.replace(snapshot, market=market), params, run_id="r1")[0]
    technical = draft.decision.opinions[0]
    assert technical.agent == "technical" and technical.action is Action.HOLD and "rsi_14" in technical.rationale
    assert draft.row.inputs["features"]["values"]["rsi_14"] is None


def test_risk_verdicts_come_from_the_snapshot_and_recorded_symbols_are_left_alone() -> None:
    params = DecisionParams.from_settings(Settings(exchange="x"))
    halted = decide_snapshot(_snapshot(params, kill_switch=True, recorded=frozenset({"BBB/USDT"})), params, run_id="r")
    assert [d.decision.symbol for d in halted] == ["AAA/USDT"]
    assert halted[0].decision.intents == () and halted[0].verdicts
    assert not all(v.approved for _, verdicts in halted[0].verdicts for v in verdicts)


def test_lineage_with_and_without_stories_is_the_feature_row_its_bar_then_each_story() -> None:
    """A decision with no story nor post (``_lineage``'s shortcut) records the same two edges, in the same order, as
    one with a story records ahead of its story's."""
    params = DecisionParams.from_settings(Settings(exchange="x"))
    aaa, bbb = decide_snapshot(_snapshot(params), params, run_id="r1")
    for draft, stories in ((aaa, [("raw.news", {"id": "n1"})]), (bbb, [])):
        key = {"exchange": params.exchange, "symbol": draft.decision.symbol, "timeframe": params.timeframe,
               "ts": (AS_OF - timedelta(hours=1)).isoformat()}  # fmt: skip
        expected = [("marts.features", {**key, "dbt_invocation_id": "inv-1"}), ("raw.ohlcv", key), *stories]
        assert list(draft.lineage) == expected
        assert [o.agent for o in draft.decision.opinions] == ["technical", "news", "llm"], "no event analyst spoke"


def test_feature_values_record_every_column_with_nan_and_infinities_as_none() -> None:
    values = feature_values({"close": float("nan"), "rsi_14": float("-inf"), "volume": 5, "sma_10": 1.5})
    assert list(values) == list(FEATURE_COLUMNS)
    assert values["close"] is None and values["rsi_14"] is None and values["ema_10"] is None, "NaN, -inf, absent"
    assert values["volume"] == 5 and type(values["volume"]) is int and values["sma_10"] == 1.5, "kept as read"


def test_restricting_a_market_view_to_all_its_symbols_keeps_it_and_to_fewer_drops_the_rest() -> None:
    params = DecisionParams.from_settings(Settings(exchange="x"))
    market = _snapshot(params).market
    assert restrict(market, ["AAA/USDT", "BBB/USDT", "CCC/USDT"]) is market, "nothing to leave out: not rebuilt"
    fewer = restrict(market, ["BBB/USDT"])
    assert list(fewer.features) == ["BBB/USDT"] and list(fewer.news) == ["BBB/USDT"] and fewer.scores == {}
    stray = dataclasses.replace(market, scores={**market.scores, NewsId("n9"): SentimentScore("neutral", 0.0)})
    kept = restrict(stray, ["AAA/USDT", "BBB/USDT"])
    assert kept is not stray and kept == market, "a score of no story held is dropped, as before"


def test_a_value_built_on_first_read_is_built_once_and_kept_per_instance() -> None:
    built: list[int] = []

    @dataclasses.dataclass(frozen=True)
    class Holder:
        n: int

        @_Once
        def double(self) -> int:
            built.append(self.n)
            return 2 * self.n

    one, two = Holder(1), Holder(2)
    assert (one.double, one.double, two.double, two.double) == (2, 2, 4, 4)
    assert built == [1, 2]
    assert isinstance(Holder.__dict__["double"], _Once)


def test_a_rows_entry_is_the_entry_of_its_feature_values() -> None:
    """A replay cursor's entry of a row (``row_entries``) equals ``entry_of`` of the values a decision reads."""
    from agents.deciding import entry_of
    from agents.replay_cursor import row_entries
    from agents.snapshot import utc

    def row_entry(row: dict[str, object]) -> tuple[float | None, datetime]:
        return row_entries([row.get("close")], [row["ts"]], {})[0]

    naive = datetime(2026, 1, 5, 12)
    for close in (101.25, float("nan"), float("inf"), float("-inf"), None, Decimal("99.5"), 7, 0.0):
        for ts in (naive, datetime(2026, 1, 5, 12, tzinfo=UTC)):
            row = {"close": close, "ts": ts}
            got, want = row_entry(row), entry_of(feature_values(row, ("close",)), utc(ts))
            assert repr(got) == repr(want) and type(got[0]) is type(want[0]), close
    assert row_entry({"ts": naive}) == (None, naive.replace(tzinfo=UTC))
