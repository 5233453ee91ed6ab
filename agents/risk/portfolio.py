"""Portfolio checks of one intent against the account as a whole. Pure (the context is loaded by
``agents.risk.context``).

Checks, each a ``RiskVerdict`` with its numbers: ``drawdown`` (reduce, then halt), ``asset_exposure``,
``class_exposure``, ``gross_leverage``, ``net_leverage``, ``correlation_cluster`` and ``portfolio_var``. A sell of a
long only lowers exposure and is approved by all of them. A buy past an exposure limit is shrunk to what fits
(``adjusted_quantity``) when some of it fits, denied when none does; past the VaR limit or in a halting drawdown it is
denied. Exposures are market values in the account's base currency; percentages are of equity. An intent's
notional is its quantity x reference price (in the symbol's quote currency) x ``quote_rate`` (base units per quote
unit, point in time), so an ETH/BTC order counts in the account's currency like the exposures it is added to.

Asset classes come from the context's ``markets`` (``alphaloom.markets``: venue metadata or configuration), never from
a symbol's spelling.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from functools import cache, cached_property
from typing import Any

import numpy as np
import pandas as pd

from agents.risk.correlation import cluster_in, correlation_matrix, pearson
from agents.risk.drawdown import drawdown_state
from agents.risk.var import var_report
from agents.risk.verdict import RiskVerdict
from alphaloom.domain import OrderIntent, Side, Symbol, quote_currency
from alphaloom.fx import QuoteRate
from alphaloom.markets import UNCLASSIFIED, MarketSpec, resolve
from alphaloom.settings import RiskSettings, Settings

MIN_VAR_OBSERVATIONS = 20


def _setting_default(name: str) -> Any:
    """The ``RiskSettings`` default, so the limits' defaults have one source of truth."""
    return RiskSettings.model_fields[name].default


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Portfolio limits; each default is the ``RiskSettings`` field of the same name."""

    drawdown_reduce_pct: Decimal = _setting_default("drawdown_reduce_pct")
    drawdown_halt_pct: Decimal = _setting_default("drawdown_halt_pct")
    drawdown_reduce_factor: Decimal = _setting_default("drawdown_reduce_factor")
    max_asset_exposure_pct: Decimal = _setting_default("max_asset_exposure_pct")
    max_class_exposure_pct: Decimal = _setting_default("max_class_exposure_pct")
    max_gross_leverage: Decimal = _setting_default("max_gross_leverage")
    max_net_leverage: Decimal = _setting_default("max_net_leverage")
    correlation_threshold: float = _setting_default("correlation_threshold")
    max_cluster_exposure_pct: Decimal = _setting_default("max_cluster_exposure_pct")
    max_var_pct: Decimal = _setting_default("max_var_pct")

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskLimits:
        return cls(**{f.name: getattr(settings.risk, f.name) for f in dataclasses.fields(cls)})


def asset_class_of(symbol: str, mapping: Mapping[str, str], markets: Mapping[str, MarketSpec] | None = None) -> str:
    """The configured class, else the market's (venue metadata), else ``unclassified``: never guessed from the
    symbol's quote currency."""
    if symbol in mapping:
        return mapping[symbol]
    market = (markets or {}).get(symbol)
    return market.asset_class if market is not None else UNCLASSIFIED


