"""Earnings: what a press release, filing or story states about a company's results and guidance, and the opinion it
gives the event-driven vote. Pure: text in, values out; rule-based, so it works without an LLM endpoint.

``extract_earnings(title, summary)`` recognises an earnings report (quarterly/annual results, an 8-K item 2.02
"Results of Operations and Financial Condition", "earnings", "EPS") and extracts only what is stated:

- EPS and revenue, each with the actual figure and the estimate it is compared with when the text gives one
  ("EPS of $1.42 vs. the consensus estimate of $1.30", "revenue of $12.1 billion, above estimates of $11.8 billion");
  ``surprise_pct`` = (actual - estimate) / |estimate| x 100; ``outcome`` is beat / miss / in line from the numbers,
  else from the words ("beat analysts' estimates", "missed expectations") when no numbers are given;
- guidance ``raised`` / ``lowered`` / ``maintained`` ("raises full-year outlook", "cuts its forecast",
  "reaffirms guidance").

Nothing is inferred that the text does not say: a figure without an estimate has no outcome, a story without an
earnings cue is not an earnings report (``None``).

``earnings_opinion`` gives the ``earnings`` agent's view from the stories known for a symbol at ``as_of`` (ARCHITECTURE
§4: the same point-in-time news read as the news agent's): the newest earnings report in the window decides; its score
is the weighted mean of the EPS surprise, the revenue surprise (each scaled to ±1 at ``full_surprise_pct``) and the
guidance (±1, 0 maintained). No earnings report in the window: a skipped opinion, which does not count in the vote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from alphaloom.domain import Action, AgentOpinion, NewsItem, Signal

AGENT = "earnings"
SIGNAL = "earnings_surprise"

_RECOGNISE = re.compile(
    r"\b(earnings|quarterly results|(first|second|third|fourth)[- ]quarter (fiscal )?(\d{4} )?(results|earnings)"
    r"|q[1-4] (fiscal )?(\d{4} )?(results|earnings)|full[- ]year (\d{4} )?results|fiscal (\d{4} )?results"
    r"|results of operations and financial condition|item 2\.02|eps|earnings per share)\b",
    re.I,
)
_NUMBER = r"\(?-?\$?\s?\(?-?\d[\d,]*(?:\.\d+)?\)?"
_UNIT = r"(?:\s?(billion|bn|million|mln|mn|thousand|[bmk])\b)?"
_ESTIMATE_WORDS = (
    r"(?:(?:the|an?)\s+)?(?:(?:consensus|analysts'?|analyst|wall\s+street|street|lseg|factset|zacks)\s+)*"
    r"(?:estimates?|expectations?|forecasts?|projections?|view|consensus)(?:\s+of)?"
)
_COMPARE = (
    r"(?:vs\.?|versus|compared\s+(?:with|to)|against|"
    r"(?:above|below|ahead\s+of|short\s+of|topping|beating|missing|exceeding|in\s+line\s+with|matching)"
    r"(?:\s+the)?)"
)
_EPS_HEAD = r"(?:adjusted\s+|diluted\s+|gaap\s+|non-gaap\s+)?(?:eps|earnings\s+per\s+(?:diluted\s+)?share)"
_EPS = re.compile(
    _EPS_HEAD + r"[^$\d\-(]{0,40}?(?P<actual>" + _NUMBER + r")"
    r"(?P<tail>[^.;]{0,80}?" + _COMPARE + r"\s*" + _ESTIMATE_WORDS + r"?\s*(?P<estimate>" + _NUMBER + r"))?",
    re.I,
)
_EPS_PER_SHARE = re.compile(
    r"(?P<word>earnings|profit|net income|loss)\s+of\s+(?P<actual>" + _NUMBER + r")\s+(?:a|per)\s+(?:diluted\s+)?share"
    r"(?P<tail>[^.;]{0,80}?" + _COMPARE + r"\s*" + _ESTIMATE_WORDS + r"?\s*(?P<estimate>" + _NUMBER + r"))?",
    re.I,
)
_REVENUE = re.compile(
    r"\b(?:revenues?|net sales|total sales|sales)\b[^$\d\-(.;]{0,40}?(?P<actual>"
    + _NUMBER
    + r")(?P<unit>"
    + _UNIT
    + r")"
    r"(?P<tail>[^.;]{0,80}?" + _COMPARE + r"\s*" + _ESTIMATE_WORDS + r"?\s*(?P<estimate>" + _NUMBER + r")"
    r"(?P<est_unit>" + _UNIT + r"))?",
    re.I,
)
_BEAT_WORDS = re.compile(
    r"\b(beat|beats|beating|topped|tops|topping|exceeded|exceeds|surpassed|surpasses|above|ahead of)\b"
    r"[^.;]{0,40}?\b(estimates?|expectations?|consensus|forecasts?)\b",
    re.I,
)
_MISS_WORDS = re.compile(
    r"\b(miss|missed|misses|missing|fell short of|falls short of|below|short of|trailed|trails)\b"
    r"[^.;]{0,40}?\b(estimates?|expectations?|consensus|forecasts?)\b",
    re.I,
)
_GUIDANCE_NOUN = r"(?:guidance|outlook|forecast|full[- ]year\s+(?:targets?|view)|annual\s+(?:targets?|view))"
_GUIDANCE_GAP = r"(?:\s+(?:its|the|their|our|full[- ]year|annual|fiscal|fy|\d{4}|revenue|sales|eps|earnings|profit|"
_GUIDANCE_GAP += r"quarterly|q[1-4]|current[- ]quarter|and|\d{2}))*\s+"
_GUIDANCE = {
    "raised": re.compile(
        r"\b(rais(?:es|ed|ing|e)|lift(?:s|ed|ing)?|boost(?:s|ed|ing)?|increas(?:es|ed|ing|e)|hik(?:es|ed|ing|e)|"
        r"upgrad(?:es|ed|ing|e)|ups|upped)" + _GUIDANCE_GAP + _GUIDANCE_NOUN,
        re.I,
    ),
    "lowered": re.compile(
        r"\b(lower(?:s|ed|ing)?|cut(?:s|ting)?|reduc(?:es|ed|ing|e)|slash(?:es|ed|ing)?|trim(?:s|med|ming)?|"
        r"downgrad(?:es|ed|ing|e)|withdr(?:aws|ew|awn))" + _GUIDANCE_GAP + _GUIDANCE_NOUN,
        re.I,
    ),
    "maintained": re.compile(
        r"\b(reaffirm(?:s|ed|ing)?|maintain(?:s|ed|ing)?|reiterat(?:es|ed|ing|e)|confirm(?:s|ed|ing)?|"
        r"affirm(?:s|ed|ing)?)" + _GUIDANCE_GAP + _GUIDANCE_NOUN,
        re.I,
    ),
}
_UNITS = {"billion": 10**9, "bn": 10**9, "b": 10**9, "million": 10**6, "mln": 10**6, "mn": 10**6, "m": 10**6,
          "thousand": 10**3, "k": 10**3}  # fmt: skip
_IN_LINE_PCT = Decimal("0.5")  # |surprise| below this (in %) is "in line": a rounding, not a beat


@dataclass(frozen=True, slots=True)
class Figure:
    """One stated figure: ``actual`` and, when the text compares it, ``estimate`` (revenue in units, not millions);
    ``outcome`` is ``beat``, ``miss``, ``in_line`` or None (nothing to compare with)."""

    metric: str
    actual: Decimal | None
    estimate: Decimal | None
    outcome: str | None

    @property
    def surprise_pct(self) -> float | None:
        """(actual - estimate) / |estimate| in percent; None without both, or with a zero estimate."""
        if self.actual is None or self.estimate is None or self.estimate == 0:
            return None
        return float((self.actual - self.estimate) / abs(self.estimate) * 100)

    def as_dict(self) -> dict[str, Any]:
        surprise = self.surprise_pct
        return {
            "metric": self.metric,
            "actual": None if self.actual is None else str(self.actual),
            "estimate": None if self.estimate is None else str(self.estimate),
            "surprise_pct": None if surprise is None else round(surprise, 4),
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class EarningsReport:
    """What one text states about results: EPS, revenue, guidance (each None when not stated)."""

    eps: Figure | None
    revenue: Figure | None
    guidance: str | None
    outcome_words: str | None  # "beat" / "miss" when the text says so without numbers

    def as_dict(self) -> dict[str, Any]:
        return {
            "eps": None if self.eps is None else self.eps.as_dict(),
            "revenue": None if self.revenue is None else self.revenue.as_dict(),
            "guidance": self.guidance,
            "outcome_words": self.outcome_words,
        }


def _amount(raw: str, unit: str | None = None) -> Decimal | None:
    """``$1,234.5`` / ``(0.12)`` (a loss) / ``-0.12`` as a Decimal, times the unit (billion, million, ...)."""
    text = raw.strip()
    negative = "-" in text or ("(" in text and ")" in text)
    digits = re.sub(r"[^\d.]", "", text)
    if not digits or digits == ".":
        return None
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return None
    if unit:
        value *= _UNITS[unit.strip().lower()]
    return -value if negative else value


def _outcome(actual: Decimal | None, estimate: Decimal | None) -> str | None:
    if actual is None or estimate is None:
        return None
    if estimate != 0 and abs((actual - estimate) / abs(estimate) * 100) < _IN_LINE_PCT:
        return "in_line"
    return "beat" if actual > estimate else "miss" if actual < estimate else "in_line"


def _eps(text: str) -> Figure | None:
    match = _EPS.search(text) or _EPS_PER_SHARE.search(text)
    if match is None:
        return None
    actual = _amount(match["actual"])
    if actual is not None and actual > 0 and (match.groupdict().get("word") or "").lower() == "loss":
        actual = -actual  # "a loss of $0.12 per share"
    estimate = _amount(match["estimate"]) if match["estimate"] else None
    return Figure("eps", actual, estimate, _outcome(actual, estimate))


def _revenue(text: str) -> Figure | None:
    match = _REVENUE.search(text)
    if match is None:
        return None
    unit = (match["unit"] or "").strip() or None
    actual = _amount(match["actual"], unit)
    estimate = None
    if match["estimate"]:
        estimate = _amount(match["estimate"], (match["est_unit"] or "").strip() or unit)
    return Figure("revenue", actual, estimate, _outcome(actual, estimate))


def _guidance(text: str) -> str | None:
    found = [(m.start(), kind) for kind, pattern in _GUIDANCE.items() if (m := pattern.search(text))]
    return min(found)[1] if found else None


def is_earnings_text(text: str) -> bool:
    """Does ``text`` speak of results (an earnings cue)?"""
    return _RECOGNISE.search(text) is not None


def extract_earnings(title: str, summary: str = "") -> EarningsReport | None:
    """What ``title`` and ``summary`` state about results and guidance; None when they are not about earnings or
    state nothing extractable."""
    text = " ".join(f"{title}. {summary}".split())
    if not is_earnings_text(text):
        return None
    eps, revenue, guidance = _eps(text), _revenue(text), _guidance(text)
    words = "beat" if _BEAT_WORDS.search(text) else "miss" if _MISS_WORDS.search(text) else None
    if eps is None and revenue is None and guidance is None and words is None:
        return None
    return EarningsReport(eps, revenue, guidance, words)


@dataclass(frozen=True, slots=True)
class EarningsParams:
    """Parameters of the earnings agent; part of the decision's config version when it votes."""

    full_surprise_pct: float = 10.0  # a surprise this large (in %) counts fully
    eps_weight: float = 0.4
    revenue_weight: float = 0.3
    guidance_weight: float = 0.3
    action_threshold: float = 0.2

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _figure_score(figure: Figure | None, params: EarningsParams) -> float | None:
    if figure is None:
        return None
    surprise = figure.surprise_pct
    if surprise is not None:
        return max(-1.0, min(1.0, surprise / params.full_surprise_pct))
    return None


