from __future__ import annotations

import pytest

from octoqueue.stores.redis import RedisStore
from tests.redis_store.server import fresh_store
from tests.server.conftest import make_server  # noqa: F401 (the fixture: servers on a Redis queue)


@pytest.fixture
def store(request: pytest.FixtureRequest) -> RedisStore:
    made = fresh_store(request)
    request.addfinalizer(made.close)
    return made
