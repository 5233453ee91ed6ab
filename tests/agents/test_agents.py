"""Agents: pure unit tests with hand-worked numbers, and the sentiment cache against PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text

from agents.consensus import consensus
from agents.news import news_opinion, recent_news
from agents.risk import all_approved, check_intent
from agents.sentiment import LexiconScorer, SentimentScore, score_news
from agents.technical import WARMUP_CONFIDENCE, technical_opinion
from agents.trader import order_intents, quantity_step, size_quantity
from alphaloom.domain import Action, AgentOpinion, DecisionId, NewsId, NewsItem, OrderIntent, Side
from alphaloom.fx import QuoteRate
from alphaloom.guards import HardLimits
from alphaloom.markets import MarketSpec
from alphaloom.ops.kill_switch import KillSwitchState

AS_OF = datetime(2024, 3, 1, 12, tzinfo=UTC)
BULLISH = {"close": 100.0, "ema_10": 105.0, "ema_50": 100.0, "macd_hist": 0.5, "rsi_14": 60.0}
BEARISH = {"close": 100.0, "ema_10": 95.0, "ema_50": 100.0, "macd_hist": -0.5, "rsi_14": 40.0}


# --- technical -------------------------------------------------------------------------------------------------------


def test_technical_bullish_trend_buys_with_score_as_confidence() -> None:
    opinion = technical_opinion(BULLISH, "BTC/USDT", AS_OF)
    # trend (1 + 1) / 2 = 1; momentum (60 - 50) / 50 = 0.2; score 0.7 * 1 + 0.3 * 0.2 = 0.76
    assert opinion.action is Action.BUY
    assert opinion.confidence == pytest.approx(0.76)
    assert "EMA10 105" in opinion.rationale and "EMA50 100" in opinion.rationale and "RSI14 60.0" in opinion.rationale


def test_technical_bearish_trend_sells() -> None:
    opinion = technical_opinion(BEARISH, "BTC/USDT", AS_OF)
    assert opinion.action is Action.SELL
    assert opinion.confidence == pytest.approx(0.76)
    assert opinion.details["score"] == pytest.approx(-0.76)


def test_technical_overbought_vetoes_a_buy_and_oversold_vetoes_a_sell() -> None:
    overbought = technical_opinion({**BULLISH, "rsi_14": 75.0}, "X/USDT", AS_OF)
    oversold = technical_opinion({**BEARISH, "rsi_14": 25.0}, "X/USDT", AS_OF)
    assert overbought.action is Action.HOLD and "overbought" in overbought.rationale
    assert oversold.action is Action.HOLD and "oversold" in oversold.rationale


def test_technical_mixed_trend_holds() -> None:
    opinion = technical_opinion({**BULLISH, "macd_hist": -0.5, "rsi_14": 50.0}, "X/USDT", AS_OF)
    assert opinion.action is Action.HOLD
    assert opinion.details["score"] == pytest.approx(0.0)


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_technical_warm_up_holds_with_low_confidence(missing: float | None) -> None:
    opinion = technical_opinion({**BULLISH, "ema_50": missing, "rsi_14": None}, "X/USDT", AS_OF)
    assert opinion.action is Action.HOLD
    assert opinion.confidence == WARMUP_CONFIDENCE <= 0.1
    assert "ema_50" in opinion.rationale and "rsi_14" in opinion.rationale


# --- consensus -------------------------------------------------------------------------------------------------------


def _opinion(agent: str, action: Action, confidence: float, skipped: bool = False) -> AgentOpinion:
    return AgentOpinion(agent, "X/USDT", AS_OF, action, confidence, "test", skipped=skipped)


def test_consensus_weighted_vote_ignores_skipped_agents() -> None:
    opinions = [
        _opinion("technical", Action.BUY, 0.76),
        _opinion("news", Action.HOLD, 0.0),
        _opinion("llm", Action.SELL, 1.0, skipped=True),
    ]
    action, score = consensus(opinions)
    assert action is Action.BUY
    assert score == pytest.approx(0.76 / 1.5)  # (1.0 * 0.76 + 0.5 * 0) / (1.0 + 0.5)


def test_consensus_disagreement_holds_and_agreement_on_sell_sells() -> None:
    action, score = consensus([_opinion("technical", Action.BUY, 0.4), _opinion("news", Action.SELL, 0.6)])
    assert action is Action.HOLD and score == pytest.approx((0.4 - 0.3) / 1.5)
    action, score = consensus([_opinion("technical", Action.SELL, 0.9), _opinion("news", Action.SELL, 0.6)])
    assert action is Action.SELL and score == pytest.approx(-(0.9 + 0.3) / 1.5)


def test_consensus_of_only_skipped_opinions_holds() -> None:
    assert consensus([_opinion("llm", Action.BUY, 1.0, skipped=True)]) == (Action.HOLD, 0.0)


# --- trader ----------------------------------------------------------------------------------------------------------

DID = DecisionId("d-test")


def test_trader_sizes_crypto_to_micro_units_and_stocks_to_whole_shares() -> None:
    # the shipped configuration: the sample crypto symbols trade in 1e-6, the sample stocks in whole shares
    assert quantity_step("BTC/USDT") == Decimal("0.000001") and quantity_step("AAPL/USD") == Decimal(1)
    assert size_quantity(Decimal(5000), Decimal(43000), Decimal("0.000001")) == Decimal("0.116279")  # 0.11627906..
    [crypto] = order_intents(
        decision_id=DID,
        account="a",
        symbol="BTC/USDT",
        action=Action.BUY,
        position_quantity=Decimal(0),
        price=Decimal(43000),
        order_notional=Decimal(5000),
        market=MarketSpec("BTC/USDT", "crypto", Decimal("0.000001")),
        quote_rate=SAME,
    )
    assert (crypto.side, crypto.quantity, crypto.leg) == (Side.BUY, Decimal("0.116279"), 0)
    assert crypto.notional <= Decimal(5000)
    [stock] = order_intents(
        decision_id=DID,
        account="a",
        symbol="AAPL/USD",
        action=Action.BUY,
        position_quantity=Decimal(0),
        price=Decimal("187.30"),
        order_notional=Decimal(5000),
        market=MarketSpec("AAPL/USD", "equity", Decimal(1)),
        quote_rate=QuoteRate("USD", "USDT", Decimal(1)),
    )
    assert stock.quantity == Decimal(26)  # 5000 / 187.30 = 26.69


def test_trader_is_long_only_and_sells_the_whole_position() -> None:
    def intents(action: Action, position: str, price: str = "100") -> list[OrderIntent]:
        return order_intents(
            decision_id=DID,
            account="a",
            symbol="AAPL/USD",
            action=action,
            position_quantity=Decimal(position),
            price=Decimal(price),
            order_notional=Decimal(5000),
            market=MarketSpec("AAPL/USD", "equity", Decimal(1)),
            quote_rate=QuoteRate("USD", "USDT", Decimal(1)),
        )

    [sell] = intents(Action.SELL, "37")
    assert (sell.side, sell.quantity) == (Side.SELL, Decimal(37))
    assert intents(Action.SELL, "0") == []  # flat: no short
    assert intents(Action.BUY, "37") == []  # already long
    assert intents(Action.HOLD, "0") == []
    assert intents(Action.BUY, "0", price="6000") == []  # less than one share


# --- risk ------------------------------------------------------------------------------------------------------------

LIMITS = HardLimits(Decimal(10000), Decimal(20000), Decimal(5))
OFF = KillSwitchState(False, "never engaged", "")
SAME = QuoteRate.same("USDT")


def _intent(side: Side, quantity: str, price: str = "100") -> OrderIntent:
    return OrderIntent(DID, "a", "X/USDT", side, Decimal(quantity), Decimal(price))


def test_risk_approves_within_limits_and_records_every_check_with_numbers() -> None:
    verdicts = check_intent(
        _intent(Side.BUY, "50"),
        limits=LIMITS,
        current_quantity=Decimal(0),
        last_price=Decimal(100),
        kill_switch=OFF,
        quote_rate=SAME,
    )
    assert [v.check_name for v in verdicts] == [
        "kill_switch",
        "long_only",
        "max_order_notional",
        "max_position_notional",
        "price_band",
    ]
    assert all_approved(verdicts)
    by_name = {v.check_name: v for v in verdicts}
    assert by_name["max_order_notional"].numbers == {"notional": "5000", "limit": "10000"}


def test_risk_denies_order_and_position_notional_and_price_band() -> None:
    verdicts = check_intent(
        _intent(Side.BUY, "120", price="106"),  # notional 120 * 106 = 12720 > 10000
        limits=LIMITS,
        current_quantity=Decimal(80),  # (80 + 120) * 106 = 21200 > 20000
        last_price=Decimal(100),  # 6% away > 5% band
        kill_switch=OFF,
        quote_rate=SAME,
    )
    denied = {v.check_name: v for v in verdicts if not v.approved}
    assert set(denied) == {"max_order_notional", "max_position_notional", "price_band"}
    assert denied["max_order_notional"].numbers["notional"] == "12720"
    assert denied["max_position_notional"].numbers["position_notional"] == "21200"


def test_risk_denies_everything_while_the_kill_switch_is_on_and_shorting_always() -> None:
    engaged = KillSwitchState(True, "drill", "ops")
    verdicts = check_intent(
        _intent(Side.BUY, "1"),
        limits=LIMITS,
        current_quantity=Decimal(0),
        last_price=Decimal(100),
        kill_switch=engaged,
        quote_rate=SAME,
    )
    assert not all_approved(verdicts) and "drill" in verdicts[0].reason
    short = check_intent(
        _intent(Side.SELL, "5"),
        limits=LIMITS,
        current_quantity=Decimal(3),
        last_price=Decimal(100),
        kill_switch=OFF,
        quote_rate=SAME,
    )
    assert [v.check_name for v in short if not v.approved] == ["long_only"]


def test_risk_denies_stale_features() -> None:
    verdicts = check_intent(
        _intent(Side.BUY, "1"),
        limits=LIMITS,
        current_quantity=Decimal(0),
        last_price=Decimal(100),
        kill_switch=OFF,
        quote_rate=SAME,
        feature_age=timedelta(hours=5),
        max_feature_age=timedelta(hours=3),
    )
    assert [v.check_name for v in verdicts if not v.approved] == ["feature_freshness"]


# --- news and sentiment ----------------------------------------------------------------------------------------------


def test_news_opinion_without_news_holds_with_zero_confidence() -> None:
    opinion = news_opinion("X/USDT", AS_OF, {})
    assert (opinion.action, opinion.confidence, opinion.details["count"]) == (Action.HOLD, 0.0, 0)


def test_news_opinion_averages_scores_and_scales_confidence_by_count() -> None:
    scores = {NewsId("a"): SentimentScore("positive", 0.9), NewsId("b"): SentimentScore("neutral", 0.0)}
    opinion = news_opinion("X/USDT", AS_OF, scores)
    assert opinion.action is Action.BUY  # mean 0.45 >= 0.2
    assert opinion.confidence == pytest.approx(0.45 * 2 / 3)
    assert "2 stories" in opinion.rationale and "+0.45" in opinion.rationale


@pytest.fixture(scope="module")
def lexicon() -> LexiconScorer:
    return LexiconScorer()


def test_lexicon_scorer_uses_loughran_mcdonald_offline(lexicon: LexiconScorer) -> None:
    assert lexicon.name == "lexicon-lm"
    good, bad, flat = lexicon.score(
        [
            "Company reports record profit and strong gains",
            "Losses widen amid fraud lawsuit and bankruptcy fears",
            "The meeting is on Tuesday",
        ]
    )
    assert good.label == "positive" and good.score > 0.5
    assert bad.label == "negative" and bad.score < -0.5
    assert flat == SentimentScore("neutral", 0.0)
    assert all(type(s.score) is float for s in (good, bad, flat))


class CountingScorer:
    """A real scorer (the lexicon) that counts how many texts it was asked to score."""

    def __init__(self, inner: LexiconScorer) -> None:
        self.inner = inner
        self.name = f"counting-{uuid.uuid4().hex[:8]}"
        self.texts_scored = 0

    def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        self.texts_scored += len(texts)
        return self.inner.score(texts)


def _run(conn, run_id: str) -> None:
    conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})


def _news(conn, run_id: str, symbol: str, title: str, first_seen_at: datetime) -> NewsItem:
    news_id = NewsId(f"n-{uuid.uuid4().hex[:12]}")
    conn.execute(
        text(
            """insert into raw.news (id, url, title, summary, published_at, first_seen_at, first_seen_assumed, run_id)
               values (:id, null, :t, '', :p, :f, false, :r)"""
        ),
        {"id": news_id, "t": title, "p": first_seen_at - timedelta(minutes=5), "f": first_seen_at, "r": run_id},
    )
    conn.execute(text("insert into raw.news_symbols (news_id, symbol) values (:n, :s)"), {"n": news_id, "s": symbol})
    return NewsItem(news_id, None, title, "", first_seen_at - timedelta(minutes=5), first_seen_at, False, (symbol,))


def test_score_news_reads_back_cached_scores_instead_of_rescoring(engine: Engine, lexicon: LexiconScorer) -> None:
    scorer = CountingScorer(lexicon)
    run_id = f"run-{uuid.uuid4().hex}"
    symbol = f"S{uuid.uuid4().hex[:6]}/USDT"
    with engine.begin() as conn:
        _run(conn, run_id)
        items = [
            _news(conn, run_id, symbol, "Record profit beats estimates", AS_OF - timedelta(hours=1)),
            _news(conn, run_id, symbol, "Fraud probe widens losses", AS_OF - timedelta(hours=2)),
            _news(conn, run_id, symbol, "Record profit beats estimates", AS_OF - timedelta(hours=3)),  # same text
        ]
        first = score_news(conn, run_id, scorer, items)
    assert scorer.texts_scored == 2  # the repeated text is scored once
    with engine.begin() as conn:
        second = score_news(conn, run_id, scorer, items)
        stored = conn.execute(
            text("select count(*) from audit.sentiment_scores where scorer = :s"), {"s": scorer.name}
        ).scalar()
    assert scorer.texts_scored == 2  # nothing re-scored
    assert first == second and stored == 2
    assert first[items[0].id].label == "positive" and first[items[1].id].label == "negative"


def test_recent_news_is_point_in_time_and_windowed(engine: Engine) -> None:
    run_id = f"run-{uuid.uuid4().hex}"
    symbol = f"S{uuid.uuid4().hex[:6]}/USDT"
    with engine.begin() as conn:
        _run(conn, run_id)
        at_as_of = _news(conn, run_id, symbol, "seen exactly at as_of", AS_OF)
        inside = _news(conn, run_id, symbol, "seen an hour before", AS_OF - timedelta(hours=1))
        _news(conn, run_id, symbol, "seen after as_of", AS_OF + timedelta(seconds=1))
        _news(conn, run_id, symbol, "too old", AS_OF - timedelta(hours=24))
        _news(conn, run_id, "OTHER/USDT", "other symbol", AS_OF - timedelta(hours=1))
        found = recent_news(conn, symbol, AS_OF, timedelta(hours=24))
    assert [n.id for n in found] == [inside.id, at_as_of.id]
