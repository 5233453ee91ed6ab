"""A replay's account held in memory: the account half of its snapshots (``agents.snapshot.AccountView``: the
portfolio context and the positions) without reading the account back from the database at each step (ARCHITECTURE §5).

What callers can rely on:

- ``ReplayAccount.load`` reads the account once for a replay window: its base currency and starting cash, its
  balances and positions, the equity marks it has, the markets of the window's symbols (``alphaloom.markets``) and
  the fx rates of every currency it may need into its base currency, up to the window's end.
- ``book`` is told of every booking of fills the replay's executions write (``execution.submit.execute(on_booking=...)``,
  also through ``execution.algos.release.release_due_children``; ``flows.backtest`` passes it on, since the agents do not
  import execution): the position the booking leaves (computed by ``execution.accounts.holdings``, the same values the
  database row is written from) and what it adds to each balance (``execution.orders.store.cash_moves``), added
  exactly as PostgreSQL adds it. Nothing is recomputed here.
- ``context(conn, account, symbols, as_of)`` equals ``agents.risk.context.portfolio_context`` at ``as_of`` (the
  marks and returns history from the replay cursor, as that function takes them) and writes the same
  ``audit.equity_marks`` row; the drawdown peak is the highest mark at or before ``as_of`` kept here. It writes and
  never reads. With ``defer_marks`` set (a replay step's decision, its audit rows held in a buffer) the mark is held
  here instead, and ``write_marks(conn)`` writes the held ones: the caller calls it before anything reads the
  account's marks (execution's daily-loss guard, a release pass) and at the end of each chunk. A mark written
  directly replaces one held for the same time (the later one wins, as the upsert does).
  ``positions(symbols)`` equals ``agents.snapshot.current_positions``.
- ``slices_scheduled``: whether the account may have TWAP/iceberg slices waiting for a release pass (some were
  scheduled when it was loaded, or the caller set it when an execution left slices for later): until then a
  replay step has nothing to release and need not ask the database.
- Only what this replay does is seen: another process trading the same account would not be (a backtest account is
  created fresh for its run). A step whose transaction fails leaves this copy ahead of the database: the replay
  stops there (a step is not retried).
- Rates point in time: the newest rate known at ``as_of`` (direct pair first at one time, else the inverse), as
  ``alphaloom.fx``; a currency first met later (a fee paid in a third asset) has its rates read once then.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Context, Decimal

import pandas as pd
from sqlalchemy import Connection, text

from agents.risk.context import (
    MarketReader,
    account_equity,
    assemble_context,
    equity_mark_row,
    write_equity_marks,
)
from agents.risk.portfolio import PortfolioContext, ReturnsInputs
from alphaloom.domain import quote_currency, require_utc
from alphaloom.fx import missing_rate, rate_history
from alphaloom.markets import MarketSpec, market_specs
from alphaloom.settings import Settings

# PostgreSQL adds numerics exactly; so does this context (a balance never has anywhere near this many digits).
_EXACT = Context(prec=500)


class FxHistory:
    """Every stored rate of some currencies into one base currency up to a time, answered point in time in memory."""

    def __init__(self, base: str, until: datetime) -> None:
        self.base, self.until = base, until
        self._times: dict[str, list[datetime]] = {}
        self._rates: dict[str, list[Decimal]] = {}

    def load(self, conn: Connection, currencies: Iterable[str]) -> None:
        """Read the history of each currency not loaded yet (one query each)."""
        for currency in sorted(set(currencies) - set(self._times) - {self.base}):
            history = rate_history(conn, currency, self.base, self.until)
            self._times[currency] = [at for at, _ in history]
            self._rates[currency] = [rate for _, rate in history]

    def loaded(self, currencies: Iterable[str]) -> bool:
        return all(c == self.base or c in self._times for c in currencies)

    def rate(self, currency: str, as_of: datetime) -> Decimal | None:
        """Units of the base currency per unit of ``currency`` known at ``as_of`` (None: none stored by then)."""
        if currency == self.base:
            return Decimal(1)
        if as_of > self.until:
            raise ValueError(f"as_of {as_of} is after the rates loaded (until {self.until})")
        i = bisect_right(self._times[currency], as_of)
        return self._rates[currency][i - 1] if i else None

    def rates_at(self, currencies: Iterable[str], as_of: datetime) -> dict[tuple[str, str], Decimal]:
        """``alphaloom.fx.rates_at``: every currency's rate, ``DataUnavailableError`` for one without."""
        found = {}
        for currency in set(currencies):
            rate = self.rate(currency, as_of)
            if rate is None:
                raise missing_rate(currency, self.base, as_of)
            found[(currency, self.base)] = rate
        return found

    def known_rates_at(self, currencies: Iterable[str], as_of: datetime) -> dict[tuple[str, str], Decimal]:
        """``alphaloom.fx.known_rates_at``: the currencies with a rate (and the base itself)."""
        found: dict[tuple[str, str], Decimal] = {(self.base, self.base): Decimal(1)}
        for currency in sorted({c for c in currencies if c != self.base}):
            rate = self.rate(currency, as_of)
            if rate is not None:
                found[(currency, self.base)] = rate
        return found