@dataclass(frozen=True)
class ReturnsInputs:
    """What the correlation and VaR checks take from the returns history: the symbols (columns), the history as a
    float matrix (bars x symbols) and the correlation matrix (symbols x symbols, ``correlation_matrix``'s values as
    an array). The history is the same for every symbol of a step, so build this once per step
    (``returns_inputs``) rather than once per intent.

    ``correlation_values``: the ``known_correlations`` given, else ``pearson`` of the matrix, computed on first read
    and kept (only a buy with enough history reads it: a step whose intents are all sells never computes it)."""

    symbols: tuple[str, ...]
    matrix: np.ndarray
    known_correlations: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def correlation_values(self) -> np.ndarray:
        if self.known_correlations is not None:
            return self.known_correlations
        return pearson(self.matrix, min_periods=MIN_VAR_OBSERVATIONS)

    @cached_property
    def positions(self) -> dict[str, int]:
        """Each symbol's column in the matrix."""
        return {symbol: k for k, symbol in enumerate(self.symbols)}

    @property
    def observations(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def correlations(self) -> pd.DataFrame:
        """The correlation matrix as ``correlation_matrix`` returns it (indexed and columned by symbol)."""
        labels = pd.Index(list(self.symbols), name="symbol")
        return pd.DataFrame(self.correlation_values, index=labels, columns=labels.copy())


def returns_inputs(returns: pd.DataFrame) -> ReturnsInputs:
    if returns.empty:
        return ReturnsInputs((), np.empty((0, 0)), np.empty((0, 0)))
    symbols = tuple(str(c) for c in returns.columns)
    values = returns.to_numpy()  # a view of a float frame's one block
    if values.dtype == np.float64:  # the matrix DataFrame.corr reads: its routine on it gives its values
        return ReturnsInputs(symbols, values)
    correlations = correlation_matrix(returns, min_periods=MIN_VAR_OBSERVATIONS)
    return ReturnsInputs(symbols, returns.to_numpy(dtype=float), correlations.to_numpy(dtype=float))


ReturnsSource = pd.DataFrame | Callable[[], pd.DataFrame]


_RETURNS_SLOT = "_returns_held"


class _LazyReturns:
    """The ``returns`` field of ``PortfolioContext``: given a frame, or a function computing it on first read (a
    replay's account: most steps propose no order and never read it); the computed frame is kept."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_held"  # "_returns_held" (_RETURNS_SLOT) for PortfolioContext.returns

    def __get__(self, instance: object | None, owner: type | None = None) -> pd.DataFrame:
        if instance is None:  # the dataclass default: a fresh empty frame on first read
            return pd.DataFrame  # type: ignore[return-value]
        held: ReturnsSource = instance.__dict__[self._slot]
        if not isinstance(held, pd.DataFrame):
            held = instance.__dict__[self._slot] = held()
        return held

    def __set__(self, instance: object, value: ReturnsSource) -> None:
        instance.__dict__[self._slot] = value


@dataclass(frozen=True)
class PortfolioContext:
    """The account at decision time: equity and its peak, signed market value per symbol, per-bar returns history
    (bars x symbols, point in time), the class mapping and how many bars make a day (for 1-day VaR).

    ``markets``: each symbol's ``MarketSpec`` (class, quantity step); ``base_currency`` and ``quote_rates``
    (``{(currency, base): rate}`` known at the decision time, ``alphaloom.fx``; a currency without a known rate is
    absent) give each symbol's ``QuoteRate``. Both are loaded by ``agents.risk.context``.

    ``returns`` may be given as a function computing the frame on first read (``_LazyReturns``).

    ``inputs``: the returns history prepared for the correlation and VaR checks (``returns_inputs(returns)``); pass
    it when deciding several symbols on the same history, else each check prepares it again. ``inputs_source``: a
    function giving ``returns_inputs(returns)`` without the frame (a replay's arrays), or None when it cannot (then
    ``prepared`` reads the frame)."""

    equity: Decimal
    peak_equity: Decimal
    exposures: Mapping[str, Decimal] = field(default_factory=dict)
    returns: _LazyReturns = _LazyReturns()
    asset_classes: Mapping[str, str] = field(default_factory=dict)
    bars_per_day: float = 1.0
    inputs: ReturnsInputs | None = None
    markets: Mapping[str, MarketSpec] = field(default_factory=dict)
    base_currency: str | None = None
    quote_rates: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    as_of: datetime | None = None
    inputs_source: Callable[[], ReturnsInputs | None] | None = field(default=None, compare=False, repr=False)

    def quote_rate(self, symbol: Symbol) -> QuoteRate:
        """How ``symbol``'s quote currency counts in the base currency at the decision time (``rate`` None when no
        rate was known: the caller refuses). A context without a base currency is single-currency (built by hand)."""
        if self.base_currency is None:
            return _same_rate(quote_currency(symbol, ""))
        quote = quote_currency(symbol, self.base_currency)
        if quote == self.base_currency:
            return _same_rate(quote)
        return QuoteRate(quote, self.base_currency, self.quote_rates.get((quote, self.base_currency)), self.as_of)

    def market(self, symbol: Symbol) -> MarketSpec:
        """``symbol``'s market; one the context was not loaded for is resolved from its class mapping alone."""
        known = self.markets.get(symbol)
        return known if known is not None else resolve(symbol, {}, self.asset_classes, {})

    def prepared(self) -> PortfolioContext:
        """This context with ``inputs`` computed (once; ``after`` keeps them)."""
        if self.inputs is not None:
            return self
        inputs = self.inputs_source() if self.inputs_source is not None else None
        return self._replace(inputs=inputs if inputs is not None else returns_inputs(self.returns))

    def _replace(self, **changes: Any) -> PortfolioContext:
        """``dataclasses.replace`` handing on the returns as held (a function not yet called stays uncalled): the
        fields copied as they are held, then ``changes`` (fields only), without ``__init__`` (no field has a
        ``__post_init__`` or a default to apply to a copy; a replay builds one per decided symbol)."""
        unknown = changes.keys() - _CONTEXT_FIELDS
        if unknown:
            raise TypeError(f"PortfolioContext has no field {sorted(unknown)}")
        copy = object.__new__(type(self))
        held = copy.__dict__
        held.update(self.__dict__)
        held.update(changes)
        return copy

    def after(self, intent: OrderIntent, quote_rate: Decimal) -> PortfolioContext:
        """The context once ``intent`` has filled at its reference price (so the next intent sees it); ``quote_rate``
        converts its notional into the base currency."""
        return self._replace(exposures=_exposures_after(self.exposures, intent, quote_rate))


