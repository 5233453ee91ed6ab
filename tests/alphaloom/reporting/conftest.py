"""Tests of ``alphaloom/reporting/``: performance metrics against hand-worked examples, the run report and the explain
page (self-contained HTML, money to the cent)."""