def report_score(report: EarningsReport, params: EarningsParams = EarningsParams()) -> float | None:
    """The report's signed score in [-1, 1]: weighted mean of the stated components; None when none can be scored."""
    parts: list[tuple[float, float]] = []
    eps, revenue = _figure_score(report.eps, params), _figure_score(report.revenue, params)
    if eps is not None:
        parts.append((params.eps_weight, eps))
    if revenue is not None:
        parts.append((params.revenue_weight, revenue))
    if report.guidance is not None:
        parts.append((params.guidance_weight, {"raised": 1.0, "lowered": -1.0, "maintained": 0.0}[report.guidance]))
    if eps is None and revenue is None and report.outcome_words is not None:
        parts.append((params.eps_weight, 0.5 if report.outcome_words == "beat" else -0.5))
    total = sum(w for w, _ in parts)
    if total <= 0:
        return None
    return max(-1.0, min(1.0, sum(w * s for w, s in parts) / total))


def latest_report(items: Sequence[NewsItem]) -> tuple[NewsItem, EarningsReport] | None:
    """The newest story (by first-seen time, then id) that states an earnings report, with its extraction."""
    for item in sorted(items, key=lambda i: (i.first_seen_at, i.id), reverse=True):
        report = extract_earnings(item.title, item.summary)
        if report is not None and report_score(report) is not None:
            return item, report
    return None