# the fields ``PortfolioContext._replace`` may change (``returns`` is held under its slot, ``_RETURNS_SLOT``)
_CONTEXT_FIELDS = frozenset(f.name for f in dataclasses.fields(PortfolioContext)) - {"returns"}

# ``QuoteRate.same(currency)``, one immutable value per currency (asked for every symbol a replay step decides)
_same_rate = cache(QuoteRate.same)


def _exposures_after(exposures: Mapping[str, Decimal], intent: OrderIntent, quote_rate: Decimal) -> dict[str, Decimal]:
    """``exposures`` once ``intent`` has filled at its reference price (``PortfolioContext.after``)."""
    notional = intent.notional * quote_rate
    signed = notional if intent.side is Side.BUY else -notional
    after = dict(exposures)
    after[intent.symbol] = after.get(intent.symbol, Decimal(0)) + signed
    return after


def _fit(intent: OrderIntent, room: Decimal, quote_rate: Decimal) -> Decimal:
    """The largest quantity of ``intent``'s precision whose base-currency notional fits in ``room`` (0 when none)."""
    if room <= 0:
        return Decimal(0)
    step = Decimal(1).scaleb(intent.quantity.as_tuple().exponent)  # type: ignore[arg-type]
    return min(intent.quantity, (room / (intent.reference_price * quote_rate)).quantize(step, rounding=ROUND_DOWN))


