"""Orders: their state machine (``state``), their audit rows (``store``) and the submit journal (``journal``)."""
