"""Real worker processes on one Redis: every job completed exactly once by 8 processes, nothing lost when a worker
is SIGKILLed mid-job, and nothing acknowledged lost when a private AOF Redis is SIGKILLed and restarted mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from octoqueue.errors import StoreUnavailable
from octoqueue.job import NewJob
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.redis import RedisStore
from tests.server.conftest import free_port

from .server import REDIS_URL, drop_prefix, fresh_prefix, private_redis, stop_processes

ROOT = Path(__file__).resolve().parents[2]
#: Issue 11 asks for 8 processes x 5,000 jobs: OCTOQUEUE_REDIS_JOBS_PER_WORKER=5000 runs that (about a minute here);
#: the default run does 8 x 1,000 to keep the suite short.
JOBS_PER_WORKER = int(os.environ.get("OCTOQUEUE_REDIS_JOBS_PER_WORKER", "1000"))
PROCESSES = 8


def _workers(url: str, ran_key: str, count: int, *options: str) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "tests.redis_store.drain_worker", url, ran_key, *options]
    return [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(count)
    ]


def _wait_until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _enqueue(store: RedisStore, total: int, batch: int = 500) -> None:
    for start in range(0, total, batch):
        store.create_many(
            [NewJob(data={"n": n}, title=f"job {n}", max_attempts=3) for n in range(start, min(total, start + batch))]
        )


@pytest.fixture
def ran_key(store: RedisStore) -> str:
    return "{" + store.prefix + "}:ran"


def test_eight_worker_processes_complete_every_job_exactly_once(store: RedisStore, ran_key: str) -> None:
    total = PROCESSES * JOBS_PER_WORKER
    _enqueue(store, total)
    url = f"{REDIS_URL}?prefix={store.prefix}"
    started = time.monotonic()
    procs = _workers(url, ran_key, PROCESSES, "--once")
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        stop_processes(procs)
    took = time.monotonic() - started
    runs = Counter(int(n) for n in redis.Redis.from_url(REDIS_URL).lrange(ran_key, 0, -1))
    assert sorted(runs) == list(range(total)) and set(runs.values()) == {1}
    assert store.count() == {
        JobState.PENDING: 0,
        JobState.PROCESSING: 0,
        JobState.COMPLETED: total,
        JobState.FAILED: 0,
        JobState.CANCELLED: 0,
    }
    assert {job.attempt for job in store.iter_jobs(limit=1000)} == {1}
    print(f"\n{PROCESSES} worker processes drained {total} jobs in {took:.1f} s ({total / took:,.0f} jobs/s)")


def test_a_sigkilled_worker_loses_nothing(store: RedisStore, ran_key: str) -> None:
    total = 300
    _enqueue(store, total)
    url = f"{REDIS_URL}?prefix={store.prefix}"
    procs = _workers(url, ran_key, 3, "--sleep", "0.05", "--lease", "1", "--concurrency", "2")
    try:
        tally = redis.Redis.from_url(REDIS_URL)
        _wait_until(lambda: tally.llen(ran_key) >= total // 4, 120, "a quarter of the jobs to run")
        victim = procs[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        _wait_until(lambda: store.count([JobState.COMPLETED])[JobState.COMPLETED] == total, 180, "every job done")
    finally:
        stop_processes(procs)
    assert store.count() == {
        JobState.PENDING: 0,
        JobState.PROCESSING: 0,
        JobState.COMPLETED: total,
        JobState.FAILED: 0,
        JobState.CANCELLED: 0,
    }
    runs = Counter(int(n) for n in tally.lrange(ran_key, 0, -1))
    assert sorted(runs) == list(range(total))
    # The jobs the killed worker held (its handler sleeps, so it held some) were taken back when their lease expired
    # and run again; no other job ran twice.
    retaken = [job for job in store.iter_jobs() if job.attempt > 1]
    assert retaken, "no job was taken back from the killed worker"
    assert all(f":{victim.pid}:" in (job.last_error or "") and "expired" in (job.last_error or "") for job in retaken)
    assert {n for n, times in runs.items() if times > 1} <= {job.data["n"] for job in retaken}


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A private ``redis-server --appendonly yes --appendfsync always`` on a free port; yields its URL and a function
    that SIGKILLs it and starts it again on the same files."""
    with private_redis(tmp_path / "redis", free_port(), "--appendonly", "yes", "--appendfsync", "always") as server:
        yield server.url, server.restart


def test_a_restarted_aof_redis_loses_no_acknowledged_job(aof_redis: tuple[str, Callable[[], None]]) -> None:
    base, restart = aof_redis
    prefix = fresh_prefix()
    url = f"{base}?prefix={prefix}"
    ran_key = "{" + prefix + "}:ran"
    total = 2000
    producer = Queue(RedisStore.from_url(url), max_attempts=5)
    acknowledged: list[int] = []
    refused = Counter[str]()

    def produce() -> None:
        for n in range(total):
            while True:  # the same idempotency key on every retry: a retry never makes a second job
                try:
                    acknowledged.append(producer.enqueue({"n": n}, idempotency_key=f"job-{n}"))
                    break
                except StoreUnavailable as exc:
                    refused[type(exc.__cause__).__name__] += 1
                    time.sleep(0.05)

    procs = _workers(url, ran_key, 3, "--lease", "2", "--concurrency", "2")
    maker = threading.Thread(target=produce)
    maker.start()
    try:
        tally = redis.Redis.from_url(base)
        _wait_until(lambda: len(acknowledged) >= total // 3 and tally.llen(ran_key) >= total // 5, 120, "a third")
        before = len(acknowledged)
        restart()
        maker.join(300)
        assert not maker.is_alive()
        store = producer.store
        _wait_until(lambda: store.count([JobState.COMPLETED])[JobState.COMPLETED] == total, 300, "every job done")
    finally:
        stop_processes(procs)
        producer.close()
    assert before < total, "the restart came after the last enqueue"
    assert sorted(acknowledged) == sorted({job.id for job in store.iter_jobs()}) and len(acknowledged) == total
    assert sorted(job.data["n"] for job in store.iter_jobs()) == list(range(total))
    runs = Counter(int(n) for n in redis.Redis.from_url(base).lrange(ran_key, 0, -1))
    assert set(runs) == set(range(total))
    print(
        f"\nrestart after {before} acknowledged enqueues; enqueue retries {dict(refused)}; "
        f"{sum(runs.values()) - total} handler runs repeated (completions lost in the restart's window)"
    )
    drop_prefix(prefix, base)
