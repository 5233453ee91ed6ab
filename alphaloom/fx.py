"""Currency conversion with stored rates (``audit.fx_rates``: 1 unit of ``base`` = ``rate`` units of ``quote``, known
from ``as_of``), so P&L and equity are in the account's base currency whatever the quote currency of a symbol.

``rate_between`` and ``convert`` are pure. ``rate_at`` reads the newest rate known at or before ``as_of`` (a direct
pair, or the inverse of the opposite pair, whichever is newer); there is no triangulation and no guess: a rate that is
not stored is a ``DataUnavailableError`` naming the pair and the time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection, text

from alphaloom.domain import require_utc
from alphaloom.errors import DataUnavailableError

Rates = Mapping[tuple[str, str], Decimal]


def missing_rate(from_ccy: str, to_ccy: str, as_of: datetime | None) -> DataUnavailableError:
    when = f" known at {as_of.isoformat()}" if as_of is not None else ""
    return DataUnavailableError(
        f"no fx rate to convert {from_ccy} into {to_ccy}{when}: store one in audit.fx_rates "
        f"(`alphaloom fx-rate {from_ccy} {to_ccy} RATE`)"
    )


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


def rates_at(conn: Connection, currencies: Iterable[str], to_ccy: str, as_of: datetime | None = None) -> dict:
    """``{(currency, to_ccy): rate}`` for each currency (``rate_between`` reads it); raises on the first missing."""
    return {(c, to_ccy): rate_at(conn, c, to_ccy, as_of) for c in set(currencies)}


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
