"""The store contract (the kit's store verbs) on the native async stores (PostgreSQL through psycopg's async pool,
Redis through redis.asyncio): each kit call runs the async store's coroutine on an event loop of the test's own.

(The kit's Queue tests pass on them too — ``StoreKit`` here instead of ``StoreContract`` — in ~40 s; the AsyncQueue
tests cover the queue over them.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from octoqueue.aio.store import AsyncStore, AwaitingStore
from octoqueue.stores.base import Store
from octoqueue.testing.clock import ManualClock
from octoqueue.testing.contract import StoreContract, StoreFactory

from .conftest import ASYNC_STORE_FACTORIES

NATIVE = sorted(name for name in ASYNC_STORE_FACTORIES if name.endswith("-native"))


class _OnItsLoop(AwaitingStore):
    """A native async store for the (synchronous) kit: its coroutines run on a loop in a thread of its own."""

    def __init__(self, inner: AsyncStore) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kit-loop", daemon=True)
        self._thread.start()
        super().__init__(inner, self._run)

    def _run(self, work: Awaitable[Any]) -> Any:
        async def run() -> Any:
            return await work

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


class TestNativeAsyncStores(StoreContract):
    @pytest.fixture(params=NATIVE)
    def store_factory(self, request: pytest.FixtureRequest) -> StoreFactory:
        def make(clock: ManualClock, tmp_path: Path, req: pytest.FixtureRequest) -> Store:
            return _OnItsLoop(ASYNC_STORE_FACTORIES[request.param](clock, tmp_path, req))

        return make
