"""Tests of ``execution/brokers/``: the adapters behind the ``Broker`` port: paper (its durable and
in-memory venues, the replay's), shadow, ccxt on recorded responses and OANDA on its stand-in."""
