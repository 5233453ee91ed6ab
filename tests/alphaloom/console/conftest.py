"""Tests of ``alphaloom/console/``: the operator web app, its logins and actions (and a real
headless browser, marked ``browser``)."""