def _cap(name: str, intent: OrderIntent, used: Decimal, limit: Decimal, what: str, quote_rate: Decimal) -> RiskVerdict:
    add = intent.notional * quote_rate
    after = used + add
    # each figure written once: the numbers and the reason show the same texts
    numbers = {"used": f"{used:.2f}", "order_notional": f"{add:.2f}", "limit": f"{limit:.2f}"}
    if quote_rate != 1:
        numbers["quote_rate"] = str(quote_rate)
    if after <= limit:
        return RiskVerdict(name, True, f"{what} {after:.2f} within {numbers['limit']}", numbers)
    fits = _fit(intent, limit - used, quote_rate)
    if fits > 0:
        numbers["adjusted_quantity"] = str(fits)
        return RiskVerdict(
            name, True, f"{what} would be {after:.2f} > {numbers['limit']}: shrunk to {fits}", numbers, fits
        )
    return RiskVerdict(name, False, f"{what} {numbers['used']} leaves no room under {numbers['limit']}", numbers)


_PORTFOLIO_CHECKS = ("drawdown", "asset_exposure", "class_exposure", "gross_leverage", "net_leverage",
                     "correlation_cluster", "portfolio_var")  # fmt: skip
_PCT = Decimal(100)


def check_portfolio(
    intent: OrderIntent, ctx: PortfolioContext, limits: RiskLimits, *, quote_rate: Decimal
) -> list[RiskVerdict]:
    """One verdict per portfolio check (see the module docstring); ``quote_rate``: base units per unit of the
    intent's quote currency (``PortfolioContext.quote_rate``). Stages: drawdown, exposure caps, the checks that need
    the return history (correlation cluster, VaR)."""
    if intent.side is Side.SELL:
        numbers = {"equity": f"{ctx.equity:.2f}"}
        return [RiskVerdict(name, True, "a sell lowers long exposure", dict(numbers)) for name in _PORTFOLIO_CHECKS]
    return [
        drawdown_check(intent, ctx, limits),
        *exposure_checks(intent, ctx, limits, quote_rate),
        *history_checks(intent, ctx, limits, quote_rate),
    ]


def drawdown_check(intent: OrderIntent, ctx: PortfolioContext, limits: RiskLimits) -> RiskVerdict:
    """``drawdown``: normal, reduce (a smaller buy, denied when it rounds to nothing) or halt (no new buys)."""
    equity = ctx.equity
    dd = drawdown_state(
        equity,
        ctx.peak_equity,
        reduce_pct=limits.drawdown_reduce_pct,
        halt_pct=limits.drawdown_halt_pct,
        reduce_factor=limits.drawdown_reduce_factor,
    )
    dd_numbers = {"equity": f"{equity:.2f}", "peak_equity": f"{max(ctx.peak_equity, equity):.2f}",
                  "drawdown_pct": f"{dd.drawdown_pct:.4f}", "reduce_pct": str(limits.drawdown_reduce_pct),
                  "halt_pct": str(limits.drawdown_halt_pct), "level": dd.level}  # fmt: skip
    if dd.level == "halt":
        return RiskVerdict("drawdown", False, f"drawdown {dd.drawdown_pct:.2f}% halts new buys", dd_numbers)
    if dd.level == "reduce":
        step = Decimal(1).scaleb(intent.quantity.as_tuple().exponent)  # type: ignore[arg-type]
        reduced = (intent.quantity * dd.scale).quantize(step, rounding=ROUND_DOWN)
        dd_numbers["adjusted_quantity"] = str(reduced)
        return RiskVerdict(
            "drawdown",
            reduced > 0,
            f"drawdown {dd.drawdown_pct:.2f}% reduces buys by {dd.scale}: {reduced}",
            dd_numbers,
            reduced if reduced > 0 else None,
        )
    return RiskVerdict("drawdown", True, f"drawdown {dd.drawdown_pct:.2f}% is normal", dd_numbers)


