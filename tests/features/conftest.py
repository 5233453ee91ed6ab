"""Tests of the dbt project (``dbt/``) through ``alphaloom/features/``: ``marts.features`` built from bars,
incremental builds equal to full ones, and the generated docs. These run dbt against the session database
(marked ``dbt``)."""
