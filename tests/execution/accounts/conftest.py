"""Tests of ``execution/accounts/``: holdings (fees in the venue's currency), P&L and equity in the
account's base currency through stored fx rates, and the start-of-session reconciliation with a live venue."""