def exposure_checks(intent: OrderIntent, ctx: PortfolioContext, limits: RiskLimits, rate: Decimal) -> list[RiskVerdict]:
    """``asset_exposure``, ``class_exposure``, ``gross_leverage``, ``net_leverage``: caps on the exposure after the
    buy, each shrinking the buy to what fits (``_cap``)."""
    equity, exposures = ctx.equity, ctx.exposures
    klass = asset_class_of(intent.symbol, ctx.asset_classes, ctx.markets)
    class_used = sum(
        (abs(v) for s, v in exposures.items() if asset_class_of(s, ctx.asset_classes, ctx.markets) == klass),
        Decimal(0),
    )
    gross = sum((abs(v) for v in exposures.values()), Decimal(0))
    net = sum(exposures.values(), Decimal(0))
    return [
        _cap("asset_exposure", intent, max(exposures.get(intent.symbol, Decimal(0)), Decimal(0)),
             equity * limits.max_asset_exposure_pct / _PCT, f"{intent.symbol} exposure", rate),
        _cap("class_exposure", intent, class_used, equity * limits.max_class_exposure_pct / _PCT,
             f"class {klass!r} exposure", rate),
        _cap("gross_leverage", intent, gross, equity * limits.max_gross_leverage, "gross exposure", rate),
        _cap("net_leverage", intent, net, equity * limits.max_net_leverage, "net exposure", rate),
    ]  # fmt: skip


def history_checks(intent: OrderIntent, ctx: PortfolioContext, limits: RiskLimits, rate: Decimal) -> list[RiskVerdict]:
    """``correlation_cluster`` and ``portfolio_var``; approved as not assessed without enough return history."""
    inputs = ctx.inputs if ctx.inputs is not None else returns_inputs(ctx.returns)
    if intent.symbol in inputs.symbols and inputs.observations >= MIN_VAR_OBSERVATIONS:
        return [_cluster_check(intent, ctx, limits, rate, inputs), _var_check(intent, ctx, limits, rate, inputs)]
    missing = {"observations": str(len(ctx.returns)), "required": str(MIN_VAR_OBSERVATIONS)}
    return [
        RiskVerdict(name, True, f"not enough return history for {intent.symbol}: not assessed", dict(missing))
        for name in ("correlation_cluster", "portfolio_var")
    ]


def _cluster_check(
    intent: OrderIntent, ctx: PortfolioContext, limits: RiskLimits, rate: Decimal, inputs: ReturnsInputs
) -> RiskVerdict:
    """``correlation_cluster``: a cap on the exposure of the symbols correlated with the intent's."""
    cluster = cluster_in(intent.symbol, inputs.symbols, inputs.correlation_values, limits.correlation_threshold)
    cluster_used = sum((abs(ctx.exposures.get(s, Decimal(0))) for s in cluster), Decimal(0))
    verdict = _cap("correlation_cluster", intent, cluster_used, ctx.equity * limits.max_cluster_exposure_pct / _PCT,
                   f"cluster {sorted(cluster)} exposure", rate)  # fmt: skip
    verdict.numbers["cluster"] = ",".join(sorted(cluster))
    verdict.numbers["threshold"] = str(limits.correlation_threshold)
    return verdict


def _var_check(
    intent: OrderIntent, ctx: PortfolioContext, limits: RiskLimits, rate: Decimal, inputs: ReturnsInputs
) -> RiskVerdict:
    """``portfolio_var``: the 1-day historical VaR99 of the portfolio after the order within its limit."""
    # each symbol's exposure after the order as a float, 0 for one without (most of them: nothing to convert)
    vector = np.zeros(len(inputs.symbols))
    positions = inputs.positions
    for symbol, exposure in _exposures_after(ctx.exposures, intent, rate).items():
        if (k := positions.get(symbol)) is not None:
            vector[k] = float(exposure)
    report = var_report(inputs.matrix, vector, bars_per_day=ctx.bars_per_day)
    limit = float(ctx.equity * limits.max_var_pct / _PCT)
    worst = report.var["historical_99"]
    numbers = {**report.as_numbers(), "limit": f"{limit:.2f}"}
    ok = worst <= limit
    return RiskVerdict("portfolio_var", ok,
                       f"1-day historical VaR99 after the order {worst:.2f} {'within' if ok else 'exceeds'} {limit:.2f}",
                       numbers)  # fmt: skip
