"""What every stage of one ``execution.submit.execute`` call shares (``SendContext``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection

from alphaloom.domain import OrderIntent, last_closed_open
from alphaloom.guards import LimitBreach
from alphaloom.settings import Settings
from execution.brokers.base import Broker
from execution.orders.store import DB_STORE, OrderStore
from execution.orders.venue_reports import BookingListener

# The portfolio risk gate a released slice passes (``agents.risk.gate.portfolio_gate``): the intent that may go (maybe
# shrunk) and no breaches, or None and the breaches that denied it.
SliceGate = Callable[[Connection, OrderIntent, datetime], tuple[OrderIntent | None, tuple[LimitBreach, ...]]]


@dataclass(frozen=True, slots=True)
class SendContext:
    """What every order of one ``execute`` call shares. ``last_prices``: price-band references overriding the last
    close; ``slice_gate``: the portfolio risk gate released slices pass (None when not releasing); ``trip_alert``:
    the alert kind of a guard trip (None in a replay: the backtest reports them once); ``releasing``: the orders are
    scheduled slices being released (they supersede nothing); ``per_step``: the per-run caps count this decision
    step's orders only (a replay); ``store``: where each order's state is read and its rows written
    (``execution.orders.store.OrderStore``)."""

    run_id: str
    broker: Broker
    settings: Settings
    event_time: datetime
    last_prices: Mapping[str, Decimal]
    on_booking: BookingListener | None = None
    trip_alert: str | None = "fat_finger"
    slice_gate: SliceGate | None = None
    releasing: bool = False
    per_step: bool = False
    store: OrderStore = DB_STORE

    @property
    def bar_cutoff(self) -> datetime:
        """The open of the last bar closed by ``event_time``: the bars a send may know."""
        return last_closed_open(self.event_time, self.settings.timeframe)
