"""Tests of ``agents/llm/``: the LLM analyst and the debating team through the real OpenAI SDK against
the local stand-in endpoint (``tests/support/llm_standin.py``), the cache, the usage ledger and its budget, the
tools' point-in-time refusals, and the team inside a backtest."""
