"""A local HTTP double of the Anthropic Messages API (POST /v1/messages), driven by a script of turns.

Each scripted turn is one of:
- a callable(request_json) -> list of content blocks, or a `Reply`;
- a `Reply(content, usage=..., stop_reason=...)`;
- a `Fail(status, ...)`: an API error response (429/529/...), which the SDK may retry.
Content blocks are dicts in the API's shape; helpers `text()` and `tool_use()` build them.
Every request is recorded (`double.requests`: parsed JSON bodies, `double.headers`)."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: list[dict[str, Any]]
    usage: dict[str, int] | None = None
    stop_reason: str | None = None


@dataclass
class Fail:
    status: int
    error_type: str = "rate_limit_error"
    message: str = "scripted failure"
    retry_after_ms: int | None = 5


Turn = Callable[[dict[str, Any]], Any] | Reply | Fail


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


_ids = itertools.count(1)


def tool_use(name: str, **inputs: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_double_{next(_ids):05d}", "name": name, "input": inputs}


def estimated_usage(request: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, int]:
    """Token counts derived from sizes (~4 chars a token), like a real tokenizer would roughly give."""
    prompt = json.dumps({k: request.get(k) for k in ("system", "messages", "tools")})
    return {"input_tokens": max(1, len(prompt) // 4), "output_tokens": max(1, len(json.dumps(content)) // 4)}


@dataclass
class AnthropicDouble:
    script: list[Turn] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    api_key: str | None = None  # when set, requests must carry it (x-api-key or Bearer)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._msg_ids = itertools.count(1)
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                if self.path.split("?")[0] != "/v1/messages":
                    return self._send(
                        404,
                        {
                            "type": "error",
                            "error": {"type": "not_found_error", "message": f"no route {self.path}"},
                        },
                    )
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send(
                        400,
                        {
                            "type": "error",
                            "error": {"type": "invalid_request_error", "message": "body is not JSON"},
                        },
                    )
                status, payload, extra = double.handle(body, dict(self.headers))
                self._send(status, payload, extra)

            def _send(
                self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_double_{len(double.requests)}")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> AnthropicDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(
        self, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in headers.items()})
            lowered = {k.lower(): v for k, v in headers.items()}
            sent = lowered.get("x-api-key") or lowered.get("authorization", "").removeprefix("Bearer ")
            if self.api_key is not None and sent != self.api_key:
                return (
                    401,
                    {
                        "type": "error",
                        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                    },
                    {},
                )
            problem = _validate(body)
            if problem:
                return (
                    400,
                    {"type": "error", "error": {"type": "invalid_request_error", "message": problem}},
                    {},
                )
            if not self.script:
                return (
                    500,
                    {"type": "error", "error": {"type": "api_error", "message": "script exhausted"}},
                    {"x-should-retry": "false"},
                )
            turn = self.script.pop(0)
        if isinstance(turn, Fail):
            extra = {"retry-after-ms": str(turn.retry_after_ms)} if turn.retry_after_ms is not None else {}
            return (
                turn.status,
                {"type": "error", "error": {"type": turn.error_type, "message": turn.message}},
                extra,
            )
        reply = turn(body) if callable(turn) else turn
        if not isinstance(reply, Reply):
            reply = Reply(list(reply))
        stop = reply.stop_reason or (
            "tool_use" if any(b["type"] == "tool_use" for b in reply.content) else "end_turn"
        )
        usage = {
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            **estimated_usage(body, reply.content),
            **(reply.usage or {}),
        }
        return (
            200,
            {
                "id": f"msg_double_{next(self._msg_ids):04d}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": reply.content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            },
            {},
        )


def _validate(body: dict[str, Any]) -> str | None:
    """The request checks the real API makes that matter to our client."""
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: must be a positive integer"
    msgs = body["messages"]
    if not msgs or msgs[0].get("role") != "user":
        return "messages: first message must use the user role"
    for a, b in zip(msgs, msgs[1:], strict=False):
        if a.get("role") == b.get("role"):
            return "messages: roles must alternate between user and assistant"
    pending: set[str] = set()
    for m in msgs:
        content = m.get("content")
        blocks = content if isinstance(content, list) else []
        if m["role"] == "user":
            results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if pending - results:
                return f"messages: tool_use ids without tool_result: {sorted(pending - results)}"
            pending = set()
        else:
            pending = {b["id"] for b in blocks if b.get("type") == "tool_use"}
        for b in blocks:
            if b.get("type") == "text" and not b.get("text"):
                return "messages: text content blocks must be non-empty"
    return None
