"""The async stores the octoqueue.aio tests run on: every store of the contract kit (tests/contract/conftest.py)
through a ThreadedStore, and the native async stores (PostgreSQL, Redis) on their real servers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from octoqueue.aio.store import AsyncStore, ThreadedStore
from octoqueue.testing.clock import ManualClock
from tests.contract.conftest import STORE_FACTORIES

AsyncStoreFactory = Callable[[ManualClock, Path, pytest.FixtureRequest], AsyncStore]


def _threaded(name: str) -> AsyncStoreFactory:
    def make(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncStore:
        return ThreadedStore(STORE_FACTORIES[name](clock, tmp_path, request))

    return make


def _postgres_native(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncStore:
    from octoqueue.stores.postgres.aio import AsyncPostgresStore
    from tests.postgres.server import new_schema, store_url

    return AsyncPostgresStore.from_url(store_url(new_schema(request)), clock=clock)


def _redis_native(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncStore:
    from octoqueue.stores.redis.aio import AsyncRedisStore
    from tests.redis_store.server import REDIS_URL, drop_prefix, fresh_prefix

    prefix = fresh_prefix()
    request.addfinalizer(lambda: drop_prefix(prefix))
    return AsyncRedisStore.from_url(f"{REDIS_URL}?prefix={prefix}", clock=clock)


ASYNC_STORE_FACTORIES: dict[str, AsyncStoreFactory] = {
    **{f"{name}-threaded": _threaded(name) for name in STORE_FACTORIES},
    "postgres-native": _postgres_native,
    "redis-native": _redis_native,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=sorted(ASYNC_STORE_FACTORIES))
def astore(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> AsyncStore:
    """A fresh, empty async store of each kind reading time from ``clock`` (an AsyncQueue over it closes it)."""
    return ASYNC_STORE_FACTORIES[request.param](clock, tmp_path, request)
