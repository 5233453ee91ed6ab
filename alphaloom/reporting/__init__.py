"""Read-side reporting: performance metrics, HTML run reports, decision summaries, the explain chain and page,
account summaries and LLM spend."""
