"""A local OpenAI-compatible chat-completions stand-in on 127.0.0.1 for the LLM team's tests and benchmark: it
supports ``tools`` (function calling) and structured output (``response_format``), and answers from scripted
conversations keyed by (symbol, role), the role read from the system prompt and the symbol from it too.

A scripted reply is ``Reply(kind, ...)``: ``tools`` (the given calls), ``json`` (the given content), ``slow`` (the
content, held until the stand-in stops: the client's timeout fires first) or ``status`` (an HTTP error). Every
request is recorded (its body, and its Authorization header apart); ``busy_s`` sums the time the stand-in itself
spent answering (excluded by the benchmark)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROLE_MARKS = {"You are the fundamental analyst": "fundamental", "You are the bull researcher": "bull", "You are the bear researcher": "bear",
              "You are the research manager": "manager", "You are the risk reviewer": "risk",
              "You play every role": "compact"}  # fmt: skip
_SYMBOL = re.compile(r"\b([A-Z0-9]+/[A-Z]+)\b")


@dataclass(frozen=True)
class Reply:
    kind: str
    content: str = ""
    calls: tuple[tuple[str, str], ...] = ()
    tokens: tuple[int, int] = (100, 20)
    status: int = 200


def role_of(request: dict[str, Any]) -> str:
    system = request["messages"][0]["content"]
    return next((role for mark, role in ROLE_MARKS.items() if system.startswith(mark)), "analyst")


def symbol_of(request: dict[str, Any]) -> str:
    found = _SYMBOL.search(request["messages"][0]["content"])
    return found.group(1) if found else ""


@dataclass
class StandIn:
    """The server's state: ``scripts[(symbol, role)]`` replies in order; ``responder`` answers what is unscripted."""

    url: str = ""
    scripts: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)  # each request's Authorization header, in order
    responder: Callable[[dict[str, Any]], Reply] | None = None
    release: threading.Event = field(default_factory=threading.Event)
    busy_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def script(self, symbol: str, role: str, *replies: Reply) -> None:
        self.scripts[(symbol, role)] = list(replies)

    def asked(self, symbol: str, role: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if symbol_of(r) == symbol and (role is None or role_of(r) == role)]

    def reply_for(self, request: dict[str, Any]) -> Reply:
        queue = self.scripts.get((symbol_of(request), role_of(request)))
        if queue:
            return queue.pop(0)
        if self.responder is not None:
            return self.responder(request)
        return Reply("status", status=500)

    def start(self) -> StandIn:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                started = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with state._lock:
                    state.requests.append(body)
                    state.authorizations.append(self.headers.get("Authorization", ""))
                    reply = state.reply_for(body)
                if reply.kind == "status":
                    self._send(reply.status, {"error": {"message": "scripted error", "type": "server_error"}},
                               started)  # fmt: skip
                    return
                if reply.kind == "slow":
                    state.release.wait(10)
                message: dict[str, Any] = {"role": "assistant", "content": None}
                if reply.kind == "tools":
                    message["tool_calls"] = [{"id": f"call_{i}_{len(state.requests)}", "type": "function",
                                              "function": {"name": name, "arguments": args}}
                                             for i, (name, args) in enumerate(reply.calls)]  # fmt: skip
                else:
                    message["content"] = reply.content
                prompt, completion = reply.tokens
                self._send(200, {
                    "id": "chatcmpl-standin", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "message": message,
                                 "finish_reason": "tool_calls" if reply.kind == "tools" else "stop"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion},
                }, started)  # fmt: skip

            def _send(self, status: int, body: dict[str, Any], started: float) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                with state._lock:
                    state.busy_s += time.perf_counter() - started

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _team_answer(role: str) -> str:
    verdict = {"action": "buy", "confidence": 0.7, "horizon_bars": 6, "rationale": "ema_10 above ema_50, rsi_14 60",
               "key_risks": ["reversal"], "cited_values": [{"name": "rsi_14", "value": 60.0}]}  # fmt: skip
    review = {"decision": "reduce", "scale": 0.5, "rationale": "one story only"}
    return json.dumps({
        "bull": {"argument": "trend up and positive news", "key_points": ["ema_10 > ema_50"], "confidence": 0.6},
        "bear": {"argument": "rsi near overbought", "key_points": ["rsi_14 60"], "confidence": 0.4},
        "fundamental": {"stance": "positive", "assessment": "EPS beat the estimate", "key_points": ["EPS beat"],
                        "confidence": 0.6},
        "manager": verdict, "risk": review,
        "compact": {"bull_case": "trend up", "bear_case": "overbought soon", "verdict": verdict, "risk": review},
    }[role])  # fmt: skip


def team_responder(request: dict[str, Any], *, bars: int = 1, tokens: tuple[int, int] | None = None) -> Reply:
    """A valid answer for every role of the LLM team: one tool call first (features for the researchers and the
    manager, news for compact, risk numbers for the reviewer), then the role's answer; billed at about 4 characters
    a token, or ``tokens`` (prompt, completion) per reply when given (tests sharing a database's daily budget bill
    little). ``bars``: how many bars of features the tool call asks for."""
    role = role_of(request)
    prompt = len(json.dumps(request["messages"])) // 4
    if not any(m["role"] == "tool" for m in request["messages"]) and request.get("tools"):
        name = {"compact": "news", "risk": "risk_numbers"}.get(role, "features")
        found = next(w for w in request["messages"][0]["content"].split() if "/" in w)
        args = {"symbol": found.rstrip(".")} if name != "risk_numbers" else {}
        if name == "features":
            args["bars"] = bars
        return Reply("tools", calls=((name, json.dumps(args)),), tokens=tokens or (prompt, 20))
    content = _team_answer(role)
    return Reply("json", content, tokens=tokens or (prompt, len(content) // 4))
