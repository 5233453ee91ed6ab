"""A replay's order store in memory (ARCHITECTURE §5, §7): the ``execution.orders.store.OrderStore`` port answered
from what the replay already holds, and the rows of every report held and written in bulk (``COPY``) by ``flush``.

Why: a replay's execute (plan -> gate -> send, ``execution.submit``) read each order's state and wrote its rows in
a statement each, on top of the equity mark and the decisions written before it; in memory an order step sends no
statement at all.

What callers can rely on:

- The rows are exactly those ``execution.orders.store.write_report`` writes (both build them with
  ``report_rows``): orders, order events, fills, positions, balances, the ``execution_guard`` risk checks, the submit
  journal and the lineage edges
  (``tests/agents/test_replay_cursor.py::test_the_in_memory_order_store_writes_the_rows_of_the_database_store``).
  ``flush(conn)`` writes the held rows on ``conn``'s transaction, after the decisions they reference, and keeps the
  state (orders, positions) for the steps that follow; ``take()`` hands the held rows over instead, for another
  thread to write (``HeldOrderRows.write``) while the store holds the next ones.
- ``read_order_state`` answers as the database would after those writes: the account row, bars and position are
  read once (``load``); the equity marks come from the replay's in-memory account (``equity``), the kill switch
  from the state the replay read in the step (``kill_switch``, set by each order step), and a daily-loss halt is written
  through (``halt``) and remembered.
- One account, the replay's, fresh for its run: ``load`` returns None when the account already has orders or TWAP
  slices scheduled, and the caller uses the database store. The plan stage's own rows (TWAP schedules, route plans)
  are not held here: a replay whose settings split or route orders uses the database store.
- A quote currency other than the account's base currency is converted at the rate read from ``audit.fx_rates``
  (one statement, only then).
- Rows held when a step fails are never written (the replay fails with it).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from alphaloom.db.batch import Statement, cached_text
from alphaloom.db.copy import copy_rows, fetch_binary, relaxed_bulk_write
from alphaloom.domain import AccountId, ClientOrderId, OrderIntent, OrderStatus, Symbol, quote_currency
from alphaloom.errors import ConfigError
from alphaloom.ops.kill_switch import KillSwitchState, kill_switch_state
from execution.accounts.holdings import Holding
from execution.accounts.registry import AccountLocks, AccountMode
from execution.orders.store import (
    ATTEMPT_COLUMNS,
    BALANCE_COLUMNS,
    BALANCE_CONFLICT,
    CHECK_COLUMNS,
    EVENT_COLUMNS,
    FILL_COLUMNS,
    LINEAGE_COLUMNS,
    NEVER_HALTED,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    POSITION_CONFLICT,
    EventRow,
    FillBooking,
    GuardRow,
    NewOrder,
    OrderState,
    ReportRows,
    StatusUpdate,
    check_moves,
    guard_row,
    read_pair_rates,
    realizations,
    report_rows,
)
from execution.safety.fatfinger import set_halt

# (first equity mark at or after the day start and at or before the time, newest mark at or before the time)
DayEquity = Callable[[datetime, datetime], tuple[Decimal | None, Decimal | None]]
KillSwitchSource = Callable[[Connection], KillSwitchState]

_STATUS, _PARENT, _ARRIVAL, _VENUE_ORDER_ID, _FILLED = (ORDER_COLUMNS.index(c) for c in (
    "status", "parent_client_order_id", "arrival_price", "venue_order_id", "filled_quantity"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class AccountRow:
    """The ``audit.accounts`` columns an order's state carries."""

    venue: str
    base_currency: str
    mode: AccountMode
    live_enabled: bool


_WINDOW_BARS = """
select s.symbol, b.ts, b.close, b.volume from unnest(cast(%(s)s as text[])) as s(symbol)
cross join lateral (
    select ts, close, volume from raw.ohlcv
    where exchange = %(e)s and symbol = s.symbol and timeframe = %(tf)s and ts <= %(first)s
    order by ts desc limit 1
) b
union all
select symbol, ts, close, volume from raw.ohlcv
where exchange = %(e)s and timeframe = %(tf)s and symbol = any(%(s)s) and ts > %(first)s and ts <= %(last)s
order by 1, 2
"""


