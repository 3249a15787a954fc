"""The ``store`` fixture: every contract test runs against every store.

To add a store, add a factory to STORE_FACTORIES: it takes pytest's ``tmp_path`` and returns a fresh, empty store
(and may register cleanup with the ``request``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from octoqueue.stores.base import Store
from octoqueue.stores.memory import MemoryStore
from octoqueue.stores.sqlite import SQLiteStore


def _memory(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    return MemoryStore()


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    return SQLiteStore(tmp_path / "jobs.db")


def _github(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
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
    )


def _s3(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    from octoqueue.stores.s3 import S3Store

    server = request.getfixturevalue("loopback_s3")  # moto's S3 server on loopback (tests/conftest.py)
    return S3Store(server.new_bucket(), "queue", endpoint_url=server.endpoint_url, session=server.session())


STORE_FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], Store]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "github": _github,
    "s3": _s3,
}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = STORE_FACTORIES[request.param](tmp_path, request)
    try:
        yield made
    finally:
        made.close()
