"""The kill switch's one home (``alphaloom.ops.kill_switch``): its state, its changes by an operator (committed, with
the alert) and its history, against the session database."""

from __future__ import annotations

import uuid

from alphaloom.ops.kill_switch import (
    KillSwitchState,
    change_kill_switch,
    kill_switch_history,
    kill_switch_state,
    set_kill_switch,
)


def test_every_change_is_kept_and_the_history_lists_them_newest_first(engine) -> None:
    tag = uuid.uuid4().hex[:8]
    with engine.begin() as conn:
        set_kill_switch(conn, True, f"drill {tag}", "pytest")
        set_kill_switch(conn, False, f"done {tag}", "pytest")
        assert kill_switch_state(conn) == KillSwitchState(False, f"done {tag}", "pytest")
        last_two = kill_switch_history(conn, limit=2)
    assert [(c.engaged, c.reason, c.changed_by) for c in last_two] == [
        (False, f"done {tag}", "pytest"),
        (True, f"drill {tag}", "pytest"),
    ]
    assert last_two[0].changed_at >= last_two[1].changed_at


def test_an_operator_turning_it_on_is_committed_and_alerts_once_with_who_and_why(receiver, engine) -> None:
    try:
        state = change_kill_switch(engine, engaged=True, reason="venue outage", changed_by="console:ops")
        with engine.connect() as conn:  # another connection sees it: committed
            assert kill_switch_state(conn) == state == KillSwitchState(True, "venue outage", "console:ops")
    finally:
        off = change_kill_switch(engine, engaged=False, reason="outage over", changed_by="console:ops")
    assert not off.engaged
    assert [(p["kind"], p["reason"], p["details"]) for p in receiver.received] == [
        ("kill_switch", "kill switch engaged: venue outage", {"changed_by": "console:ops", "reason": "venue outage"})
    ]
