"""What became of each intent ``execution.submit.execute`` was given: one typed ``Outcome`` per order (how it was
disposed of, with the order as recorded or the guard's refusal), gathered into the ``ExecutionResult`` callers read.
Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from alphaloom.domain import ClientOrderId, Fill, OrderIntent, OrderStatus
from alphaloom.guards import LimitBreach


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    client_order_id: ClientOrderId
    status: OrderStatus
    fills: tuple[Fill, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An intent the execution guard refused; ``breaches`` carry the numbers."""

    intent: OrderIntent
    breaches: tuple[LimitBreach, ...]


class Disposition(enum.Enum):
    """How one order of an ``execute`` call was disposed of."""

    # plan stage: a TWAP / iceberg slice not sent by this call
    SCHEDULED = "scheduled"  # left in its schedule for the release pass
    SLICE_SKIPPED = "slice_skipped"  # not in its parent's recorded schedule, or no longer scheduled
    # before the gate: the order exists already (in some form); nothing is sent
    DUPLICATE = "duplicate"  # recorded before (reconciled with the venue when not final)
    OTHER_SHAPE = "other_shape"  # its parent or siblings were recorded in another shape
    RECOVERED = "recovered"  # an earlier attempt never recorded, found at the venue and recorded now
    # gate stage: nothing is sent
    BLOCKED = "blocked"  # the kill switch
    REFUSED = "refused"  # the guards at send
    # send stage: one broker submit each
    SUBMITTED = "submitted"  # the venue's report recorded
    REJECTED = "rejected"  # the venue (or its kill switch) refused it: recorded as rejected
    UNKNOWN = "unknown"  # outcome unknown: recorded as submitted, reconciled by client order id later

    @property
    def submitted_now(self) -> bool:
        """``broker.submit`` was called for it in this call."""
        return self in _SENT

    @property
    def recorded_now(self) -> bool:
        """Its order row was written by this call (a sibling recorded now is not another shape)."""
        return self in _SENT or self is Disposition.RECOVERED

    @property
    def order_exists(self) -> bool:
        """Its order is recorded (now or before): a TWAP slice it belongs to leaves ``scheduled`` as released."""
        return self in _EXISTS


_SENT = frozenset({Disposition.SUBMITTED, Disposition.REJECTED, Disposition.UNKNOWN})
_EXISTS = _SENT | {Disposition.RECOVERED, Disposition.DUPLICATE, Disposition.OTHER_SHAPE}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One order's disposition; ``order``: its recorded state (all but blocked, refused, scheduled and unknown);
    ``refusal``: the breaches of a refused one."""

    disposition: Disposition
    client_order_id: ClientOrderId
    order: OrderOutcome | None = None
    refusal: Refusal | None = None


@dataclass
class ExecutionResult:
    """What ``execute`` did. ``broker_submits`` counts calls to ``broker.submit``; ``scheduled``: TWAP slices left
    for later (``execution.algos.release``); ``blocked``: client ids the kill switch stopped; ``superseded``:
    scheduled slices of the other side cancelled by this call's intents."""

    submitted: list[OrderOutcome] = field(default_factory=list)
    duplicates: list[OrderOutcome] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    rejected: list[OrderOutcome] = field(default_factory=list)
    unknown: list[ClientOrderId] = field(default_factory=list)
    recovered: list[OrderOutcome] = field(default_factory=list)
    kill_switch_blocked: int = 0
    broker_submits: int = 0
    scheduled: list[ClientOrderId] = field(default_factory=list)
    blocked: list[ClientOrderId] = field(default_factory=list)
    superseded: int = 0

    def add(self, outcome: Outcome) -> None:
        """File ``outcome`` under its disposition."""
        d, coid = outcome.disposition, outcome.client_order_id
        if d.submitted_now:
            self.broker_submits += 1
        if d is Disposition.BLOCKED:
            self.kill_switch_blocked += 1
            self.blocked.append(coid)
        elif d is Disposition.REFUSED:
            assert outcome.refusal is not None
            self.refused.append(outcome.refusal)
        elif d is Disposition.SCHEDULED:
            self.scheduled.append(coid)
        elif d is Disposition.UNKNOWN:
            self.unknown.append(coid)
        else:
            assert outcome.order is not None
            self._orders_of(d).append(outcome.order)

    def _orders_of(self, disposition: Disposition) -> list[OrderOutcome]:
        if disposition is Disposition.SUBMITTED:
            return self.submitted
        if disposition is Disposition.REJECTED:
            return self.rejected
        if disposition is Disposition.RECOVERED:
            return self.recovered
        return self.duplicates  # DUPLICATE, OTHER_SHAPE, SLICE_SKIPPED
