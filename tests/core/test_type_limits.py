"""Per-type concurrency limits in the Worker (issue 13): never more than N jobs of a type at once; others flow."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from octoqueue.errors import ConfigurationError
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.worker import Worker


class Running:
    """Counts the jobs of each type running now and the most ever at once; jobs wait for ``gate``."""

    def __init__(self) -> None:
        self.now: Counter[str | None] = Counter()
        self.most: Counter[str | None] = Counter()
        self.most_in_all = 0
        self.changed = threading.Condition()
        self.gate = threading.Event()

    def handler(self, data: Any, job: Job) -> str:
        with self.changed:
            self.now[job.type] += 1
            self.most[job.type] = max(self.most[job.type], self.now[job.type])
            self.most_in_all = max(self.most_in_all, sum(self.now.values()))
            self.changed.notify_all()
        try:
            assert self.gate.wait(10), "the test never opened the gate"
        finally:
            with self.changed:
                self.now[job.type] -= 1
        return "ok"

    def wait_for(self, wanted: dict[str | None, int]) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: all(self.now[t] == n for t, n in wanted.items()), timeout=10), (
                f"running {dict(self.now)}, wanted {wanted}"
            )


def _enqueue(queue: Queue, **counts: int) -> list[int]:
    return [queue.enqueue({"i": i}, type=kind) for kind, n in counts.items() for i in range(n)]


def test_a_catch_all_worker_runs_at_most_n_of_a_type_and_the_others_flow() -> None:
    queue = Queue("memory://")
    ids = _enqueue(queue, email=6, report=4)  # the emails are older: without the limit they would fill every slot
    running = Running()
    worker = Worker(queue, running.handler, concurrency=4, concurrency_per_type={"email": 2}, poll_interval=0.05)
    thread = worker.start(once=True)
    running.wait_for({"email": 2, "report": 2})  # the two free slots went to reports, past the waiting emails
    assert queue.counts()[JobState.PROCESSING] == 4
    running.gate.set()
    thread.join(20)
    assert not thread.is_alive()
    assert running.most["email"] == 2 and running.most_in_all == 4
    assert sorted(worker.stats.job_ids) == ids and worker.stats.completed == 10


def test_typed_handlers_keep_each_limit_with_batched_claims() -> None:
    queue = Queue("memory://")
    ids = _enqueue(queue, sms=5, email=5, push=3)
    running = Running()
    worker = Worker(queue, concurrency=5, concurrency_per_type={"sms": 1, "email": 3}, poll_interval=0.05)
    for kind in ("sms", "email", "push"):
        worker.register(kind, running.handler)
    thread = worker.start(once=True)
    running.wait_for({"sms": 1, "email": 3, "push": 1})
    running.gate.set()
    thread.join(20)
    assert not thread.is_alive()
    assert running.most["sms"] == 1 and running.most["email"] == 3 and running.most_in_all == 5
    assert sorted(worker.stats.job_ids) == ids


def test_a_type_at_its_limit_takes_the_next_job_as_soon_as_one_finishes() -> None:
    queue = Queue("memory://")
    ids = _enqueue(queue, email=3)
    running = Running()
    worker = Worker(queue, running.handler, concurrency=3, concurrency_per_type={"email": 1}, poll_interval=30)
    thread = worker.start()
    running.wait_for({"email": 1})  # the only email slot is taken: the worker's next claim waits (a 30 s poll)
    assert queue.counts()[JobState.PENDING] == 2
    running.gate.set()  # each end wakes the waiting claim at once, not after the poll
    assert queue.wait(ids[-1], timeout=5).state is JobState.COMPLETED
    assert running.most["email"] == 1
    worker.stop(wait=False)
    queue.wake_claims()
    thread.join(10)
    assert not thread.is_alive()


@pytest.mark.parametrize("limits", [{"email": 0}, {"email": -1}, {"email": 1.5}, {"email": True}])
def test_limits_must_be_whole_numbers_of_at_least_one(limits: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="concurrency_per_type"):
        Worker(Queue("memory://"), lambda data: None, concurrency_per_type=limits)


def test_the_async_worker_keeps_the_limit_too() -> None:
    import asyncio

    from octoqueue.aio import AsyncQueue, AsyncWorker

    async def main() -> tuple[Counter[str | None], list[Any]]:
        async with AsyncQueue("memory://") as queue:
            for n in range(6):
                await queue.enqueue({"n": n}, type="email" if n < 4 else "report")
            now: Counter[str | None] = Counter()
            most: Counter[str | None] = Counter()

            async def handle(data: Any, job: Job) -> None:
                now[job.type] += 1
                most[job.type] = max(most[job.type], now[job.type])
                await asyncio.sleep(0)  # let the worker claim more while this one runs
                await asyncio.sleep(0)
                now[job.type] -= 1

            worker = AsyncWorker(queue, handle, concurrency=4, concurrency_per_type={"email": 1}, poll_interval=0.01)
            await worker.run(once=True)
            return most, [await queue.history(n) for n in range(1, 7)]

    most, histories = asyncio.run(main())
    assert most["email"] == 1 and all(len(h) == 1 and h[0].outcome == "completed" for h in histories)
