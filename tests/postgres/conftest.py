"""Fixtures for the PostgreSQL store's own tests: a store on a fresh schema of the real test server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from octoqueue.stores.postgres import PostgresStore
from tests.postgres.server import fresh_schema
from tests.server.conftest import make_server  # noqa: F401 (the fixture: servers on a PostgreSQL queue)


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> Iterator[PostgresStore]:
    store = fresh_schema(request)
    try:
        yield store
    finally:
        store.close()
