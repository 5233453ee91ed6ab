"""Repositories of the audit tables (ARCHITECTURE §3): one module per table family owns its SQL and returns typed
rows; callers pass their connection in (a repository opens none, except ``runs.start_run`` / ``runs.finish_run``).

``runs``: ``audit.runs`` (the run spine: start, finish, and every read). ``walk_forward``: ``audit.walk_forward_runs``
and ``audit.walk_forward_windows``. ``llm_ledger``: ``audit.llm_usage``, ``audit.llm_cache``, ``audit.llm_transcripts``.
``memory``: ``audit.opinion_outcomes`` and ``audit.agent_weights``. ``equity``: ``audit.equity_marks``. ``console``:
``audit.console_users`` and ``audit.console_actions``. ``guards``: ``audit.guard_trips`` and ``audit.account_halts``.
``orders``: reads of ``audit.orders``, ``audit.order_events`` and ``audit.fills``; their writes belong to
``execution.orders.store`` (through the order transition table). ``decisions``: ``audit.decisions`` with their
``audit.agent_outputs`` and ``audit.risk_checks``: the reads, and the statement that records decisions
(``insert_decisions``, its rows built by ``agents.recording``).
"""
