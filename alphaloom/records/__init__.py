"""Read repositories of the audit tables: one module per table family owns the read SQL on it and returns typed rows.

``orders``: ``audit.orders``, ``audit.order_events`` and ``audit.fills``. Writes to those tables belong to
``execution.orders.store`` (through the order transition table); outside execution/ they are read only here.
``decisions``: ``audit.decisions`` with their ``audit.agent_outputs`` and ``audit.risk_checks`` (written by the
decision recorders in ``agents``), as the core's reports, explain chain, console and alerts read them.
"""