class BarBook:
    """Each symbol's bars (open time, close, volume) of a window, and the newest at or before a time, as
    ``read_order_state`` reads ``raw.ohlcv``."""

    def __init__(self, bars: Mapping[str, Sequence[tuple[datetime, Decimal, Decimal]]], first: datetime) -> None:
        self._times = {s: [b[0] for b in rows] for s, rows in bars.items()}
        self._bars = {s: [(b[1], b[2]) for b in rows] for s, rows in bars.items()}
        self.first = first  # the earliest cutoff answered from memory

    @classmethod
    def load(
        cls, conn: Connection, *, exchange: str, timeframe: str, symbols: Sequence[str], first: datetime,
        last: datetime,
    ) -> BarBook:  # fmt: skip
        """The bars of ``symbols`` opening up to ``last``, from the newest one at or before ``first`` on."""
        # each symbol's newest bar at or before ``first`` (one index probe each), then the rest; read in the driver's
        # binary format (numeric columns come as the Decimal the text format gives)
        _, rows = fetch_binary(
            conn, _WINDOW_BARS, {"e": exchange, "tf": timeframe, "s": list(symbols), "first": first, "last": last}
        )
        bars: dict[str, list[tuple[datetime, Decimal, Decimal]]] = {s: [] for s in symbols}
        for symbol, ts, close, volume in rows:  # numeric: Decimal already
            bars[symbol].append((ts, close, volume))
        return cls(bars, first)

    def at(self, symbol: Symbol, cutoff: datetime) -> tuple[Decimal | None, Decimal | None] | None:
        """(close, volume) of the newest bar opening at or before ``cutoff``; (None, None) when there is none; None
        when the book cannot answer (a symbol or a cutoff outside its window)."""
        times = self._times.get(symbol)
        if times is None or cutoff < self.first:
            return None
        i = bisect_right(times, cutoff)
        return self._bars[symbol][i - 1] if i else (None, None)


