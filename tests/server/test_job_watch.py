"""B10: ?wait requests share one poller (a job is read once a round, however many wait for it) and are capped."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from octoqueue.api.jobwatch import JobWatch, TooManyWaiters
from octoqueue.errors import StoreUnavailable
from octoqueue.job import Job
from octoqueue.queue import Queue

from .conftest import LiveServer, headers


def _watch(queue: Queue, reads: Counter[int], max_waiters: int = 10_000) -> JobWatch:
    def read(job_id: int) -> Job:
        reads[job_id] += 1
        return queue.get(job_id)

    return JobWatch(read, interval=3600.0, max_waiters=max_waiters)  # rounds are driven by poll() here


def test_two_thousand_waiters_cost_one_read_a_round_and_wake_together() -> None:
    async def scenario() -> None:
        queue = Queue("memory://")
        queue.enqueue({"a": 1})
        job = queue.claim()
        other = queue.get(queue.enqueue({"b": 2}))
        assert job is not None
        reads: Counter[int] = Counter()
        watch = _watch(queue, reads)
        waiters = [asyncio.create_task(watch.wait(job, 60)) for _ in range(2000)]
        waiters.append(asyncio.create_task(watch.wait(other, 60)))
        await asyncio.sleep(0)  # let them all register
        assert watch.waiting == 2001
        await watch.poll()
        assert reads == Counter({job.id: 1, other.id: 1})
        queue.complete(job, result={"ok": True})
        await watch.poll()
        done = await asyncio.gather(*waiters[:-1])
        assert {(j.status, str(j.result)) for j in done} == {("completed", "{'ok': True}")}
        assert reads[job.id] == 2 and watch.waiting == 1
        waiters[-1].cancel()

    asyncio.run(scenario())


def test_a_wait_that_runs_out_answers_the_job_as_last_seen_and_store_errors_reach_the_waiter() -> None:
    async def scenario() -> None:
        queue = Queue("memory://")
        job = queue.get(queue.enqueue({"a": 1}))
        watch = _watch(queue, Counter())
        assert (await watch.wait(job, 0.01)).status == "pending"
        assert watch.waiting == 0

        def broken(job_id: int) -> Job:
            raise StoreUnavailable("down")

        failing = JobWatch(broken, interval=3600.0, max_waiters=10)
        waiter = asyncio.create_task(failing.wait(job, 60))
        await asyncio.sleep(0)
        await failing.poll()
        with pytest.raises(StoreUnavailable):
            await waiter

    asyncio.run(scenario())


def test_waiters_beyond_the_cap_are_refused() -> None:
    async def scenario() -> None:
        queue = Queue("memory://")
        job = queue.get(queue.enqueue({"a": 1}))
        watch = _watch(queue, Counter(), max_waiters=2)
        held = [asyncio.create_task(watch.wait(job, 60)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(TooManyWaiters):
            await watch.wait(job, 60)
        for task in held:
            task.cancel()

    asyncio.run(scenario())


def test_over_the_cap_a_wait_request_gets_503_with_retry_after(make_server: Any) -> None:
    server: LiveServer = make_server(max_job_waiters=0)
    job_id = server.post("/create-job", json={"data": {"a": 1}}, headers=headers("producer")).json()["job_id"]
    refused = server.get(f"/jobs/{job_id}", params={"wait": 5})
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "5")
    assert server.get(f"/jobs/{job_id}").json()["status"] == "pending"  # a plain read is never refused
