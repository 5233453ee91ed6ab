"""Tests of ``execution/``: ``submit.execute`` (plan -> gate -> send) with the order state machine and the
paper ledger, crash recovery (nothing lost, nothing doubled), and the kill switch's cancels (``execution/killswitch.py``).
The order store and exactly-once, the algorithms, the guards at send, accounts and brokers have their own folders
below, as in ``execution/``."""