class MemoryOrderStore:
    """See the module docstring."""

    def __init__(
        self,
        *,
        account: AccountId,
        row: AccountRow,
        exchange: str,
        timeframe: str,
        bars: BarBook,
        positions: Mapping[str, Holding],
        equity: DayEquity,
        halt: tuple[bool, str] | None = None,
    ) -> None:
        self.account, self._row, self._exchange, self._timeframe = account, row, exchange, timeframe
        self._bars, self._equity = bars, equity
        self._positions = dict(positions)
        self._halted, self._halt_reason = halt if halt is not None else (False, NEVER_HALTED)
        # set by the replay per chunk: the state it read last (refreshed in a step that proposes an order)
        self.kill_switch: KillSwitchSource = kill_switch_state
        self._orders: dict[ClientOrderId, list[Any]] = {}
        self._children: dict[str, set[str]] = {}  # parent client id -> its children's
        self._recorded_at: dict[ClientOrderId, tuple[str, datetime]] = {}  # (run, event time) of each order
        self._per_step: Counter[tuple[str, datetime]] = Counter()
        self._per_run: Counter[str] = Counter()
        self._attempted: set[ClientOrderId] = set()
        self._fill_ids: dict[ClientOrderId, set[str]] = {}
        self._checked: set[tuple[str, str]] = set()  # (decision id, check name): a check is recorded once
        self._held = HeldOrderRows()

    @classmethod
    def load(
        cls, conn: Connection, *, account: AccountId, symbols: Sequence[str], exchange: str, timeframe: str,
        first_cutoff: datetime, last_cutoff: datetime, equity: DayEquity,
    ) -> MemoryOrderStore | None:  # fmt: skip
        """The store of ``account`` for a replay whose bar cutoffs run from ``first_cutoff`` to ``last_cutoff``;
        None when the account has orders or scheduled slices already (the database store serves it then)."""
        row = conn.execute(
            text(
                """select a.venue, a.base_currency, a.mode, a.live_enabled,
                          exists (select 1 from audit.orders o where o.account = a.id)
                          or exists (select 1 from audit.scheduled_slices s
                                     where s.account = a.id and s.status = 'scheduled') as busy,
                          (select h.halted from audit.account_halts h where h.account = a.id
                           order by h.id desc limit 1) as halted,
                          (select h.reason from audit.account_halts h where h.account = a.id
                           order by h.id desc limit 1) as halt_reason
                   from audit.accounts a where a.id = :a"""
            ),
            {"a": account},
        ).first()
        if row is None:
            raise ConfigError(
                f"account {account!r} does not exist; create it with execution.accounts.registry.ensure_account"
            )
        if row.busy:
            return None
        positions = {
            r.symbol: Holding(Decimal(r.quantity), Decimal(r.avg_price), Decimal(r.realized_pnl))
            for r in conn.execute(
                text("select symbol, quantity, avg_price, realized_pnl from audit.positions where account = :a"),
                {"a": account},
            )
        }
        bars = BarBook.load(conn, exchange=exchange, timeframe=timeframe, symbols=symbols, first=first_cutoff,
                            last=last_cutoff)  # fmt: skip
        return cls(account=account, row=AccountRow(row.venue, row.base_currency, AccountMode(row.mode),
                                                   bool(row.live_enabled)),
                   exchange=exchange, timeframe=timeframe, bars=bars, positions=positions, equity=equity,
                   halt=None if row.halted is None else (bool(row.halted), row.halt_reason))  # fmt: skip

    # -- the OrderStore port -------------------------------------------------------------------------------------

    def lock(self, locks: AccountLocks, account: AccountId) -> None:
        """Nothing to take: the replay's account is written only by its run, and its rows wait here."""
        self._own(account)

    def read_order_state(
        self, conn: Connection, *, account: AccountId, symbol: Symbol, client_order_id: ClientOrderId, run_id: str,
        exchange: str, timeframe: str, bar_cutoff: datetime, day_start: datetime, event_time: datetime,
        parent: ClientOrderId | None = None, own: Sequence[str] = (), supersede: OrderIntent | None = None,
        per_step: bool = False,
    ) -> OrderState:  # fmt: skip
        """As ``execution.orders.store.read_order_state`` (no slice is ever scheduled on the account: ``load``)."""
        self._own(account)
        if (exchange, timeframe) != (self._exchange, self._timeframe):
            raise ConfigError(
                f"the replay's orders are on {self._exchange} {self._timeframe}, not {exchange} {timeframe}"
            )
        close, volume = self._bar(conn, symbol, bar_cutoff)
        day_start_equity, equity = self._equity(day_start, event_time)
        existing = self._orders.get(client_order_id)
        row = self._row
        return OrderState(
            account_venue=row.venue, base_currency=row.base_currency, mode=row.mode, live_enabled=row.live_enabled,
            existing_status=None if existing is None else OrderStatus(existing[_STATUS]),
            attempted=client_order_id in self._attempted, kill_switch=self.kill_switch(conn),
            halted=self._halted, halt_reason=self._halt_reason, day_start_equity=day_start_equity, equity=equity,
            orders_in_run=self._per_step[(run_id, event_time)] if per_step else self._per_run[run_id],
            last_close=close, last_volume=volume, holding=self._positions.get(symbol, Holding.flat()),
            family_recorded=self._family_recorded(client_order_id, parent, own), superseded=0,
            quote_rate=self._quote_rate(conn, symbol, event_time),
        )  # fmt: skip

    def write_report(
        self, conn: Connection, *, run_id: str, client_order_id: ClientOrderId, event_time: datetime,
        events: Sequence[EventRow], booking: FillBooking | None, status: OrderStatus, venue_order_id: str | None,
        filled_quantity: Decimal | None, new_order: NewOrder | None = None,
    ) -> None:  # fmt: skip
        """As ``execution.orders.store.write_report``: the same checks, the same rows, held until ``flush``."""
        check_moves(events, status, start=None if new_order is None else OrderStatus.NEW)
        if new_order is None and client_order_id not in self._orders:
            raise ConfigError(f"order {client_order_id} is not one of the replay's orders")
        prior = None
        if booking is not None:
            self._own(booking.account)
            prior = self._positions.get(booking.symbol, Holding.flat()).avg_price
        rows = report_rows(run_id=run_id, client_order_id=client_order_id, event_time=event_time, events=events,
                           booking=booking, status=status, venue_order_id=venue_order_id,
                           filled_quantity=filled_quantity, new_order=new_order,
                           realized=realizations(booking, prior) if booking is not None and booking.fills else ())  # fmt: skip
        self._apply(rows, run_id, event_time, booking)

    def record_guard(self, conn: Connection, run_id: str, intent: OrderIntent, guard: GuardRow) -> None:
        self._own(intent.account)
        self._check(guard_row(run_id, intent, guard))

    def booked_fills(self, conn: Connection, client_order_id: ClientOrderId) -> set[str]:
        return set(self._fill_ids.get(client_order_id, ()))

    def holding(self, conn: Connection, account: AccountId, symbol: Symbol) -> Holding:
        self._own(account)
        return self._positions.get(symbol, Holding.flat())

    def arrival_price(self, conn: Connection, client_order_id: ClientOrderId) -> Decimal | None:
        order = self._orders.get(client_order_id)
        return None if order is None else order[_ARRIVAL]

    def halt(self, conn: Connection, account: AccountId, reason: str, numbers: Mapping[str, Any]) -> None:
        """Written through (an operator sees a halted account at once) and remembered."""
        self._own(account)
        set_halt(conn, account, True, reason, numbers)
        self._halted, self._halt_reason = True, reason

    # -- the bulk write ------------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Rows held and not written yet."""
        return self._held.count()

    def flush(self, conn: Connection) -> int:
        """Write every row held on ``conn``'s transaction (``COPY`` for the appended rows, one upsert statement for
        the positions and balances); returns how many. Call it after the decisions the orders reference."""
        return self.take().write(conn)

    def take(self) -> HeldOrderRows:
        """The rows held, handed over to be written (``HeldOrderRows.write``, by another thread if need be) as
        ``flush`` writes them; the store holds the rows of the reports from now (a later report of an order taken
        updates it with the next rows, as after ``flush``). Write those taken before the next ones."""
        held, self._held = self._held, HeldOrderRows()
        held.orders = {coid: list(row) for coid, row in held.orders.items()}  # the store updates its own in place
        return held

    # -- stages --------------------------------------------------------------------------------------------------

    def _own(self, account: AccountId) -> None:
        if account != self.account:
            raise ConfigError(f"the replay's order store holds account {self.account!r}, not {account!r}")

    def _bar(self, conn: Connection, symbol: Symbol, cutoff: datetime) -> tuple[Decimal | None, Decimal | None]:
        known = self._bars.at(symbol, cutoff)
        if known is not None:
            return known
        row = conn.execute(  # outside the window loaded: as read_order_state reads it
            cached_text("""select close, volume from raw.ohlcv where exchange = :e and symbol = :s and timeframe = :tf
                           and ts <= :cutoff order by ts desc limit 1"""),
            {"e": self._exchange, "s": symbol, "tf": self._timeframe, "cutoff": cutoff},
        ).first()  # fmt: skip
        return (None, None) if row is None else (Decimal(row.close), Decimal(row.volume))

    def _quote_rate(self, conn: Connection, symbol: Symbol, at: datetime) -> Decimal | None:
        if quote_currency(symbol, self._row.base_currency) == self._row.base_currency:
            return Decimal(1)
        return read_pair_rates(conn, [(self.account, symbol)], at)[(self.account, symbol)]

    def _family_recorded(self, coid: ClientOrderId, parent: ClientOrderId | None, own: Sequence[str]) -> bool:
        if parent is None:
            return coid in self._children
        return parent in self._orders or any(c not in own for c in self._children.get(parent, ()))

    def _check(self, row: tuple[Any, ...]) -> None:
        key = (row[CHECK_COLUMNS.index("decision_id")], row[CHECK_COLUMNS.index("check_name")])
        if key not in self._checked:  # on conflict (decision_id, check_name) do nothing
            self._checked.add(key)
            self._held.checks.append(row)

    def _apply(self, rows: ReportRows, run_id: str, at: datetime, booking: FillBooking | None) -> None:
        """Hold ``rows`` and bring the state they describe up to date."""
        held = self._held
        if rows.guard is not None:
            self._check(rows.guard)
        if rows.order is not None:
            coid = rows.order[0]
            self._orders[coid] = order = list(rows.order)
            held.orders[coid] = order
            if order[_PARENT] is not None:
                self._children.setdefault(order[_PARENT], set()).add(coid)
            self._recorded_at[coid] = (run_id, at)
            self._per_step[(run_id, at)] += 1
            self._per_run[run_id] += 1
        if rows.attempt is not None:
            coid = rows.attempt[0]
            self._attempted.add(coid)
            previous = held.attempts.get(coid)
            # on conflict: details = coalesce(excluded.details, the held details)
            held.attempts[coid] = rows.attempt if previous is None or rows.attempt[3] is not None else previous
        held.events += rows.events
        held.fills += rows.fills
        for fill in rows.fills:
            self._fill_ids.setdefault(fill[1], set()).add(fill[0])
        held.lineage += rows.lineage
        if rows.position is not None and booking is not None:
            self._positions[booking.symbol] = booking.holding
            held.positions[booking.symbol] = rows.position
        for account, currency, amount, run in rows.balances:
            before = held.balances.get(currency)
            held.balances[currency] = (account, currency, amount if before is None else before[2] + amount, run)
        if rows.update is not None:
            self._update(rows.update)

    def _update(self, update: StatusUpdate) -> None:
        order = self._orders[update.client_order_id]
        order[_STATUS] = update.status.value
        if update.venue_order_id is not None:
            order[_VENUE_ORDER_ID] = update.venue_order_id
        if update.filled_quantity is not None:
            order[_FILLED] = update.filled_quantity
        if update.client_order_id not in self._held.orders:  # written already: updated at the next flush
            self._held.updates[update.client_order_id] = (order[_STATUS], order[_VENUE_ORDER_ID], order[_FILLED])


