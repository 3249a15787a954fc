"""Waiting claims wake when a job arrives through another process, without polling: the in-process Queue's claim,
and the server's long-poll claim across two ``octoqueue serve`` processes on one Redis."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.stores.base import Arrival
from octoqueue.stores.redis import RedisStore
from tests.postgres.test_servers import NO_POLL, claims_on_two_servers_take_each_job_once, hear_one_arrival
from tests.server.conftest import free_port
from tests.server.test_cli_serve import OCTOQUEUE, _env, _wait_up
from tests.server.wakeup import Wakeups, measure_wakeups

from .server import REDIS_URL, stop_processes

#: Wake-ups measured across the two servers, and the figure issue 11 asks for (reported, see docs/redis.md).
ROUNDS = 100
TARGET_P99_MS = 10.0
#: What the test fails on: far below the 30 s poll interval the servers run with, so only a pushed wake-up passes,
#: with room for a loaded shared machine.
LIMIT_P99_MS = 250.0


def test_a_queue_claim_waiting_wakes_on_a_job_from_another_store(store: RedisStore) -> None:
    producer = Queue(RedisStore.from_url(f"{REDIS_URL}?prefix={store.prefix}"))
    consumer = Queue(store)
    heard: list[Job | Arrival | None] = []
    consumer.add_arrival_listener(heard.append, with_job=True)
    got: list[Job] = []
    took: list[float] = []

    def wait_for_one() -> None:
        started = time.monotonic()
        got.extend(consumer.claim_batch(1, wait=20, poll_interval=30))
        took.append(time.monotonic() - started)

    try:
        waiting = threading.Thread(target=wait_for_one)
        waiting.start()
        time.sleep(0.2)  # the claim found nothing and is parked on the condition (a 30 s poll interval)
        job = producer.enqueue_job({"hello": 1}, additional_labels=["gpu"])
        waiting.join(10)
        assert [j.id for j in got] == [job.id]
        assert took[0] < 5
        assert Arrival(("gpu",), 1, None) in heard
    finally:
        producer.close()


@pytest.fixture
def servers(store: RedisStore) -> Iterator[tuple[str, str]]:
    url = f"{REDIS_URL}?prefix={store.prefix}"
    procs: list[subprocess.Popen[bytes]] = []
    bases = []
    try:
        for _ in range(2):
            port = free_port()
            proc = subprocess.Popen(
                [OCTOQUEUE, "serve", "--host", "127.0.0.1", "--store", url, "--log-level", "warning"],
                env=_env(
                    PORT=str(port),
                    OCTOQUEUE_CLAIM_POLL_INTERVAL="30",
                    OCTOQUEUE_SETTINGS_CACHE_SECONDS="0",
                    RATE_LIMIT_REQUESTS="0",
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            procs.append(proc)
            bases.append(f"http://127.0.0.1:{port}")
            _wait_up(bases[-1], proc)
        yield bases[0], bases[1]
    finally:
        stop_processes(procs)


def test_a_job_submitted_to_one_server_wakes_a_long_poll_claim_on_the_other(servers: tuple[str, str]) -> None:
    submit_to, claim_on = servers
    assert requests.post(f"{submit_to}/api/v1/queues", json={"name": "wake"}, timeout=5).status_code == 201
    wakeups = measure_wakeups(submit_to, claim_on, "wake", ROUNDS)
    print(f"\ncross-server wake-up (Redis, target p99 < {TARGET_P99_MS:.0f} ms), {wakeups.summary()}")
    assert Wakeups.percentiles(wakeups.from_written)[1] < LIMIT_P99_MS


def test_a_sealed_store_passes_the_arrivals_watch_through(store: RedisStore) -> None:
    from cryptography.fernet import Fernet

    from octoqueue.sealing import seal_store

    sealed = seal_store(RedisStore.from_url(f"{REDIS_URL}?prefix={store.prefix}"), [Fernet.generate_key().decode()])
    heard: list[Arrival] = []
    got = threading.Event()
    try:
        assert sealed.watch_arrivals(lambda arrival: (heard.append(arrival), got.set())) is not None
        Queue(store).enqueue_job({"secret": 1})
        assert got.wait(5) and heard == [Arrival((), 1, None)]
        # And on an event loop, as a server listens (the sealed store hands it to the Redis store under it).
        loop_thread, on_loop = asyncio.run(hear_one_arrival(Queue(sealed), lambda: Queue(store).enqueue({"n": 2})))
        assert [thread for thread, _ in on_loop] == [loop_thread]
    finally:
        sealed.close()


def test_a_queue_hears_other_processes_on_its_event_loop_without_a_watch_thread(store: RedisStore) -> None:
    """What ``octoqueue serve`` does at start: a pub/sub task on the server's loop calls the Queue's arrival
    listeners on the loop's thread (no hand-off from the watch thread to the loop)."""
    queue = Queue(store)
    producer = Queue(RedisStore.from_url(f"{REDIS_URL}?prefix={store.prefix}"))
    try:
        loop_thread, heard = asyncio.run(hear_one_arrival(queue, lambda: producer.enqueue({"n": 1}, queue="gpu")))
    finally:
        producer.close()
    assert [(thread, arrival.labels) for thread, arrival in heard] == [(loop_thread, ("queue:gpu",))]
    assert not [t for t in threading.enumerate() if t.name == "octoqueue-redis-arrivals"]


def test_claims_on_two_servers_take_each_job_once(store: RedisStore, make_server: Any) -> None:
    url = f"{REDIS_URL}?prefix={store.prefix}"
    claims_on_two_servers_take_each_job_once([make_server(Queue(RedisStore.from_url(url)), **NO_POLL) for _ in "ab"])
