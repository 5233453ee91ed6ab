"""Tests of ``alphaloom/venues/``: the venue clients' error tables (ccxt's exceptions mapped to
``alphaloom.errors``)."""
