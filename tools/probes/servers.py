"""Small real OpenAI-compatible servers for the network probes: each misbehaves in one named way.

aiohttp on 127.0.0.1 in a thread of the probing process, stopped by the probe's cleanup (and by itself after
``max_lifetime_s``). ``GET /v1/models`` lists one model unless the fault is the whole server's
(:data:`WHOLE_SERVER` faults); ``POST /v1/chat/completions`` answers by the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable

from aiohttp import web
from support.local_server import LocalServer

MODEL = "policy"
ANSWER = "The document says so. Therefore, the answer is Yville."
VERDICT = "Both name the same city. [[YES]]"
"""A judge's reply (the strict preset's final mark)."""

WHOLE_SERVER = frozenset({"hang", "http_500"})
"""Faults the model listing shows too (a server that is down or stuck is so for every path)."""


def _completion(message: object, usage: object = None) -> dict:
    return {
        "id": "chatcmpl-probe",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage if usage is not None else {"prompt_tokens": 10, "completion_tokens": 8},
    }


def _text(text: str) -> web.Response:
    return web.json_response(_completion({"role": "assistant", "content": text}))


def _raw(body: bytes, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _error(status: int, headers: dict | None = None) -> web.Response:
    body = json.dumps({"object": "error", "message": "probe fault", "code": status}).encode()
    return _raw(body, status, headers)


def _surrogate(text: str) -> web.Response:
    body = json.dumps(_completion({"role": "assistant", "content": "@@"}))
    return _raw(body.replace("@@", "\\ud800 " + text).encode())


REPLIES: dict[str, Callable[[str], web.Response]] = {
    "ok": lambda text: _text(text),
    "http_500": lambda text: _error(500),
    "http_429": lambda text: _error(429, {"Retry-After": "1"}),
    "not_json": lambda text: _raw(b"<html>upstream gateway says hello</html>"),
    "message_string": lambda text: web.json_response(_completion(text)),
    "usage_string": lambda text: web.json_response(_completion({"role": "assistant", "content": text}, "ten")),
    "choices_empty": lambda text: web.json_response(
        {**_completion({"role": "assistant", "content": text}), "choices": []}
    ),
    "content_null": lambda text: web.json_response(_completion({"role": "assistant", "content": None})),
    "lone_surrogate": _surrogate,
    "huge": lambda text: _text(text + " " + "x" * (50 * 2**20)),
    "truncated_json": lambda text: _raw(b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assis'),
}
"""The reply to a chat request, by fault; ``text`` is what a well-behaved server would have said."""


class FakeServer(LocalServer):
    """``with FakeServer("http_500") as s: s.url`` -> ``http://127.0.0.1:PORT/v1``; ``s.calls`` counts chat
    requests. ``userinfo`` puts ``user:password@`` into :attr:`url`."""

    shutdown_timeout_s = 0.2
    client_max_size = 512 * 2**20

    def __init__(
        self,
        fault: str = "ok",
        userinfo: str = "",
        max_lifetime_s: float = 120.0,
        hang_s: float = 600.0,
        text: str = ANSWER,
    ):
        if fault not in REPLIES and fault != "hang":
            raise ValueError(f"unknown fault {fault!r}")
        super().__init__(max_lifetime_s)
        self.thread_name = f"probe-server-{fault}"
        self.fault = fault
        self.userinfo = userinfo
        self.hang_s = hang_s
        self.text = text
        self.calls = 0

    @property
    def url(self) -> str:
        auth = f"{self.userinfo}@" if self.userinfo else ""
        return f"http://{auth}127.0.0.1:{self.port}/v1"

    async def _hang(self) -> None:
        """No answer for ``hang_s``, or until the server stops (so no handler outlives it)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=self.hang_s)

    async def _models(self, request: web.Request) -> web.Response:
        if self.fault == "hang":
            await self._hang()
        if self.fault == "http_500":
            return _error(500)
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        await request.read()
        self.calls += 1
        if self.fault == "hang":
            await self._hang()
            return _error(503)
        return REPLIES[self.fault](self.text)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)


def closed_port() -> int:
    """A local port nothing listens on (bound and released: a refused connection, at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