class HeldOrderRows:
    """The rows written by the next ``flush``: orders by client id (a later report updates the held row), journal
    entries by client id, appended events, fills, checks and lineage, the newest position row per symbol, the sum
    of the balance moves per currency, and the status of orders written already."""

    def __init__(self) -> None:
        self.orders: dict[ClientOrderId, list[Any]] = {}
        self.attempts: dict[ClientOrderId, tuple[Any, ...]] = {}
        self.events: list[tuple[Any, ...]] = []
        self.fills: list[tuple[Any, ...]] = []
        self.checks: list[tuple[Any, ...]] = []
        self.lineage: list[tuple[Any, ...]] = []
        self.positions: dict[str, tuple[Any, ...]] = {}
        self.balances: dict[str, tuple[Any, ...]] = {}
        self.updates: dict[ClientOrderId, tuple[Any, ...]] = {}

    def count(self) -> int:
        return (len(self.orders) + len(self.attempts) + len(self.events) + len(self.fills) + len(self.checks)
                + len(self.lineage) + len(self.positions) + len(self.balances) + len(self.updates))  # fmt: skip

    def write(self, conn: Connection) -> int:
        """Write the rows on ``conn``'s transaction (see ``MemoryOrderStore.flush``); returns how many."""
        count = self.count()
        if count:  # a replay's paper orders, not live money: see agents.audit_buffer.AuditBuffer.flush
            relaxed_bulk_write(conn)
        for table, columns, rows in (
            ("audit.orders", ORDER_COLUMNS, list(self.orders.values())),
            ("audit.submit_attempts", ATTEMPT_COLUMNS, list(self.attempts.values())),
            ("audit.order_events", EVENT_COLUMNS, self.events),
            ("audit.fills", FILL_COLUMNS, self.fills),
            ("audit.risk_checks", CHECK_COLUMNS, self.checks),
            ("audit.lineage", LINEAGE_COLUMNS, self.lineage),
        ):
            if rows:
                copy_rows(conn, table, columns, rows)
        _upsert_accounts(conn, list(self.positions.values()), list(self.balances.values()), self.updates)
        return count


