"""``is_quoting`` and ``routes_legs`` answer what ``isinstance`` against their protocols answers, for brokers that are
one by their class, by an attribute set on the instance, by naming the protocol as a base, or are not one (a member
missing, a method blocked with None)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from execution.brokers.base import LegRoutingBroker, QuotingBroker, is_quoting, routes_legs
from execution.brokers.paper import PaperBroker


class _Plain:
    name = "plain"
    live = False

    def submit(self, request: Any) -> Any: ...

    def lookup(self, client_order_id: Any) -> Any: ...


class _Quoting(_Plain):
    def current_price(self, symbol: Any, side: Any) -> Decimal:
        return Decimal(1)


class _Routing(_Plain):
    def route(self, conn: Any, intents: Any, *, run_id: str) -> Any: ...


class _QuotingWithoutLookup:
    name = "half"
    live = False

    def submit(self, request: Any) -> Any: ...

    def current_price(self, symbol: Any, side: Any) -> Decimal:
        return Decimal(1)


class _NamedBase(QuotingBroker, LegRoutingBroker):
    name = "named"
    live = False


def _brokers() -> list[Any]:
    by_instance = _Plain()
    by_instance.current_price = lambda symbol, side: Decimal(2)  # type: ignore[attr-defined]
    by_instance.route = lambda conn, intents, *, run_id: None  # type: ignore[attr-defined]
    blocked = _Quoting()
    blocked.current_price = None  # type: ignore[assignment,method-assign]
    paper = PaperBroker(fee_bps=Decimal(1), slippage_bps=Decimal(0), kill_switch=lambda: None)  # type: ignore[arg-type,return-value]
    return [_Plain(), _Quoting(), _Routing(), _QuotingWithoutLookup(), _NamedBase(), by_instance, blocked, paper]


@pytest.mark.parametrize("index", range(len(_brokers())))
def test_the_capability_checks_equal_isinstance_of_their_protocols(index: int) -> None:
    broker = _brokers()[index]
    assert is_quoting(broker) == isinstance(broker, QuotingBroker)
    assert routes_legs(broker) == isinstance(broker, LegRoutingBroker)


def test_the_checks_tell_the_capabilities_apart() -> None:
    answers = [(is_quoting(b), routes_legs(b)) for b in _brokers()]
    assert answers == [(False, False), (True, False), (False, True), (False, False), (True, True), (True, True),
                       (False, False), (False, False)]  # fmt: skip
