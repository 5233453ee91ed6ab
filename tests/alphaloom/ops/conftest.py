"""Tests of ``alphaloom/ops/``: alerts (to the local ``receiver``), the kill switch's home, keys and
credentials, backups, freshness, the embedded Prefect server, ``serve`` and the operations pipeline."""
