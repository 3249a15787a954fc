"""An idle claim on a store that reports other processes' jobs does not poll: it asks the store again only when woken,
when a job it heard of comes due, or after the safety recheck; and a Worker waiting so stops at once when told."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from octoqueue import queue as queue_module
from octoqueue.aio import AsyncQueue, AsyncWorker
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.stores.base import Arrival
from octoqueue.stores.memory import MemoryStore
from octoqueue.worker import Worker


class CountingStore(MemoryStore):
    """A memory store that counts its claims and, with ``hears=True``, says it reports other processes' arrivals
    (as PostgreSQL and Redis do); ``announce`` plays one."""

    def __init__(self, *, hears: bool) -> None:
        super().__init__()
        self.hears = hears
        self.claims = 0
        self._callbacks: list[Callable[[Arrival], None]] = []

    def claim(self, **options: Any) -> list[Job]:
        self.claims += 1
        return super().claim(**options)

    def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        if not self.hears:
            return None
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def announce(self, arrival: Arrival) -> None:
        for callback in list(self._callbacks):
            callback(arrival)


def test_an_idle_claim_asks_a_store_that_reports_arrivals_once_and_a_polled_one_each_interval() -> None:
    hearing, polled = CountingStore(hears=True), CountingStore(hears=False)
    assert Queue(hearing).claim_batch(1, wait=0.5, poll_interval=0.05) == []
    assert Queue(polled).claim_batch(1, wait=0.5, poll_interval=0.05) == []
    assert hearing.claims == 2  # when it began and when its wait ended
    assert polled.claims >= 6


def test_the_safety_recheck_still_asks_now_and_then(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_module, "IDLE_RECHECK", 0.1)
    store = CountingStore(hears=True)
    assert Queue(store).claim_batch(1, wait=0.55, poll_interval=0.01) == []
    assert 3 <= store.claims <= 7


def test_a_job_heard_of_wakes_the_claim_at_its_run_at_not_at_the_recheck() -> None:
    store = CountingStore(hears=True)
    queue = Queue(store)
    started = time.monotonic()
    job = queue.enqueue_job({"later": True}, delay=0.3)
    got = queue.claim_batch(1, wait=4, poll_interval=30)
    assert [j.id for j in got] == [job.id]
    assert 0.25 <= time.monotonic() - started < 2
    assert store.claims <= 3


def test_an_arrival_from_elsewhere_due_later_wakes_the_claim_at_its_run_at() -> None:
    store = CountingStore(hears=True)
    queue, elsewhere = Queue(store), Queue(store)
    got: list[Job] = []
    waiting = threading.Thread(target=lambda: got.extend(queue.claim_batch(1, wait=4, poll_interval=30)))
    waiting.start()
    while store.claims == 0:  # the claim asked once and waits
        time.sleep(0.005)
    started = time.monotonic()
    job = elsewhere.enqueue_job({"later": True}, delay=0.3)
    store.announce(Arrival(labels=(), run_at=job.run_at))  # as another process's store reports it: not runnable yet
    waiting.join(5)
    assert [j.id for j in got] == [job.id]
    assert 0.2 <= time.monotonic() - started < 2


def test_a_waiting_worker_stops_at_once() -> None:
    store = CountingStore(hears=True)
    worker = Worker(Queue(store), lambda job: None, poll_interval=0.05, recover_interval=60)
    runner = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False})
    runner.start()
    while store.claims == 0:
        time.sleep(0.005)
    time.sleep(0.1)  # the claim is parked: with recovery a minute off, the worker would wait up to then
    started = time.monotonic()
    worker.stop()
    runner.join(5)
    assert not runner.is_alive()
    assert time.monotonic() - started < 1
    assert store.claims <= 4


def test_an_idle_worker_on_a_store_that_reports_arrivals_asks_once_per_recovery_interval() -> None:
    store = CountingStore(hears=True)
    queue = Queue(store)
    worker = Worker(queue, lambda job: None, poll_interval=0.02, recover_interval=0.3)
    runner = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False})
    runner.start()
    try:
        time.sleep(1.0)
        asked = store.claims
        queue.enqueue({"now": 1})
        deadline = time.monotonic() + 5
        while queue.get_job_status(1) != "completed" and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
        runner.join(5)
    assert 2 <= asked <= 14  # twice per recovery interval; a poll every 0.02 s would have asked about 50 times
    assert queue.get_job_status(1) == "completed"


def test_a_paused_claim_keeps_polling_so_it_sees_a_resume_soon() -> None:
    store = CountingStore(hears=True)
    queue = Queue(store, pause_check_interval=0)
    queue.pause()
    assert queue.claim_batch(1, wait=0.3, poll_interval=0.02) == []
    assert store.claims == 0  # paused: the store's claim is not even asked
    started = time.monotonic()
    job = queue.enqueue_job({"x": 1})
    threading.Timer(0.1, Queue(store).resume).start()  # another process resumes
    got = queue.claim_batch(1, wait=3, poll_interval=0.02)
    assert [j.id for j in got] == [job.id]
    assert time.monotonic() - started < 1


def test_an_idle_async_claim_asks_a_store_that_reports_arrivals_once() -> None:
    hearing, polled = CountingStore(hears=True), CountingStore(hears=False)

    async def claim(store: CountingStore) -> list[Job]:
        async with AsyncQueue(store) as queue:
            return await queue.claim_batch(1, wait=0.5, poll_interval=0.05)

    assert asyncio.run(claim(hearing)) == []
    assert asyncio.run(claim(polled)) == []
    assert hearing.claims == 2
    assert polled.claims >= 6


def test_a_waiting_async_worker_stops_at_once() -> None:
    store = CountingStore(hears=True)

    async def run() -> float:
        async with AsyncQueue(store) as queue:

            async def handler(data: Any) -> None:
                return None

            worker = AsyncWorker(queue, handler, poll_interval=0.05, recover_interval=60)
            runner = asyncio.create_task(worker.run())
            while store.claims == 0:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.1)  # parked in its claim: with recovery a minute off, it would wait up to then
            started = time.monotonic()
            worker.stop()
            await asyncio.wait_for(runner, 5)
            return time.monotonic() - started

    assert asyncio.run(run()) < 1
    assert store.claims <= 4
