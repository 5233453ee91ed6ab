"""Tests of ``alphaloom/ingest/``: price and news sources (files, feeds, ccxt on recorded responses,
OANDA candles on the stand-in), bad input quarantined by name, session calendars, the stream and the seeded
sample data."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
