"""``PortfolioContext._replace`` (``prepared``, ``after``: one copy per decided symbol of a replay) copies the
context's held fields without ``__init__``: it equals what ``dataclasses.replace`` built, leaves a returns function
uncalled and refuses a name that is no field."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from agents.risk.portfolio import PortfolioContext, ReturnsInputs
from alphaloom.domain import AccountId, DecisionId, OrderIntent, Side, Symbol


def _context(returns: object, inputs_source: object = lambda: None) -> PortfolioContext:
    return PortfolioContext(
        equity=Decimal("10000.5"), peak_equity=Decimal("12000"), exposures={"BTC/USDT": Decimal("2500.25")},
        returns=returns, asset_classes={"BTC/USDT": "crypto"}, bars_per_day=24.0, base_currency="USDT",
        quote_rates={("EUR", "USDT"): Decimal("1.08")}, as_of=datetime(2026, 3, 1, tzinfo=UTC),
        inputs_source=inputs_source,
    )  # fmt: skip


def _intent(side: Side) -> OrderIntent:
    return OrderIntent(decision_id=DecisionId("d1"), account=AccountId("a"), symbol=Symbol("ETH/USDT"), side=side,
                       quantity=Decimal("0.5"), reference_price=Decimal("2000"))  # fmt: skip


def _fields(ctx: PortfolioContext) -> dict[str, object]:
    return {f.name: ctx.__dict__["_returns_held"] if f.name == "returns" else getattr(ctx, f.name)
            for f in dataclasses.fields(ctx)}  # fmt: skip


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_after_equals_the_context_dataclasses_replace_built(side: Side) -> None:
    frame = pd.DataFrame({"BTC/USDT": [0.01, -0.02]})
    ctx = _context(frame)
    after = ctx.after(_intent(side), Decimal(1))
    built = dataclasses.replace(ctx, returns=frame, exposures=after.exposures)
    assert type(after) is PortfolioContext
    assert _fields(after) == _fields(built) and after == built
    assert after.exposures != ctx.exposures  # the copy has its own exposures, the original kept its own
    assert ctx.exposures == {"BTC/USDT": Decimal("2500.25")}


def test_prepared_hands_on_a_returns_function_uncalled() -> None:
    calls: list[int] = []

    def returns() -> pd.DataFrame:
        calls.append(1)
        return pd.DataFrame({"BTC/USDT": [0.01] * 30})

    inputs = ReturnsInputs(("BTC/USDT",), np.full((30, 1), 0.01))
    ctx = _context(returns, lambda: inputs)
    prepared = ctx.prepared()
    assert prepared.inputs is inputs and prepared.prepared() is prepared
    assert calls == []  # nor the copy nor the original read the frame
    assert prepared.returns.equals(ctx.returns) and calls == [1, 1]  # each computes it on its first read


def test_replace_refuses_a_name_that_is_no_field() -> None:
    with pytest.raises(TypeError, match="no field"):
        _context(pd.DataFrame())._replace(equity_typo=Decimal(1))
