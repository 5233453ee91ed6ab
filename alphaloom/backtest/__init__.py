"""Backtesting: the vectorized fast path for pure indicator strategies (``bar_frames``, ``vectorized``), account history
from fills (``equity_curve``), attribution, exposure and walk-forward. A run's report is in ``alphaloom.reporting``.
"""
