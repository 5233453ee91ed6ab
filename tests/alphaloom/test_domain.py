from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from alphaloom.domain import (
    Bar,
    DecisionId,
    OrderIntent,
    Side,
    client_order_id_for,
    decision_id_for,
    decision_ids_for,
    stable_hash,
    timeframe_delta,
)

T = datetime(2025, 1, 2, 3, tzinfo=UTC)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Bar("x", "BTC/USDT", "1h", datetime(2025, 1, 1), *(Decimal(1),) * 5)


def test_bar_is_known_at_its_close_and_normalised_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    bar = Bar("x", "BTC/USDT", "1h", datetime(2025, 1, 2, 4, tzinfo=cet), *(Decimal(1),) * 5)
    assert bar.ts == T
    assert bar.known_at == T + timedelta(hours=1)
    with pytest.raises(ValueError, match="unknown timeframe"):
        timeframe_delta("7m")


def test_ids_are_deterministic_and_distinct_per_leg() -> None:
    d1 = decision_id_for("acct", "BTC/USDT", "1h", T, "v1")
    assert d1 == decision_id_for("acct", "BTC/USDT", "1h", T, "v1")
    assert d1 != decision_id_for("acct", "BTC/USDT", "1h", T + timedelta(hours=1), "v1")
    assert d1 != decision_id_for("acct", "BTC/USDT", "1h", T, "v2")
    assert client_order_id_for(d1, 0) == client_order_id_for(d1, 0)
    assert client_order_id_for(d1, 0) != client_order_id_for(d1, 1)


def test_ids_keep_their_value_and_a_step_s_ids_equal_each_symbol_s() -> None:
    # the values ids had before they were computed a step at a time: a rerun must find its earlier decisions
    assert decision_id_for("acct", "BTC/USDT", "1h", T, "v1") == "50cac68668978a1a85b96cf28b4c31f0"
    assert stable_hash("a", None, 3, length=12) == "5e27b2767aef"
    cet = T.astimezone(timezone(timedelta(hours=1)))
    for at in (T, cet):
        ids = decision_ids_for("acct", ["BTC/USDT", "ETH/USDT"], "1h", at, "v1")
        assert ids == {s: decision_id_for("acct", s, "1h", T, "v1") for s in ("BTC/USDT", "ETH/USDT")}
    for account, symbol, version in (("", "", ""), ("a\x1fb", "X/\u00e9", "v\x1f2"), ("acct", "BTC/USDT", "")):
        assert decision_ids_for(account, [symbol], "4h", cet, version) == {
            symbol: stable_hash(account, symbol, "4h", T.isoformat(), version)
        }
    with pytest.raises(ValueError, match="timezone-aware"):
        decision_ids_for("acct", ["BTC/USDT"], "1h", datetime(2025, 1, 1), "v1")


def test_order_intent_rejects_non_positive_quantity() -> None:
    with pytest.raises(ValueError, match="quantity must be positive"):
        OrderIntent(DecisionId("d"), "a", "BTC/USDT", Side.BUY, Decimal(0), Decimal(100))
