"""Read repositories of the audit tables: one module per table family owns the read SQL on it and returns typed rows.

``orders``: ``audit.orders``, ``audit.order_events`` and ``audit.fills``. Writes to those tables belong to
``execution.orders.store`` (through the order transition table); the core reads them only through this package.
"""
