"""A real OpenAI-compatible HTTP server on 127.0.0.1 for the eval tests (aiohttp, in a thread, self-stopping).

The test decides every reply through ``respond(call) -> Reply``; ``call`` carries the sample identity the
harness sends in ``X-Request-Id`` (``qwenlong-eval:<id>:<k>:<attempt>:<nonce>``), the request body and the
user prompt. Every request is logged, so tests can count exactly what was (re-)requested.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from support.local_server import LocalServer


@dataclass
class Call:
    item_id: str
    k: int
    attempt: int
    body: dict[str, Any]
    prompt: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    hang_s: float = 0.0
    """Sleep before answering (a hang past the client timeout when long enough)."""

    finish_reason: str = "stop"
    reasoning: str | None = None
    retry_after: float | None = None
    error: str = "server error"
    body: Any = None
    """Served instead of a completion (status 200): bytes as they are, anything else as JSON (odd replies)."""


def parse_request_id(value: str) -> tuple[str, int, int]:
    """(item id, k, attempt) of a harness request; ("", -1, 0) for other clients (e.g. the judge client)."""
    parts = value.split(":")
    if parts[0] != "qwenlong-eval" or len(parts) < 5:
        return "", -1, 0
    # the item id itself may contain ':'; k, attempt and nonce are the last three fields. The client wrote the
    # id with %XX escapes (header_safe); undoing them gives the id the store holds.
    item_id = unquote(":".join(parts[1:-3]), errors="surrogatepass")
    return item_id, int(parts[-3]), int(parts[-2])


class ChatServer(LocalServer):
    """``with ChatServer(respond) as server: server.url`` -> ``http://127.0.0.1:PORT/v1``."""

    thread_name = "eval-test-server"

    def __init__(self, respond: Callable[[Call], Reply], model: str = "policy", max_lifetime_s: float = 120.0):
        super().__init__(max_lifetime_s)
        self.respond = respond
        self.model = model
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def calls_snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        item_id, k, attempt = parse_request_id(request.headers.get("X-Request-Id", ""))
        prompt = "\n".join(m.get("content", "") for m in body.get("messages", []))
        call = Call(item_id, k, attempt, body, prompt)
        with self._lock:
            self.calls.append(call)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = self.respond(call)
            if reply.hang_s:
                await asyncio.sleep(reply.hang_s)
        finally:
            with self._lock:
                self.in_flight -= 1
        if reply.status != 200:
            headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else None
            return web.json_response(
                {"object": "error", "message": reply.error, "code": reply.status}, status=reply.status, headers=headers
            )
        if reply.body is not None:
            raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            return web.Response(body=raw, content_type="application/json")
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
        return web.json_response(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
                "usage": {
                    "prompt_tokens": len(prompt.split()),
                    "completion_tokens": len(reply.text.split()) + len((reply.reasoning or "").split()),
                },
            }
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
