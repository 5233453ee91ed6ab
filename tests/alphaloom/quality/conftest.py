"""Tests of ``alphaloom/quality/``: the Great Expectations gate, its quarantine and Data Docs, and
``alphaloom quality``."""