def earnings_signal(symbol: str, items: Sequence[NewsItem], params: EarningsParams = EarningsParams()) -> Signal | None:
    """The event-driven strategy's earnings signal: the newest report's score; None without one."""
    found = latest_report(items)
    if found is None:
        return None
    item, report = found
    score = report_score(report, params)
    assert score is not None
    return Signal(SIGNAL, symbol, score, f"earnings report {item.id} ({item.first_seen_at.isoformat()}): "
                  + _describe(report))  # fmt: skip


def _describe(report: EarningsReport) -> str:
    parts = []
    for figure in (report.eps, report.revenue):
        if figure is not None and figure.outcome is not None:
            parts.append(f"{figure.metric} {figure.outcome} ({figure.surprise_pct:+.1f}%)")
        elif figure is not None:
            parts.append(f"{figure.metric} {figure.actual} (no estimate stated)")
    if report.guidance is not None:
        parts.append(f"guidance {report.guidance}")
    if report.outcome_words is not None and report.eps is None and report.revenue is None:
        parts.append(f"stated {report.outcome_words} of estimates")
    return ", ".join(parts)


def earnings_opinion(
    symbol: str, as_of: datetime, items: Sequence[NewsItem], params: EarningsParams = EarningsParams()
) -> AgentOpinion:
    """BUY when the newest report's score >= threshold, SELL when <= -threshold, else HOLD; confidence = |score|
    (HOLD: 1 - |score|). No earnings report among ``items``: skipped (it does not dilute the vote)."""
    found = latest_report(items)
    if found is None:
        return AgentOpinion(AGENT, symbol, as_of, Action.HOLD, 0.0, "no earnings report in the window",
                            skipped=True, details={"report": None})  # fmt: skip
    item, report = found
    score = report_score(report, params)
    assert score is not None
    action = (
        Action.BUY
        if score >= params.action_threshold
        else Action.SELL
        if score <= -params.action_threshold
        else Action.HOLD
    )
    confidence = abs(score) if action is not Action.HOLD else 1.0 - abs(score)
    return AgentOpinion(
        agent=AGENT,
        symbol=symbol,
        as_of=as_of,
        action=action,
        confidence=round(confidence, 6),
        rationale=f"{_describe(report)}; score {score:+.2f} (threshold ±{params.action_threshold:g}) -> {action.value}",
        details={"news_id": item.id, "first_seen_at": item.first_seen_at.isoformat(), "score": score,
                 **report.as_dict()},
    )  # fmt: skip


def stated_reports(items: Sequence[NewsItem]) -> tuple[dict[str, Any], ...]:
    """Every earnings report stated in ``items`` (oldest first), as the LLM roles are shown it: the story's id and
    first-seen time with what the extractor read, and the story's title and text (raw: the LLM team strips them
    before a model sees them). The LLM interprets the text; this is what the rules found in it."""
    found = []
    for item in sorted(items, key=lambda i: (i.first_seen_at, i.id)):
        report = extract_earnings(item.title, item.summary)
        if report is not None:
            found.append({"news_id": item.id, "first_seen_at": item.first_seen_at.isoformat(), **report.as_dict(),
                          "title": item.title, "text": item.summary})  # fmt: skip
    return tuple(found)
