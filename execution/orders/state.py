"""The order state machine: orders change status only through this explicit transition table. Pure.

::

    new ──► submitted ──► partially_filled ──► filled
     │          │   │            │  ▲  │
     │          │   └► filled    │  └──┘ (another partial fill)
     ├► rejected├► rejected      ├► cancelled
     └► cancelled├► cancelled    └► expired
                 └► expired

``filled``, ``cancelled``, ``rejected`` and ``expired`` are terminal. A forbidden move raises
``InvalidOrderTransitionError`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from alphaloom.domain import OrderStatus
from alphaloom.errors import InvalidOrderTransitionError

S = OrderStatus

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    S.NEW: frozenset({S.SUBMITTED, S.REJECTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}

TERMINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """``target`` when the table allows ``current -> target``; otherwise ``InvalidOrderTransitionError``."""
    if not can_transition(current, target):
        raise InvalidOrderTransitionError(current.value, target.value)
    return target


def is_terminal(status: OrderStatus) -> bool:
    return status in TERMINAL


def path_to(current: OrderStatus, target: OrderStatus) -> list[OrderStatus]:
    """The statuses to pass through, in order, to bring an order from ``current`` to a venue-reported ``target``
    (e.g. new -> [submitted, filled]); empty when already there. Raises when ``target`` cannot be reached."""
    if current == target:
        return []
    if can_transition(current, target):
        return [target]
    if current is S.NEW and can_transition(S.SUBMITTED, target):
        return [S.SUBMITTED, target]
    raise InvalidOrderTransitionError(current.value, target.value)
