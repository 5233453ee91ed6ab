"""A worker process for the overlap test: one real decision flow run against the Prefect API at ``PREFECT_API_URL``
and the database at ``ALPHALOOM_DATABASE_URL``, exactly as a scheduled run on a worker would make it.

Usage: python tests/support/decide_worker.py ACCOUNT SYMBOLS AS_OF STEPS
Prints one JSON line: the flow run id, its final state type and message (the run's error when it failed).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

from alphaloom.settings import apply_tool_environment

apply_tool_environment()


def main(account: str, symbols: str, as_of: str, steps: str) -> None:
    from flows.decide import decide_flow

    state = decide_flow(
        symbols=symbols.split(","),
        as_of=datetime.fromisoformat(as_of),
        steps=int(steps),
        account=account,
        return_state=True,
    )
    print(
        json.dumps(
            {"flow_run_id": str(state.state_details.flow_run_id), "state": state.type.value, "message": state.message}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
