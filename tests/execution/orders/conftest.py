"""Tests of ``execution/orders/``: orders never lost, doubled or mislabelled (the submit journal,
lookups after an unknown outcome, the venue's answers brought into events). The transition table's tests are in
``tests/execution/test_execution.py``."""
