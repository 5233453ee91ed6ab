"""Tests of ``alphaloom/db/``: the configured engine and its URL checks, the migrations on an empty database (and a
migrated one opened without Alembic), and the embedded PostgreSQL's stop."""
