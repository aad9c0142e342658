"""An aiohttp server on 127.0.0.1 in a thread of its own, started and stopped by a test.

Subclasses add their routes (``routes``); the tests' virtual chunk containers point at
``http://127.0.0.1:<port>/...``. Nothing listens beyond loopback, and ``stop`` leaves no
thread or socket behind.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

__all__ = ["LoopbackHttpServer"]


class LoopbackHttpServer:
    """The loop, thread and listening socket of a test HTTP server; ``port`` once started."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def routes(self, app: web.Application) -> None:
        """Add the server's routes to ``app``."""
        raise NotImplementedError

    async def _start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        """Close the server, its loop and its thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
