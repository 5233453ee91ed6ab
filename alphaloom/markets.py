"""What each traded market is: its asset class and its quantity step, from the venue's own market metadata or from
explicit configuration, never from the spelling of a symbol (``BTC/USD`` on Kraken is a coin traded in 1e-8 units,
not a share).

Sources, first that says wins (``resolve``):

1. the venue's market metadata: ccxt ``markets[symbol]`` (``type``, ``precision.amount``, ``limits.amount.min``),
   read by the ccxt price ingest and stored per (exchange, symbol) in ``raw.markets`` (``spec_from_ccxt``,
   ``store_specs``). ccxt venues are crypto venues, so the class is ``crypto`` and the instrument type
   (spot, swap...) is kept beside it; the step is the market's amount precision (a tick size, or decimal places);
2. explicit configuration, for file sources that carry no metadata: ``Settings.asset_classes`` (symbol -> class;
   it also overrides the venue's class, since operators group risk by it) and ``Settings.quantity_steps``
   (symbol -> step). A configured class in ``WHOLE_UNIT_CLASSES`` trades whole units unless a step is configured;
3. nothing said: class ``unclassified`` in ``FRACTIONAL_STEP`` units. Only file sources can end here (a live venue
   always has metadata); fractional paper orders are harmless, whole-unit guesses made orders vanish.

``resolve`` is pure; ``load_specs`` / ``market_specs`` read ``raw.markets`` (one query for all symbols).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

FRACTIONAL_STEP = Decimal("0.000001")
WHOLE_UNIT_CLASSES = frozenset({"equity", "stock", "stocks", "etf"})
UNCLASSIFIED = "unclassified"
# ccxt precision modes (ccxt.base.decimal_to_precision): DECIMAL_PLACES = 2, SIGNIFICANT_DIGITS = 3, TICK_SIZE = 4.
DECIMAL_PLACES, TICK_SIZE = 2, 4


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One market: ``asset_class`` (risk grouping and sizing), ``quantity_step`` (the smallest tradable increment),
    ``min_quantity`` (the venue's minimum amount, None when it has none or it is not known) and where they came from
    (``venue``, ``config`` or ``default``)."""

    symbol: str
    asset_class: str
    quantity_step: Decimal
    min_quantity: Decimal | None = None
    instrument_type: str | None = None
    source: str = "default"


def _dec(value: object) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def spec_from_ccxt(symbol: str, market: Mapping[str, Any], precision_mode: int) -> MarketSpec:
    """A ccxt market as a ``MarketSpec``: the step from ``precision.amount`` (a tick size under ``TICK_SIZE``, a count
    of decimal places under ``DECIMAL_PLACES``; significant digits give no fixed step, so ``FRACTIONAL_STEP``)."""
    amount = _dec((market.get("precision") or {}).get("amount"))
    step = None
    if amount is not None and amount > 0:
        step = amount if precision_mode == TICK_SIZE else None
        if precision_mode == DECIMAL_PLACES:
            step = Decimal(1).scaleb(-int(amount))
    minimum = _dec(((market.get("limits") or {}).get("amount") or {}).get("min"))
    return MarketSpec(symbol, "crypto", step or FRACTIONAL_STEP, minimum if minimum and minimum > 0 else None,
                      market.get("type"), "venue")  # fmt: skip


def resolve(
    symbol: str,
    venue: Mapping[str, MarketSpec],
    asset_classes: Mapping[str, str],
    quantity_steps: Mapping[str, Decimal],
) -> MarketSpec:
    """The market of ``symbol`` by the rules of the module docstring."""
    configured_class = asset_classes.get(symbol)
    known = venue.get(symbol)
    if known is not None:
        return known if configured_class is None else MarketSpec(
            symbol, configured_class, known.quantity_step, known.min_quantity, known.instrument_type, known.source
        )  # fmt: skip
    step = quantity_steps.get(symbol)
    if step is not None and step <= 0:
        raise ValueError(f"configured quantity step of {symbol} must be positive, got {step}")
    if configured_class is None and step is None:
        return MarketSpec(symbol, UNCLASSIFIED, FRACTIONAL_STEP)
    klass = configured_class or UNCLASSIFIED
    default_step = Decimal(1) if klass.lower() in WHOLE_UNIT_CLASSES else FRACTIONAL_STEP
    return MarketSpec(symbol, klass, step or default_step, source="config")


def load_specs(conn: Connection, exchange: str, symbols: Sequence[str]) -> dict[str, MarketSpec]:
    """The venue metadata stored for ``symbols`` at ``exchange`` (``raw.markets``); symbols with none are absent."""
    if not symbols:
        return {}
    rows = conn.execute(
        text(
            """select symbol, asset_class, quantity_step, min_quantity, instrument_type from raw.markets
               where exchange = :e and symbol = any(:s)"""
        ),
        {"e": exchange, "s": list(symbols)},
    ).all()
    return {
        r.symbol: MarketSpec(r.symbol, r.asset_class, Decimal(r.quantity_step),
                             None if r.min_quantity is None else Decimal(r.min_quantity), r.instrument_type, "venue")
        for r in rows
    }  # fmt: skip


def market_specs(
    conn: Connection,
    *,
    exchange: str,
    symbols: Iterable[str],
    asset_classes: Mapping[str, str],
    quantity_steps: Mapping[str, Decimal],
) -> dict[str, MarketSpec]:
    """Every symbol's ``MarketSpec`` at ``exchange``: stored venue metadata, else configuration (``resolve``)."""
    wanted = sorted(set(symbols))
    venue = load_specs(conn, exchange, wanted)
    return {s: resolve(s, venue, asset_classes, quantity_steps) for s in wanted}


def store_specs(conn: Connection, exchange: str, specs: Iterable[MarketSpec], run_id: str | None = None) -> int:
    """Upsert venue metadata into ``raw.markets`` (the venue's latest answer wins: steps and minimums do change)."""
    rows = [
        {"e": exchange, "s": m.symbol, "c": m.asset_class, "q": m.quantity_step, "m": m.min_quantity,
         "t": m.instrument_type, "r": run_id}
        for m in specs
    ]  # fmt: skip
    if rows:
        conn.execute(
            text(
                """insert into raw.markets (exchange, symbol, asset_class, quantity_step, min_quantity,
                                            instrument_type, run_id)
                   values (:e, :s, :c, :q, :m, :t, :r)
                   on conflict (exchange, symbol) do update set asset_class = excluded.asset_class,
                       quantity_step = excluded.quantity_step, min_quantity = excluded.min_quantity,
                       instrument_type = excluded.instrument_type, run_id = excluded.run_id, updated_at = now()"""
            ),
            rows,
        )
    return len(rows)
