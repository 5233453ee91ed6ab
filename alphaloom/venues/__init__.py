"""Adapters to trading venues shared by the ingest and execution: one ccxt exchange factory (``ccxt_exchange``) and one
table from ccxt's errors to ours (``ccxt_errors``). In the core so that both ``alphaloom.ingest`` and
``execution.brokers`` can use them (the core imports neither ``execution`` nor ``agents``)."""
