"""The Redis the tests use: the real one at 127.0.0.1:6379 (``OCTOQUEUE_TEST_REDIS`` to change), a fresh prefix per
test, every key of it deleted afterwards. Unreachable is a failure, not a skip."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from typing import Any

import pytest
import redis

from octoqueue.stores.redis import RedisStore

REDIS_URL = os.environ.get("OCTOQUEUE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def fresh_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def drop_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key of the queue ``prefix``."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match="{" + prefix + "}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def fresh_store(request: pytest.FixtureRequest, url: str = REDIS_URL, **options: Any) -> RedisStore:
    """A store on a prefix no other test uses, deleted when the test ends; fails the test when Redis is down."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"the tests need Redis at {url} (set OCTOQUEUE_TEST_REDIS): {exc}")
    prefix = fresh_prefix()
    request.addfinalizer(lambda: drop_prefix(prefix, url))
    return RedisStore.from_url(f"{url}?prefix={prefix}", **options)


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process still running, then wait for it (SIGKILL after a minute)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
