"""Tests of ``execution/safety/``: the guards at send (fat finger, live arming, halts, daily loss, the
price band) and protective exits (their trigger rules, arming by the entries, the bar check)."""
