"""The stores the contract kit (octoqueue/testing/contract.py) runs against in this repository.

To add a store, add a factory to STORE_FACTORIES: it takes the test's clock (a ManualClock, which the store must
read the time from: pass it as ``clock=``), pytest's ``tmp_path`` and the ``request``, and returns a fresh, empty
store (it may register cleanup with ``request.addfinalizer``; the kit closes the store). Every kit test then runs
against it (tests/contract/test_contract.py). A store that still misses a rule of the contract lists the tests it
fails in KNOWN_GAPS: they are strict xfails there, so a fix shows as an unexpected pass.

Contract tests that are not (yet) in the kit can live here as plain functions taking the ``store`` fixture below (and
``clock`` to move its time): they run against every store of STORE_FACTORIES too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from octoqueue.stores.base import Store
from octoqueue.stores.memory import MemoryStore
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.testing.clock import ManualClock
from octoqueue.testing.contract import StoreFactory


def _memory(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    return MemoryStore(clock=clock)


def _sqlite(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    return SQLiteStore(tmp_path / "jobs.db", clock=clock)


def _github(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    from octoqueue.stores.github import GitHubStore
    from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

    fake = FakeGitHub(repo="octoqueue/contract", token="t0k3n", enforce_secondary=False)
    request.addfinalizer(fake.close)
    return GitHubStore(
        "octoqueue/contract",
        token="t0k3n",
        base_url=IN_PROCESS_URL,
        transport=fake.transport(),
        writes_per_minute=None,
        writes_per_hour=None,
        clock=clock,
    )


def _sealed(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """An encrypted queue (octoqueue.sealing) over the memory store: sealing must keep the contract."""
    from octoqueue.sealing import new_key, seal_store

    return seal_store(MemoryStore(clock=clock), [new_key()])


def _read_mirror(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """Reads from a SQLite mirror, writes to memory (octoqueue.mirror_reads, the server's --read-mirror)."""
    from octoqueue.mirror_reads import ReadFromMirror

    store = ReadFromMirror(MemoryStore(clock=clock), SQLiteStore(tmp_path / "mirror.db", clock=clock), interval=3600)
    store.wait_ready(30)
    return store


def _redis(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    from tests.redis_store.server import fresh_store

    return fresh_store(request, clock=clock)


def _s3(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    from octoqueue.stores.s3 import S3Store

    server = request.getfixturevalue("loopback_s3")  # moto's S3 server on loopback (tests/conftest.py)
    return S3Store(
        server.new_bucket(), "queue", endpoint_url=server.endpoint_url, session=server.session(), clock=clock
    )


def _postgres(clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    from tests.postgres.server import fresh_schema

    return fresh_schema(request, clock=clock)


STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "github": _github,
    "sealed": _sealed,
    "read_mirror": _read_mirror,
    "redis": _redis,
    "s3": _s3,
    "postgres": _postgres,
}

#: (store name, kit test name) -> why that store fails the test today.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each kind, reading time from ``clock``."""
    made = STORE_FACTORIES[request.param](clock, tmp_path, request)
    try:
        yield made
    finally:
        made.close()
