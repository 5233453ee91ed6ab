"""A local OpenAI-compatible chat-completions endpoint on 127.0.0.1 for the LLM analyst's tests (the ``endpoint``
fixture, one per module): it serves scripted replies per symbol (read from the prompt), in order, and records every
request; and ``Case``, one test's run and symbol against it (the ``case`` fixture, real PostgreSQL)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, text

from agents.llm import AnalystInputs, Headline, LlmAnalyst, PastSituation
from alphaloom.settings import LlmPrice, LlmSettings, Settings

AS_OF = datetime(2024, 6, 3, 14, tzinfo=UTC)
FEATURES = {"close": 101.5, "ema_10": 100.2, "ema_50": 98.7, "rsi_14": 61.25, "macd_hist": 0.42}


def answer(
    action: str = "buy", confidence: float = 0.7, rationale: str = "trend up, rsi_14 61.25", **extra: Any
) -> str:
    body = {"action": action, "confidence": confidence, "horizon_bars": 6, "rationale": rationale,
            "key_risks": ["reversal"], "cited_values": [{"name": "rsi_14", "value": 61.25}]} | extra  # fmt: skip
    return json.dumps(body)


@dataclass
class Endpoint:
    """Serves scripted replies per symbol (found in the prompt), in order; records every request."""

    url: str = ""
    scripts: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def hits(self, symbol: str) -> int:
        return sum(1 for r in self.requests if f"Symbol: {symbol}\n" in r["messages"][1]["content"])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            symbol = re.search(r"Symbol: (\S+)", body["messages"][1]["content"]).group(1)  # type: ignore[union-attr]
            kind, payload = state.scripts[symbol].pop(0)
            if kind == "status":
                self._send(payload, {"error": {"message": "rate limited", "type": "rate_limit"}},
                           {"retry-after-ms": "5"})  # fmt: skip
                return
            if kind == "slow":  # hold the answer until the test ends: the client's timeout fires first
                state.release.wait(10)
            content, tokens = payload
            self._send(200, {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1],
                          "total_tokens": tokens[0] + tokens[1]},
            })  # fmt: skip

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@dataclass
class Case:
    engine: Engine
    endpoint: Endpoint
    run_id: str
    symbol: str

    def settings(self, **llm: Any) -> Settings:
        """Settings whose LLM points at the stand-in endpoint; ``llm`` overrides ``LlmSettings`` fields."""
        base = {"base_url": self.endpoint.url, "model": "test-model", "timeout_s": 2.0,
                "max_retries": 2, "prices": {"test-model": LlmPrice(input=Decimal("0.15"), output=Decimal("0.6"))},
                } | llm  # fmt: skip
        return Settings(llm=LlmSettings(**base))

    def script(self, *replies: tuple[str, Any], symbol: str | None = None) -> None:
        self.endpoint.scripts[symbol or self.symbol] = list(replies)

    def inputs(self, symbol: str | None = None, **features: float) -> AnalystInputs:
        return AnalystInputs(
            symbol=symbol or self.symbol, as_of=AS_OF, timeframe="1h", features=FEATURES | features,
            headlines=(Headline("n1", "Profit beats estimates", AS_OF, "positive", 0.8),),
            position_quantity=0.0, position_avg_price=0.0,
            memories=(PastSituation("OTHER/USDT", AS_OF, "buy", 0.012, 4, 0.3),),
        )  # fmt: skip

    def opine(self, analyst: LlmAnalyst, inputs: AnalystInputs | None = None):
        with self.engine.begin() as conn:
            return analyst.opine(conn, run_id=self.run_id, inputs=inputs or self.inputs())

    def ledger(self) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(
                text("select symbol, status, total_tokens, cost, latency_ms, detail from audit.llm_usage "
                     "where run_id = :r order by id"),
                {"r": self.run_id},
            ).all()  # fmt: skip


@pytest.fixture()
def case(engine: Engine, endpoint: Endpoint) -> Case:
    tag = uuid.uuid4().hex[:8].upper()
    run_id = f"run-llm-{tag}"
    with engine.begin() as conn:
        conn.execute(text("insert into audit.runs (run_id, flow) values (:r, 'test')"), {"r": run_id})
    return Case(engine, endpoint, run_id, f"L{tag}/USDT")
