"""Two ``octoqueue serve`` processes on one PostgreSQL schema: a job submitted to one wakes a long-poll claim
waiting on the other (LISTEN/NOTIFY), not after a poll interval (30 s here). The wake-up times are printed (``-s``);
the issue's target is p99 under 10 ms on this machine (docs/postgres.md has the measured figures). The test holds
every wake-up under 1 s (no poll) and the median under 25 ms, loose enough for a CI machine running other work."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from octoqueue.pauses import SETTING as PAUSES
from octoqueue.pauses import PauseControl
from octoqueue.queue import Queue
from octoqueue.stores.postgres import PostgresStore
from tests.postgres.server import new_schema, store_url
from tests.server.conftest import free_port, headers
from tests.server.test_longpoll_fairness import wait_for
from tests.server.test_workers import claim, make_queue
from tests.server.wakeup import Wakeups, measure_wakeups

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 60

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    url = store_url(new_schema(request))
    procs: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    for _ in range(2):
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OCTOQUEUE_STORE": url,
            "OCTOQUEUE_CLAIM_POLL_INTERVAL": "30",  # a claim woken by a poll would take seconds: the test would fail
            "OCTOQUEUE_SETTINGS_CACHE_SECONDS": "0",
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "octoqueue.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
    try:
        for base, proc in zip(bases, procs, strict=True):
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                try:
                    if requests.get(base + "/health", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "a server did not come up"
                time.sleep(0.1)
        yield bases
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def test_a_job_submitted_to_one_server_wakes_a_claim_waiting_on_the_other(servers: list[str]) -> None:
    submit_to, claim_from = servers
    assert requests.post(submit_to + "/api/v1/queues", json={"name": "wake"}, timeout=5).status_code == 201
    wakeups = measure_wakeups(submit_to, claim_from, "wake", ROUNDS)
    print(f"\nwake-up across servers (PostgreSQL), {wakeups.summary()}")
    assert max(wakeups.from_written) < 1_000  # none waited for a poll (30 s here)
    assert Wakeups.percentiles(wakeups.from_written)[0] < 25


def test_a_claim_parked_past_the_pause_interval_wakes_without_reading_the_pause_state(
    request: pytest.FixtureRequest, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While claims are parked the server reads the pause state before it goes stale, so the claim an arrival
    wakes goes straight to the store's claim: no settings read (one more round trip) on the wake-up."""
    url = store_url(new_schema(request))
    queue = Queue(PostgresStore.from_url(url))
    clock = [0.0]
    queue.pauses = PauseControl(queue.store, 4.0, clock=lambda: clock[0])  # the server looks every 0.5 s (ttl / 8)
    reads: list[float] = []
    original = queue.store.get_setting

    def counting(key: str) -> Any:
        if key == PAUSES:
            reads.append(clock[0])
        return original(key)

    monkeypatch.setattr(queue.store, "get_setting", counting)
    server = make_server(queue, **NO_POLL)
    make_queue(server, "wake")
    with ThreadPoolExecutor(1) as pool:
        parked = pool.submit(claim, server, "wake", 1, 15_000)
        signal = server.app.state.runtime.arrivals
        wait_for(lambda: signal.parked == 1, what="the claim to park")
        before = len(reads)
        clock[0] = 3.5  # the state read at 0 goes stale within the next 1 s: the server reads it now
        wait_for(lambda: len(reads) > before, what="the pause state read while the claim is parked")
        clock[0] = 5.0  # the read at 0 would be stale now; the one made while parked is not
        after = len(reads)
        producer = Queue(PostgresStore.from_url(url))  # another process, as far as NOTIFY can tell
        try:
            job = producer.enqueue({"n": 1}, queue="wake")
        finally:
            producer.close()
        jobs = parked.result(timeout=10)
    assert [int(j["job_id"]) for j in jobs] == [job]
    assert len(reads) == after


def test_a_queue_hears_other_processes_on_its_event_loop_without_a_watch_thread(request: pytest.FixtureRequest) -> None:
    """What ``octoqueue serve`` does at start: the LISTEN is read by a task on the server's loop, which calls the
    Queue's arrival listeners on the loop's thread (no hand-off from a watch thread to the loop)."""
    url = store_url(new_schema(request))
    queue, producer = Queue(PostgresStore.from_url(url)), Queue(PostgresStore.from_url(url))
    try:
        loop_thread, heard = asyncio.run(hear_one_arrival(queue, lambda: producer.enqueue({"n": 1}, queue="gpu")))
    finally:
        producer.close()
        queue.close()
    assert [(thread, arrival.labels) for thread, arrival in heard] == [(loop_thread, ("queue:gpu",))]
    assert not [t for t in threading.enumerate() if t.name == "octoqueue-pg-listen"]


async def hear_one_arrival(queue: Queue, enqueue: Any) -> tuple[int, list[tuple[int, Any]]]:
    heard: list[tuple[int, Any]] = []
    got = asyncio.Event()

    def listener(arrival: Any) -> None:
        heard.append((threading.get_ident(), arrival))
        got.set()

    stop = await queue.watch_store_on_loop()
    assert stop is not None and queue.hears_other_processes
    queue.add_arrival_listener(listener, with_job=True)  # the store is watched already: no thread starts
    try:
        await asyncio.to_thread(enqueue)
        await asyncio.wait_for(got.wait(), 10)
    finally:
        await stop()
    return threading.get_ident(), heard


#: Long-poll claims woken by arrivals only.
NO_POLL = {"claim_poll_interval": 60.0}


def test_claims_on_two_servers_take_each_job_once(request: pytest.FixtureRequest, make_server: Any) -> None:
    url = store_url(new_schema(request))
    claims_on_two_servers_take_each_job_once([make_server(Queue(PostgresStore.from_url(url)), **NO_POLL) for _ in "ab"])


def claims_on_two_servers_take_each_job_once(servers: list[Any]) -> None:
    """Two servers on one store: 24 long-poll claims parked on each, 48 jobs submitted in batches to both (each
    server's claims woken by its own arrivals and the other's); every claim gets one job and no job goes twice."""
    make_queue(servers[0], "wake")
    with ThreadPoolExecutor(48) as pool:
        futures = [pool.submit(claim, server, "wake", 1, 15_000) for server in servers for _ in range(24)]
        for server in servers:
            signal = server.app.state.runtime.arrivals
            wait_for(lambda signal=signal: signal.parked == 24, what="24 parked claims")
        for n, server in enumerate(servers):
            submitted = server.post(
                "/api/v1/queues/wake/jobs",
                json={"jobs": [{"payload": {"n": n * 24 + i}} for i in range(24)]},
                headers=headers("producer"),
            )
            assert submitted.status_code == 200, submitted.text
        got = [future.result(timeout=20) for future in futures]
    assert all(len(jobs) == 1 for jobs in got)
    assert sorted(jobs[0]["payload"]["n"] for jobs in got) == list(range(48))
