"""Tests of ``agents/``, the decision: the agents' opinions, consensus, the trader, memory, sentiment, the
snapshot readers and the pure ``deciding`` stage, the recorder, the replay cursor and the team end to end against
PostgreSQL. The LLM roles, chart patterns, risk rules and strategies have their own folders below, as in ``agents/``.

``scorer`` (the finance lexicon, one per module) is shared by the team tests here; the database and Prefect fixtures
come from ``tests/conftest.py``."""

from __future__ import annotations

import pytest

from agents.sentiment import LexiconScorer


@pytest.fixture(scope="module")
def scorer() -> LexiconScorer:
    """The finance lexicon, one per test module."""
    return LexiconScorer()
