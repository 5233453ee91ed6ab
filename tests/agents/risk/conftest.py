"""Tests of ``agents/risk/``: the per-intent and portfolio rules, drawdown, VaR, correlation clusters and
the sizing modes, all pure with hand-worked numbers."""