class EquityMarks:
    """An account's equity marks (one per time, a later one at the same time replacing it) and the highest at or
    before a time, as ``audit.equity_marks`` answers them."""

    def __init__(self, marks: Iterable[tuple[datetime, Decimal]] = ()) -> None:
        self._times: list[datetime] = []
        self._values: list[Decimal] = []
        self._peaks: list[Decimal] = []  # running maximum of _values
        for at, equity in marks:
            self.mark(at, equity)

    def mark(self, at: datetime, equity: Decimal) -> None:
        i = bisect_right(self._times, at)
        if i and self._times[i - 1] == at:
            i -= 1
            self._values[i] = equity
        else:
            self._times.insert(i, at)
            self._values.insert(i, equity)
            self._peaks.insert(i, equity)
        for k in range(i, len(self._times)):  # from the mark on (only the newest one in a replay going forward)
            self._peaks[k] = self._values[k] if k == 0 else max(self._peaks[k - 1], self._values[k])

    def peak(self, at: datetime) -> Decimal | None:
        """The highest mark at or before ``at`` (None when there is none)."""
        i = bisect_right(self._times, at)
        return self._peaks[i - 1] if i else None

    def latest(self, at: datetime) -> Decimal | None:
        """The newest mark at or before ``at`` (None when there is none)."""
        i = bisect_right(self._times, at)
        return self._values[i - 1] if i else None

    def first_from(self, start: datetime, at: datetime) -> Decimal | None:
        """The oldest mark at or after ``start`` and at or before ``at`` (None when there is none)."""
        i = bisect_left(self._times, start)
        return self._values[i] if i < len(self._times) and self._times[i] <= at else None


