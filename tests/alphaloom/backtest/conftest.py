"""Tests of ``alphaloom/backtest/``: the vectorized path, the ledger and equity from fills,
walk-forward windows and attribution."""
