"""Tests of ``execution/algos/``: TWAP and iceberg splitting (pure numbers), child orders and the
slice schedule released when due, and smart routing across venues as a broker wrapper."""
