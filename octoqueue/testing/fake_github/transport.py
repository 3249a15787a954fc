"""In-process transports: httpx talks to the ASGI app directly, without sockets.

httpx ships only an *async* ASGI transport. The sync one here runs the app on one background event loop,
the way uvicorn would: requests from many threads are handled concurrently there, so injected latency
(``asyncio.sleep``) overlaps and races between clients happen as they would against a server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread, until :meth:`close`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fake-github-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (from any thread but the loop's own)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        """Stop the loop and join its thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class SyncASGITransport(httpx.BaseTransport):
    """A sync httpx transport that calls an ASGI app on a :class:`LoopThread`."""

    def __init__(self, app: Any, loop: LoopThread) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Forward ``request`` to the app and return its complete response."""
        body = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._inner.handle_async_request(inner)
            content = await response.aread()
            await response.aclose()
            return response.status_code, response.headers.raw, content

        status, headers, content = self._loop.run(call())
        return httpx.Response(status, headers=headers, content=content, request=request)
