"""The Redis the tests use: the real one at 127.0.0.1:6379 (``OCTOQUEUE_TEST_REDIS`` to change), a fresh prefix per
test, every key of it deleted afterwards. Unreachable is a failure, not a skip."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


class PrivateRedis:
    """A ``redis-server`` of one test's own on a free port, for what must not touch the shared Redis (a restart, a
    persistence setting, ``SCRIPT FLUSH``, which forgets every client's scripts)."""

    def __init__(self, data: Path, port: int, *options: str) -> None:
        server = shutil.which("redis-server")
        assert server is not None, "this test needs redis-server on PATH"
        data.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{port}/0"
        self._args = [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", ""]
        self._args += [*options, "--daemonize", "no"]
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self._procs.append(subprocess.Popen(self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    pass
                assert self._procs[-1].poll() is None, "the private Redis exited"
                assert time.monotonic() < deadline, "timed out waiting for the private Redis to accept commands"
                time.sleep(0.05)
        finally:
            client.close()

    def restart(self) -> None:
        """SIGKILL the server and start it again on the same files."""
        self._procs[-1].send_signal(signal.SIGKILL)
        self._procs[-1].wait(10)
        self.start()

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@contextmanager
def private_redis(data: Path, port: int, *options: str) -> Iterator[PrivateRedis]:
    server = PrivateRedis(data, port, *options)
    try:
        server.start()
        yield server
    finally:
        server.stop()