def _upsert_accounts(
    conn: Connection,
    positions: Sequence[tuple[Any, ...]],
    balances: Sequence[tuple[Any, ...]],
    updates: Mapping[ClientOrderId, tuple[Any, ...]],
) -> None:
    """The positions (the newest row of each), the balances (each the sum of its moves, added) and the status of
    orders written by an earlier flush, in one statement."""
    st, parts = Statement(), []
    if positions:
        parts.append(f"p as (insert into audit.positions ({', '.join(POSITION_COLUMNS)}) values "
                     + st.values(positions) + POSITION_CONFLICT + ")")  # fmt: skip
    if balances:
        parts.append(f"b as (insert into audit.balances ({', '.join(BALANCE_COLUMNS)}) values "
                     + st.values(balances) + BALANCE_CONFLICT + ")")  # fmt: skip
    if updates:
        rows = [(coid, *values) for coid, values in updates.items()]
        parts.append("u as (update audit.orders o set status = v.status, updated_at = now(),"
                     " venue_order_id = v.venue_order_id, filled_quantity = cast(v.filled as numeric)"
                     " from (values " + st.values(rows) + ") as v(client_order_id, status, venue_order_id, filled)"
                     " where o.client_order_id = v.client_order_id)")  # fmt: skip
    if parts:
        st.execute(conn, "with " + ",\n".join(parts) + "\nselect 1")
