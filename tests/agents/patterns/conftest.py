"""Tests of ``agents/patterns/``: candlesticks checked against TA-Lib, swings dated at their
confirmation, formations at their completion, the pattern analyst, and the analyst in the team (live and replayed).
The bar series they share come from ``tests/support/patterns.py``."""
