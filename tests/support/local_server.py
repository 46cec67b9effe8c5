"""A real aiohttp server on 127.0.0.1 in a thread of the calling process, for tests and probes that need real HTTP.

Stopped on ``__exit__``, and by itself after ``max_lifetime_s`` so that a forgotten one never outlives its user.
Subclasses say what they serve (:meth:`LocalServer.routes`); the port is the kernel's choice.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class LocalServer:
    """``with Sub() as server: server.port``; a subclass adds its routes in :meth:`routes`."""

    thread_name = "local-server"
    shutdown_timeout_s = 0.5
    client_max_size = 1024**2
    """aiohttp's own default request cap; a subclass that takes larger bodies raises it."""

    def __init__(self, max_lifetime_s: float = 120.0):
        self.max_lifetime_s = max_lifetime_s
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def _serve(self) -> None:
        app = web.Application(client_max_size=self.client_max_size)
        self.routes(app)
        runner = web.AppRunner(app, shutdown_timeout=self.shutdown_timeout_s)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=self.max_lifetime_s)
        except asyncio.TimeoutError:
            pass  # bounded: a forgotten server stops by itself
        finally:
            await runner.cleanup()

    def __enter__(self):
        def main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve())
            self._loop.close()

        self._thread = threading.Thread(target=main, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.thread_name} did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # the loop closed in between: the server is already down
        if self._thread is not None:
            self._thread.join(10)
