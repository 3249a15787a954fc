"""The store on a real Redis Cluster (three private ``redis-server --cluster-enabled yes`` nodes): every key of a
queue carries one hash tag, so its scripts run on one node, and ``redis+cluster://`` opens it."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from octoqueue.job import NewJob
from octoqueue.states import JobState
from octoqueue.stores import open_store
from octoqueue.stores.base import Arrival
from octoqueue.stores.redis import RedisStore


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    assert server is not None and cli is not None, "the cluster test needs redis-server and redis-cli on PATH"
    ports = [_node_port() for _ in range(3)]
    procs = []
    try:
        for port in ports:
            folder = Path(tmp_path_factory.mktemp(f"node{port}"))
            command = [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--dir",
                str(folder),
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in ports:
            _wait(lambda port=port: _answers(port), "a cluster node to start")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait(lambda: all(_cluster_ok(p) for p in ports), "the cluster to be ready")
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


def _node_port() -> int:
    """A free port whose cluster bus port (``port + 10000``) is free too."""
    while True:
        port = random.randint(20_000, 40_000)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port).ping())
    except redis.exceptions.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    return redis.Redis(port=port, decode_responses=True).cluster("INFO").get("cluster_state") == "ok"


def _wait(done: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("prefix", ["a", "b", "c"])  # tags whose slots are on each of the three nodes
def test_a_queue_works_on_a_redis_cluster(cluster: str, prefix: str) -> None:
    store = open_store(f"{cluster}?prefix={prefix}")
    other = RedisStore.from_url(f"{cluster}?prefix={prefix}")
    heard: list[Arrival] = []
    got = threading.Event()
    try:
        assert isinstance(store, RedisStore)
        other.watch_arrivals(lambda arrival: (heard.append(arrival), got.set()))
        _first, second = store.create_many(
            [NewJob(data={"n": 1}, title="one", labels=("x",)), NewJob(data={"n": 2}, title="two", idempotency_key="k")]
        )
        assert store.create(NewJob(data={"n": 3}, title="again", idempotency_key="k")).id == second.id
        assert got.wait(10) and heard[0] == Arrival(("x",), 1, None)
        (claimed,) = store.claim(worker="w", lease=60, labels=["x"])
        done = store.transition(
            claimed.id,
            expected=JobState.PROCESSING,
            target=JobState.COMPLETED,
            attempt=claimed.attempt,
            result={"ok": True},
        )
        assert done.result == {"ok": True}
        store.comment(second.id, "hi")
        assert [c.body for c in store.comments(second.id)] == ["hi"]
        store.set_setting("k", [1])
        assert store.get_setting("k") == [1]
        assert [j.id for j in store.list_jobs(states=[JobState.PENDING]).jobs] == [second.id]
        assert store.count()[JobState.COMPLETED] == 1
        assert store.purge(states=[JobState.COMPLETED], older_than=store.now() + timedelta(seconds=1)) == 1
    finally:
        other.close()
        store.close()
