"""What test modules share, so that no test module imports another: stand-in servers and venues (an OpenAI-compatible
endpoint, ccxt's exchanges fed recorded responses), builders of test worlds, the worker scripts some tests run as
processes, and the hand-made ``marts.features`` table. Imported as ``support`` (tests/ is on ``sys.path``: the
root conftest.py sits there, pytest's default ``prepend`` import mode)."""
