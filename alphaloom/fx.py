"""Currency conversion with stored rates (``audit.fx_rates``: 1 unit of ``base`` = ``rate`` units of ``quote``, known
from ``as_of``), so P&L and equity are in the account's base currency whatever the quote currency of a symbol.

``rate_between`` and ``convert`` are pure. ``rate_at`` reads the newest rate known at or before ``as_of`` (a direct
pair, or the inverse of the opposite pair, whichever is newer); there is no triangulation and no guess: a rate that is
not stored is a ``DataUnavailableError`` naming the pair and the time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection, text

from alphaloom.domain import require_utc
from alphaloom.errors import DataUnavailableError

Rates = Mapping[tuple[str, str], Decimal]
RateTable = dict[tuple[str, str], Decimal]  # the rates a query built: {(from, to): rate}


def missing_rate(from_ccy: str, to_ccy: str, as_of: datetime | None) -> DataUnavailableError:
    when = f" known at {as_of.isoformat()}" if as_of is not None else ""
    return DataUnavailableError(
        f"no fx rate to convert {from_ccy} into {to_ccy}{when}: store one in audit.fx_rates "
        f"(`alphaloom fx-rate {from_ccy} {to_ccy} RATE`)"
    )


@dataclass(frozen=True, slots=True)
class QuoteRate:
    """How to count a symbol's quote currency in the account's base currency at one time: ``rate`` units of ``base``
    per unit of ``quote`` (1 when they are the same), or None when no rate was known then. Sizing and every limit
    compare notionals in the base currency through this; a missing rate is refused (``missing``), never taken as 1."""

    quote: str
    base: str
    rate: Decimal | None
    as_of: datetime | None = None

    @classmethod
    def same(cls, currency: str) -> QuoteRate:
        return cls(currency, currency, Decimal(1))

    @property
    def missing(self) -> DataUnavailableError | None:
        """The error naming the pair when no rate is known, else None."""
        return missing_rate(self.quote, self.base, self.as_of) if self.rate is None else None

    def required(self) -> Decimal:
        """The rate; ``DataUnavailableError`` naming the pair when none is known."""
        if self.rate is None:
            raise missing_rate(self.quote, self.base, self.as_of)
        return self.rate

    def to_base(self, amount: Decimal) -> Decimal:
        """``amount`` of the quote currency in the base currency (``DataUnavailableError`` when no rate is known)."""
        return amount * self.required()


def rate_between(rates: Rates, from_ccy: str, to_ccy: str) -> Decimal:
    """Units of ``to_ccy`` per unit of ``from_ccy``: 1 for the same currency, the direct rate, else 1 / the inverse."""
    if from_ccy == to_ccy:
        return Decimal(1)
    if (from_ccy, to_ccy) in rates:
        return rates[(from_ccy, to_ccy)]
    if (to_ccy, from_ccy) in rates:
        return 1 / rates[(to_ccy, from_ccy)]
    raise missing_rate(from_ccy, to_ccy, None)


def convert(amount: Decimal, from_ccy: str, to_ccy: str, rates: Rates) -> Decimal:
    return amount * rate_between(rates, from_ccy, to_ccy)


def rate_at(conn: Connection, from_ccy: str, to_ccy: str, as_of: datetime | None = None) -> Decimal:
    """The newest stored rate ``from_ccy`` -> ``to_ccy`` known at or before ``as_of`` (default: now)."""
    if from_ccy == to_ccy:
        return Decimal(1)
    at = require_utc(as_of, "as_of") if as_of is not None else datetime.now(UTC)
    row = conn.execute(
        text(
            """select base, rate from audit.fx_rates
               where ((base = :f and quote = :t) or (base = :t and quote = :f)) and as_of <= :at
               order by as_of desc, base = :f desc limit 1"""
        ),
        {"f": from_ccy, "t": to_ccy, "at": at},
    ).first()
    if row is None:
        raise missing_rate(from_ccy, to_ccy, at)
    rate = Decimal(row.rate)
    return rate if row.base == from_ccy else 1 / rate


def rates_at(conn: Connection, currencies: Iterable[str], to_ccy: str, as_of: datetime | None = None) -> RateTable:
    """``{(currency, to_ccy): rate}`` for each currency (``rate_between`` reads it); raises on the first missing."""
    return {(c, to_ccy): rate_at(conn, c, to_ccy, as_of) for c in set(currencies)}


def known_rates_at(conn: Connection, currencies: Iterable[str], to_ccy: str, as_of: datetime) -> RateTable:
    """Like ``rates_at`` for the currencies that have a rate known at ``as_of``; the others are left out (the caller
    refuses what needs them, naming the pair). One query for all of them."""
    wanted = sorted({c for c in currencies if c != to_ccy})
    rates: RateTable = {(to_ccy, to_ccy): Decimal(1)}
    if not wanted:
        return rates
    rows = conn.execute(
        text(
            """select distinct on (ccy) ccy, base, rate from (
                   select case when base = :t then quote else base end as ccy, base, rate, as_of
                   from audit.fx_rates
                   where ((base = any(:c) and quote = :t) or (base = :t and quote = any(:c))) and as_of <= :at
               ) r order by ccy, as_of desc, base = ccy desc"""
        ),
        {"c": wanted, "t": to_ccy, "at": require_utc(as_of, "as_of")},
    ).all()
    for row in rows:
        rate = Decimal(row.rate)
        rates[(row.ccy, to_ccy)] = rate if row.base == row.ccy else 1 / rate
    return rates


def rate_history(conn: Connection, from_ccy: str, to_ccy: str, until: datetime) -> list[tuple[datetime, Decimal]]:
    """Every stored rate ``from_ccy`` -> ``to_ccy`` known by ``until`` (direct, or 1 / the opposite pair), oldest
    first; at one time the direct pair wins, as in ``rate_at``. For series: the rate at T is the last one at or before
    T."""
    rows = conn.execute(
        text(
            """select distinct on (as_of) as_of, base, rate from audit.fx_rates
               where ((base = :f and quote = :t) or (base = :t and quote = :f)) and as_of <= :u
               order by as_of, base = :f desc"""
        ),
        {"f": from_ccy, "t": to_ccy, "u": require_utc(until, "until")},
    ).all()
    return [(r.as_of, Decimal(r.rate) if r.base == from_ccy else 1 / Decimal(r.rate)) for r in rows]


def store_rate(conn: Connection, base: str, quote: str, rate: Decimal, as_of: datetime, source: str = "manual") -> None:
    if rate <= 0:
        raise ValueError(f"fx rate {base}/{quote} must be positive, got {rate}")
    conn.execute(
        text(
            """insert into audit.fx_rates (base, quote, rate, as_of, source) values (:b, :q, :r, :t, :s)
               on conflict (base, quote, as_of) do update set rate = excluded.rate, source = excluded.source"""
        ),
        {"b": base, "q": quote, "r": rate, "t": require_utc(as_of, "as_of"), "s": source},
    )
