"""Tests of ``agents/strategies/``: each price strategy on hand-checkable inputs, and the replay's
whole-window signals equal to the step-by-step ones."""
