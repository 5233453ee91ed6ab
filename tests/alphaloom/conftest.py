"""Tests of the core ``alphaloom/``: the kernel here (domain values, timeframes, settings groups, currency and
quantity, the progress bar), its subpackages in the folders below, named as in ``alphaloom/``."""
