"""Blocking calls made by requests in the same turn of the event loop, run in one trip to a worker thread.

A trip to the threadpool (``run_in_threadpool``) costs ~100-150 µs of CPU per call on a small machine: a thread
woken, a future, a wake-up of the event loop — more than an SQLite enqueue itself. Under load many requests reach
their store call in the same turn of the loop; :class:`ThreadBatches` sends the calls made in one turn to a thread
together, which runs them one after the other and wakes the loop once for all of them. A call made alone still
takes one trip (no waiting for company: the batch leaves at the end of the current turn).

Each call keeps its own result or exception and runs in the context (``contextvars``) of the request that made it,
as with ``run_in_threadpool``. The calls of a batch run in order; a slow one delays the ones behind it, so only
short calls belong here (a store write, not a wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_Call = tuple[contextvars.Context, Callable[[], Any], "asyncio.Future[Any]"]


class ThreadBatches:
    """Runs blocking calls on ``threads`` threads of its own, one trip per turn of the event loop."""

    def __init__(self, threads: int = 4) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="octoqueue-batch")
        self._pending: list[_Call] | None = None
        #: Batches sent and calls run (for the tests and the benchmark notes).
        self.batches = 0
        self.calls = 0

    async def run(self, function: Callable[[], T]) -> T:
        """``function()`` on a thread, with the other calls made in this turn of the event loop; its result, or
        its exception raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._pending is None:
            self._pending = []
            loop.call_soon(self._send, loop)
        self._pending.append((contextvars.copy_context(), function, future))
        return await future

    def _send(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending or [], None
        self.batches += 1
        self.calls += len(batch)
        self._executor.submit(_run_all, loop, batch)

    def close(self) -> None:
        """Let the threads end once the batches sent have run."""
        self._executor.shutdown(wait=False)


def _run_all(loop: asyncio.AbstractEventLoop, batch: list[_Call]) -> None:
    outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
    for context, function, future in batch:
        try:
            outcomes.append((future, True, context.run(function)))
        except BaseException as exc:
            outcomes.append((future, False, exc))
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits for these answers
        loop.call_soon_threadsafe(_settle, outcomes)


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


__all__ = ["ThreadBatches"]
