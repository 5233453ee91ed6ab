"""Garbage collection tuned for a command's start (imported first by ``alphaloom.cli``, before any library).

Young collections every 50,000 new objects instead of 700: starting a command builds ~250,000 long-lived objects
(Prefect, pydantic, SQLAlchemy, pandas), and the default threshold runs hundreds of collections over them while they
are imported (a fifth of a short command's CPU); what a command allocates later is collected all the same.
"""

import gc

gc.set_threshold(50_000, 20, 20)
