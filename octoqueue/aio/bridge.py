"""Running octoqueue's synchronous code on an event loop, awaiting where it does I/O.

The queue's rules, the stores' SQL and Lua, the sealing of payloads are written once, as plain functions. To
run them on an event loop without threads, :func:`run_sync` starts the function in a greenlet (a stack of its own on
the loop's thread); where that code reaches I/O it calls :func:`await_` with a coroutine of a native async client
(psycopg's ``AsyncConnection``, ``redis.asyncio``), which hands the coroutine back to :func:`run_sync` to await on the
loop, and resumes the code with its result (or raises its exception there). While one call awaits, the loop runs
other tasks, as with any coroutine.

Code run this way must not block the thread (no ``time.sleep``, no lock held across an :func:`await_` that another
greenlet on the loop may want).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, ParamSpec, TypeVar

from octoqueue.errors import ConfigurationError

try:
    import greenlet
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ConfigurationError("octoqueue.aio needs greenlet: pip install 'octoqueue[aio]'") from exc

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class _Bridged(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet running a synchronous call for :func:`run_sync`; its parent is the greenlet of the coroutine
    that awaits for it."""


def in_bridge() -> bool:
    """Whether the caller runs inside :func:`run_sync` (so it may call :func:`await_`)."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def await_(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` on the event loop from synchronous code started by :func:`run_sync`; return its result
    or raise its exception. Outside :func:`run_sync` it raises RuntimeError (a plain thread cannot await)."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        if hasattr(awaitable, "close"):
            awaitable.close()  # never awaited: close it, so Python does not warn about it
        raise RuntimeError("an async store was called from synchronous code outside octoqueue.aio")
    result: T = current.parent.switch(awaitable)
    return result


async def run_sync(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` run on the event loop's thread, each :func:`await_` inside it awaited here."""
    bridged = _Bridged(fn)
    step: Any = bridged.switch(*args, **kwargs)
    while not bridged.dead:
        try:
            value = await step
        except BaseException:
            step = bridged.throw(*sys.exc_info())
        else:
            step = bridged.switch(value)
    result: R = step
    return result


@contextlib.contextmanager
def awaiting(manager: AbstractAsyncContextManager[T]) -> Iterator[T]:
    """An async context manager (a transaction, a pooled connection) entered and left with :func:`await_`."""
    entered = await_(manager.__aenter__())
    try:
        yield entered
    except BaseException as exc:
        if not await_(manager.__aexit__(type(exc), exc, exc.__traceback__)):
            raise
    else:
        await_(manager.__aexit__(None, None, None))


def await_through_cancel(awaitable: Awaitable[T]) -> T:
    """:func:`await_` that a cancellation of the calling task does not interrupt: the awaitable runs to its end
    (its own task), then the cancellation is delivered at the caller's next await. For a step others depend on (a
    batch sent for several callers)."""
    future = asyncio.ensure_future(awaitable)
    cancelled = False
    while not future.done():
        try:
            await_(asyncio.shield(future))
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        task = asyncio.current_task()
        if task is not None:
            task.cancel()
    return future.result()


class TaskSignal:
    """A :class:`~octoqueue.stores.grouping.Signal` between calls running in :func:`run_sync` on one loop: the
    waiter awaits a future (the loop runs on), the setter resolves it. A waiter's task cancelled meanwhile still
    waits (its call is queued: it must be sent, or lead the next batch); the cancellation follows."""

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wait(self) -> None:
        await_through_cancel(self._future)

    def set(self) -> None:
        self._future.set_result(None)
