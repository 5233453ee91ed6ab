"""Feature building: the dbt project run in-process against the database in force."""
