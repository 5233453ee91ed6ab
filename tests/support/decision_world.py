"""A decision test's world: a paper account on its own exchange name, hand-made feature rows and news, the team's
decisions and their execution through a broker that counts its submits (real PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from agents.sentiment import LexiconScorer
from agents.team import FEATURE_COLUMNS, decide
from alphaloom.domain import ClientOrderId, Decision, OrderIntent
from alphaloom.settings import Settings
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.paper import PaperBroker
from execution.submit import execute

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


class CountingBroker:
    """A real ``Broker`` delegating to a ``PaperBroker``, counting submits."""

    def __init__(self, inner: PaperBroker) -> None:
        self.inner, self.name, self.live, self.submits = inner, inner.name, inner.live, 0

    def submit(self, request: OrderRequest) -> BrokerReport:
        self.submits += 1
        return self.inner.submit(request)

    def lookup(self, client_order_id: ClientOrderId) -> BrokerReport | None:
        return self.inner.lookup(client_order_id)


@dataclass
class World:
    engine: Engine
    settings: Settings
    account: str
    run_id: str
    tag: str
    broker: CountingBroker
    scorer: LexiconScorer

    def symbol(self, name: str, quote: str = "USDT") -> str:
        return f"{name}{self.tag}/{quote}"

    def features(self, symbol: str, ts: datetime, values: dict[str, float], known_at: datetime | None = None) -> None:
        row = {c: values.get(c) for c in FEATURE_COLUMNS}
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    f"""insert into marts.features (exchange, symbol, timeframe, ts, known_at,
                            {", ".join(FEATURE_COLUMNS)}, dbt_invocation_id)
                        values (:exchange, :symbol, '1h', :ts, :known_at,
                            {", ".join(":" + c for c in FEATURE_COLUMNS)}, 'dbt-inv-1')"""
                ),
                {"exchange": self.settings.exchange, "symbol": symbol, "ts": ts, "known_at": known_at or ts + HOUR}
                | row,
            )

    def news(self, symbol: str, title: str, first_seen_at: datetime) -> str:
        news_id = f"n-{uuid.uuid4().hex[:12]}"
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    """insert into raw.news (id, title, summary, published_at, first_seen_at, first_seen_assumed,
                                             run_id)
                       values (:id, :t, '', :f, :f, false, :r)"""
                ),
                {"id": news_id, "t": title, "f": first_seen_at, "r": self.run_id},
            )
            conn.execute(text("insert into raw.news_symbols values (:n, :s)"), {"n": news_id, "s": symbol})
        return news_id

    def decide(self, symbols: Sequence[str], as_of: datetime) -> list[Decision]:
        with self.engine.begin() as conn:
            return decide(
                conn,
                account=self.account,
                symbols=symbols,
                as_of=as_of,
                run_id=self.run_id,
                settings=self.settings,
                scorer=self.scorer,
            )

    def execute(self, intents: Sequence[OrderIntent], event_time: datetime):
        with self.engine.begin() as conn:
            return execute(
                conn, intents, run_id=self.run_id, broker=self.broker, settings=self.settings, event_time=event_time
            )

    def query(self, sql: str, **params: object) -> list:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()