class ReplayAccount:
    """See the module docstring."""

    def __init__(
        self,
        *,
        account: str,
        base_currency: str,
        starting_cash: Decimal,
        balances: Mapping[str, Decimal],
        positions: Mapping[str, tuple[Decimal, Decimal]],
        marks: EquityMarks,
        markets: Mapping[str, MarketSpec],
        fx: FxHistory,
        settings: Settings,
        market: MarketReader,
    ) -> None:
        self.account, self.base_currency, self.starting_cash = account, base_currency, starting_cash
        self._balances, self._positions = dict(balances), dict(positions)
        self._marks, self._markets, self._fx = marks, dict(markets), fx
        self._settings, self._market = settings, market
        self.bookings = 0
        self.slices_scheduled = False
        self.defer_marks = False
        self._unwritten: dict[datetime, Decimal] = {}  # marks held while defer_marks, by time (the later wins)

    @classmethod
    def load(
        cls,
        conn: Connection,
        *,
        account: str,
        symbols: Sequence[str],
        end: datetime,
        settings: Settings,
        market: MarketReader,
    ) -> ReplayAccount:
        """The account as stored now, for a replay of ``symbols`` up to ``end`` (``market``: the window's marks and
        returns history, a replay cursor)."""
        row = conn.execute(
            text("select base_currency, starting_cash from audit.accounts where id = :a"), {"a": account}
        ).first()
        if row is None:
            raise ValueError(f"account {account!r} does not exist")
        base = row.base_currency
        balances = {
            r.currency: Decimal(r.amount)
            for r in conn.execute(
                text("select currency, amount from audit.balances where account = :a"), {"a": account}
            )
        }
        positions = {
            r.symbol: (Decimal(r.quantity), Decimal(r.avg_price))
            for r in conn.execute(
                text("select symbol, quantity, avg_price from audit.positions where account = :a"),
                {"a": account},
            )
        }
        marks = EquityMarks(
            (r.as_of, Decimal(r.equity))
            for r in conn.execute(
                text("select as_of, equity from audit.equity_marks where account = :a order by as_of"), {"a": account}
            )
        )
        markets = market_specs(conn, exchange=settings.exchange, symbols=set(symbols) | set(positions),
                               asset_classes=settings.asset_classes, quantity_steps=settings.quantity_steps)  # fmt: skip
        fx = FxHistory(base, require_utc(end, "end"))
        fx.load(conn, [*balances, *(quote_currency(s, base) for s in set(symbols) | set(positions))])
        loaded = cls(account=account, base_currency=base, starting_cash=Decimal(row.starting_cash), balances=balances,
                     positions=positions, marks=marks, markets=markets, fx=fx, settings=settings,
                     market=market)  # fmt: skip
        loaded.slices_scheduled = bool(
            conn.execute(
                text(
                    "select exists (select 1 from audit.scheduled_slices where account = :a and status = 'scheduled')"
                ),
                {"a": account},
            ).scalar()
        )
        return loaded

    def book(
        self, account: str, symbol: str, quantity: Decimal, avg_price: Decimal, moves: Mapping[str, Decimal]
    ) -> None:
        """A booking of fills just written: the position it leaves in ``symbol`` and what it adds to each balance
        (another account's booking is not this one's)."""
        if account != self.account:
            return
        self._positions[symbol] = (quantity, avg_price)
        for currency, amount in moves.items():
            held = self._balances.get(currency)
            self._balances[currency] = amount if held is None else _EXACT.add(held, amount)
        self.bookings += 1

    def positions(self, symbols: Sequence[str]) -> dict[str, tuple[Decimal, Decimal]]:
        """Per symbol (quantity, avg_price); (0, 0) when the account never held it (``current_positions``)."""
        flat = (Decimal(0), Decimal(0))
        return {s: self._positions.get(s, flat) for s in symbols}

    def context(self, conn: Connection, account: str, symbols: Sequence[str], as_of: datetime) -> PortfolioContext:
        """``portfolio_context`` of ``account`` (this one) at ``as_of`` for ``symbols``, from memory; writes the
        equity mark (the only statement sent on ``conn``)."""
        return self.context_on_read(conn, account, symbols, as_of)()

    def context_on_read(
        self, conn: Connection, account: str, symbols: Sequence[str], as_of: datetime
    ) -> Callable[[], PortfolioContext]:
        """``context``: the equity and its mark now, the rest of the context (markets, quote rates, returns) when
        the function returned is first called, from the cash and positions held now (a replay reads it in the same
        step, before anything is booked; ``conn`` is read then for a currency or market met the first time)."""
        if account != self.account:
            raise ValueError(f"the replay holds account {self.account!r}, not {account!r}")
        as_of = require_utc(as_of, "as_of")
        base = self.base_currency
        held = {s: held for s, held in self._positions.items() if held[0] != 0}
        balances = list(self._balances.items())
        owed = [c for c, _ in balances] + [quote_currency(s, base) for s in held]
        if not self._fx.loaded(owed):
            self._fx.load(conn, owed)  # a currency met for the first time
        rates = self._fx.rates_at(owed, as_of)
        # the marks of the positions held: the only ones the equity reads
        equity, exposures = account_equity(balances, held, self._market.marks(list(held), as_of), rates, base)
        if self.defer_marks:
            self._unwritten[as_of] = equity
        else:
            self._unwritten.pop(as_of, None)
            write_equity_marks(conn, [equity_mark_row(self.account, as_of, equity)])
        self._marks.mark(as_of, equity)
        peak = self._marks.peak(as_of)
        assert peak is not None  # just marked
        built: list[PortfolioContext] = []

        def context() -> PortfolioContext:
            if not built:
                built.append(self._assembled(conn, symbols, as_of, held, owed, rates, equity, peak, exposures))
            return built[0]

        return context

    def _assembled(
        self, conn: Connection, symbols: Sequence[str], as_of: datetime, held: Mapping[str, tuple[Decimal, Decimal]],
        owed: list[str], rates: Mapping[tuple[str, str], Decimal], equity: Decimal, peak: Decimal,
        exposures: Mapping[str, Decimal],
    ) -> PortfolioContext:  # fmt: skip
        """The context around the equity worked out (``context_on_read``)."""
        base = self.base_currency
        quoted = [quote_currency(s, base) for s in symbols]
        universe = sorted(set(symbols) | set(held))
        if not self._fx.loaded(quoted) or any(s not in self._markets for s in universe):
            self._load_more(conn, owed + quoted, universe)  # a currency or market met for the first time
        quote_rates = {**self._fx.known_rates_at(quoted, as_of), **rates}
        markets = {s: self._markets[s] for s in universe}
        market, bars = self._market, self._settings.risk.correlation_lookback_bars

        def returns() -> pd.DataFrame:  # read by the correlation and VaR checks of an intent: most steps have none
            return market.returns(universe, as_of, bars)

        def inputs() -> ReturnsInputs | None:  # the same, from the cursor's arrays without the frame
            return market.returns_inputs(universe, as_of, bars)

        return assemble_context(self._settings, equity=equity, peak=max(peak, self.starting_cash),
                                exposures=exposures, returns=returns, markets=markets, base=base,
                                quote_rates=quote_rates, as_of=as_of, inputs_source=inputs)  # fmt: skip

    def day_equity(self, day_start: datetime, at: datetime) -> tuple[Decimal | None, Decimal | None]:
        """(the first equity mark from ``day_start`` up to ``at``, the newest at or before ``at``), the marks held
        included: what execution's daily-loss guard reads from ``audit.equity_marks`` once they are written."""
        return self._marks.first_from(day_start, at), self._marks.latest(at)

    @property
    def unwritten_marks(self) -> int:
        """Equity marks held (``defer_marks``) and not written yet."""
        return len(self._unwritten)

    def write_marks(self, conn: Connection) -> None:
        """Write the equity marks held (``defer_marks``) on ``conn``'s transaction, one statement."""
        if self._unwritten:
            write_equity_marks(conn, [equity_mark_row(self.account, at, e) for at, e in self._unwritten.items()])
            self._unwritten.clear()

    def _load_more(self, conn: Connection, currencies: Sequence[str], symbols: Sequence[str]) -> None:
        self._fx.load(conn, currencies)
        missing = [s for s in symbols if s not in self._markets]
        if missing:
            s = self._settings
            self._markets.update(market_specs(conn, exchange=s.exchange, symbols=missing,
                                              asset_classes=s.asset_classes, quantity_steps=s.quantity_steps))  # fmt: skip
