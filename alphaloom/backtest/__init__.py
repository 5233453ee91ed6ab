"""Backtesting: the vectorized fast path for pure indicator strategies, and the shared fill and report conventions."""
