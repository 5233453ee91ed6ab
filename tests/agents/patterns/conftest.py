"""Tests of ``agents/patterns/``: candlesticks checked against TA-Lib, swings dated at their
confirmation, formations at their completion, the pattern analyst, the analyst in the team (live and replayed), and
all of it against a frozen copy of the code before it was made faster (``reference_patterns.py``, result for result).
The bar series they share come from ``tests/support/patterns.py``."""
