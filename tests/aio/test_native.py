"""The native async stores: chosen by URL, no thread anywhere on the way, and a job from another process wakes a
waiting claim at once (PostgreSQL's NOTIFY, Redis's pub/sub, each heard by a task)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from octoqueue.aio import AsyncQueue, BridgedStore, ThreadedStore, open_async_store
from octoqueue.job import Job
from octoqueue.states import JobState

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["postgres", "redis"])
def native_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty queue on the real server (several store objects may open it)."""
    if request.param == "postgres":
        from tests.postgres.server import new_schema, store_url

        return store_url(new_schema(request))
    from tests.redis_store.server import REDIS_URL, drop_prefix, fresh_prefix

    prefix = fresh_prefix()
    request.addfinalizer(lambda: drop_prefix(prefix))
    return f"{REDIS_URL}?prefix={prefix}"


async def test_a_url_opens_the_native_store_where_there_is_one(native_url: str) -> None:
    native = open_async_store(native_url)
    threaded = open_async_store("memory://")
    try:
        assert isinstance(native, BridgedStore) and isinstance(threaded, ThreadedStore)
    finally:
        await native.close()
        await threaded.close()


async def test_another_process_s_job_wakes_a_waiting_claim_and_no_thread_is_started(
    native_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncQueue(native_url) as here, AsyncQueue(native_url) as there:
        await here.get_job_status(1)  # connected before threads are refused (the pool's first connection)
        await there.get_job_status(1)

        def refuse(thread: threading.Thread, *args: Any) -> None:
            raise AssertionError(f"a native async store started a thread: {thread.name}")

        monkeypatch.setattr(threading.Thread, "start", refuse)
        claiming = asyncio.create_task(here.claim_batch(1, wait=30, poll_interval=30))
        await asyncio.sleep(0.2)  # the claim found nothing and listens
        began = time.monotonic()
        job_id = await there.enqueue({"from": "elsewhere"})
        (job,) = await claiming
        assert job.id == job_id and time.monotonic() - began < 5  # woken, not polled: the poll is 30 s

        waiting = asyncio.create_task(there.wait(job_id, timeout=10))
        await here.complete(job, result={"ok": True})
        assert (await waiting).state is JobState.COMPLETED
        assert await there.result(job_id) == {"ok": True}


async def test_transitions_of_many_tasks_share_transactions_and_survive_cancelled_tasks(
    request: pytest.FixtureRequest,
) -> None:
    """On PostgreSQL, tasks' transitions are grouped as threads' are; cancelling the task that leads a group, or one
    queued in it, neither stalls the group nor loses a transition (the cancellation follows the store call)."""
    from tests.postgres.server import new_schema, store_url

    async with AsyncQueue(store_url(new_schema(request))) as queue:
        await queue.enqueue_many([{"i": i} for i in range(20)])
        jobs = await queue.claim_batch(20)
        assert len(jobs) == 20
        tasks = [asyncio.create_task(queue.complete(job)) for job in jobs]
        await asyncio.sleep(0)  # each task is in its first store call: one leads, the others queue behind it
        tasks[0].cancel()
        tasks[7].cancel()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        assert all(isinstance(outcome, Job) for outcome in outcomes[1:7] + outcomes[8:])
        assert (await queue.counts())[JobState.COMPLETED] == 20
        job_id = await queue.enqueue({"after": True})  # and the store goes on
        (job,) = await queue.claim_batch(1)
        assert (await asyncio.wait_for(queue.complete(job), 5)).id == job_id
