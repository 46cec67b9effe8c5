"""A local OpenAI-compatible stand-in judge: tests, benchmarks and dry runs without a model.

It serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1 and answers the prompts of
:func:`qwenlong_verl.worker.rewards.judge.build_messages` in any preset's layout (read back with the preset's
own ``reads_back`` pattern): ``[[YES]]`` when the candidate equals the reference after QA normalisation or
the pair is listed in ``equivalents``, else ``[[NO]]``. It is not a model; it exists so the judge client is
exercised over real HTTP with real latency and real faults:

``latency_s``   every chat reply waits this long (the benchmark uses 0.1 s)
``faults``      queued behaviours, one per chat request, first in first out: ``http_500``, ``http_429``,
                ``hang`` (no reply until the server stops), ``malformed_json``, ``empty_choices``,
                ``no_verdict``, ``quoted_yes_then_no`` (an explanation quoting [[YES]], ending in [[NO]]),
                ``yes``, ``no``
``lifetime_s``  the server stops by itself after this long

Run it standalone with ``python -m qwenlong_verl.worker.rewards.judge_server --latency 0.1``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import threading
import time
from collections.abc import Iterable

from qwenlong_verl.worker.rewards.judge_prompts import JUDGE_PROMPTS
from qwenlong_verl.worker.rewards.qa import normalize_text

FAULTS = (
    "http_500",
    "http_429",
    "hang",
    "malformed_json",
    "empty_choices",
    "no_verdict",
    "quoted_yes_then_no",
    "yes",
    "no",
)

_LAYOUTS = tuple(dict.fromkeys(preset.reads_back for preset in JUDGE_PROMPTS.values()))


class LocalJudgeServer:
    """The stand-in judge on a background thread; use as a context manager or ``start()`` / ``stop()``."""

    def __init__(
        self,
        latency_s: float = 0.0,
        equivalents: Iterable[tuple[str, str]] = (),
        model: str = "local-judge",
        lifetime_s: float = 300.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.latency_s = latency_s
        self.model = model
        self.lifetime_s = lifetime_s
        self.host = host
        self.port = port
        self.equivalents = set()
        for a, b in equivalents:
            self.equivalents.add((normalize_text(a), normalize_text(b)))
            self.equivalents.add((normalize_text(b), normalize_text(a)))
        self.faults: collections.deque[str] = collections.deque()
        self.chat_requests = 0
        self.model_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections: set[tuple[str, int]] = set()
        self.models_seen: list[str] = []
        self.auth_seen: list[str] = []
        self.prompts: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._runner = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def push_faults(self, *faults: str) -> None:
        for fault in faults:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
            self.faults.append(fault)

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> LocalJudgeServer:
        self._thread = threading.Thread(target=self._run, name="local-judge", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("local judge server did not start within 30 s")
        if self._error is not None:
            raise RuntimeError(f"local judge server failed to start: {self._error}")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed() and self._stopping is not None:
            loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LocalJudgeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        from aiohttp import web

        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=self.lifetime_s)
        except asyncio.TimeoutError:
            pass
        self._stopping.set()
        await self._runner.cleanup()

    # -- handlers ------------------------------------------------------------------------------------

    async def _models(self, request):
        from aiohttp import web

        self.model_requests += 1
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request):
        from aiohttp import web

        self.chat_requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.connections.add(tuple(peer[:2]))
        try:
            body = await request.json()
            self.models_seen.append(str(body.get("model")))
            self.auth_seen.append(request.headers.get("Authorization", ""))
            prompt = body["messages"][-1]["content"]
            self.prompts.append(prompt)
            fault = self.faults.popleft() if self.faults else ""
            if fault == "hang":
                assert self._stopping is not None
                await self._stopping.wait()
                return web.Response(status=503)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            if fault == "http_500":
                return web.Response(status=500, text="internal error")
            if fault == "http_429":
                return web.Response(status=429, text="slow down", headers={"Retry-After": "0"})
            if fault == "malformed_json":
                return web.Response(status=200, text='{"choices": [', content_type="application/json")
            if fault == "empty_choices":
                return web.json_response({"id": "x", "object": "chat.completion", "choices": []})
            if fault == "no_verdict":
                return web.json_response(_completion("They look similar to me."))
            if fault == "quoted_yes_then_no":
                reply = "A lenient grader might write [[YES]] here, but the numbers differ.\n[[NO]]"
                return web.json_response(_completion(reply))
            if fault in ("yes", "no"):
                return web.json_response(_completion(f"Forced. [[{fault.upper()}]]"))
            return web.json_response(_completion(self.reply_for(prompt)))
        finally:
            self.in_flight -= 1

    def reply_for(self, prompt: str) -> str:
        """The verdict reply for one of our judge prompts."""
        found = next((m for m in (layout.search(prompt) for layout in _LAYOUTS) if m), None)
        if found is None:
            return "I cannot find the two answers. [[NO]]"
        ref, cand = normalize_text(found.group("gold")), normalize_text(found.group("prediction"))
        same = bool(ref) and (ref == cand or (ref, cand) in self.equivalents)
        return "Equivalent. [[YES]]" if same else "Different. [[NO]]"


def _completion(content: str) -> dict:
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "local-judge",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--lifetime", type=float, default=600.0, help="stop after this many seconds")
    args = parser.parse_args(argv)
    server = LocalJudgeServer(latency_s=args.latency, port=args.port, lifetime_s=args.lifetime).start()
    sys.stdout.write(json.dumps({"url": server.url}) + "\n")
    sys.stdout.flush()
    assert server._thread is not None
    server._thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
