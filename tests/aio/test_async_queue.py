"""AsyncQueue on every store: the Queue's verbs awaited, with the Queue's rules (fencing, retries, results)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from octoqueue.aio import AsyncQueue
from octoqueue.aio.store import AsyncStore
from octoqueue.errors import JobNotFound, LeaseLost, StateConflict
from octoqueue.retry import RetryPolicy
from octoqueue.sealing import new_key
from octoqueue.states import JobState
from octoqueue.testing.clock import ManualClock

from .conftest import ASYNC_STORE_FACTORIES

pytestmark = pytest.mark.anyio


async def test_a_job_goes_from_enqueue_to_its_result(astore: AsyncStore) -> None:
    async with AsyncQueue(astore) as queue:
        job_id = await queue.enqueue({"n": 1}, "first", ["batch"])
        assert (await queue.get(job_id)).state is JobState.PENDING
        job = await queue.claim(worker="w1", lease=60)
        assert job is not None and job.id == job_id and job.data == {"n": 1} and job.attempt == 1
        assert await queue.get_job_status(job_id) == "processing"
        done = await queue.complete(job, comment="thanks", result={"sum": 3})
        assert done.state is JobState.COMPLETED
        assert await queue.result(job_id) == {"sum": 3}
        counts = await queue.counts()
        assert counts[JobState.COMPLETED] == 1 and counts[JobState.PENDING] == 0
        assert [j.id for j in (await queue.list_jobs(labels=["batch"])).jobs] == [job_id]
        assert any("thanks" in c.body for c in await queue.comments(job_id))
        assert await queue.get_job_status(10_000) is None
        with pytest.raises(JobNotFound):
            await queue.get(10_000)


async def test_failures_retry_then_fail_and_requeue_revives(astore: AsyncStore, clock: ManualClock) -> None:
    async with AsyncQueue(astore, max_attempts=2, retry=RetryPolicy(initial_interval_ms=10_000, jitter_percent=0)) as q:
        job_id = await q.enqueue({"n": 2})
        first = await q.claim()
        assert first is not None
        retried = await q.fail(first, error="flaky", retry=True)
        assert retried.state is JobState.PENDING and retried.attempts_left == 1
        assert await q.claim() is None  # not before its backoff
        clock.advance(11)
        second = await q.claim()
        assert second is not None and second.attempt == 2
        failed = await q.fail(second, error="broken", retry=True)
        assert failed.state is JobState.FAILED and failed.last_error == "broken"
        with pytest.raises(StateConflict):
            await q.result(job_id)
        assert (await q.requeue(job_id)).state is JobState.PENDING
        assert (await q.cancel(job_id)).state is JobState.CANCELLED


async def test_a_finish_after_the_lease_was_taken_back_is_refused(astore: AsyncStore, clock: ManualClock) -> None:
    async with AsyncQueue(astore, lease=30) as queue:
        await queue.enqueue({"n": 3})
        stale = await queue.claim(worker="slow")
        assert stale is not None
        clock.advance(31)
        assert [job.state for job in await queue.recover_expired()] == [JobState.PENDING]
        fresh = await queue.claim(worker="fast")
        assert fresh is not None and fresh.attempt == stale.attempt + 1
        with pytest.raises(LeaseLost):
            await queue.complete(stale, result="late")
        assert (await queue.complete(fresh, result="on time")).result == "on time"


async def test_batches_and_idempotency_keys(astore: AsyncStore) -> None:
    async with AsyncQueue(astore) as queue:
        jobs = await queue.enqueue_many([{"i": i} for i in range(5)], idempotency_keys=[f"k{i}" for i in range(5)])
        again = await queue.enqueue_job({"i": 0}, idempotency_key="k0")
        assert again.id == jobs[0].id
        claimed = await queue.claim_batch(5)
        assert sorted(j.id for j in claimed) == sorted(j.id for j in jobs)
        outcomes = await queue.complete_many(claimed, [j.data["i"] for j in claimed])
        assert all(o.state is JobState.COMPLETED for o in outcomes if not isinstance(o, Exception))
        assert await queue.count_open() == 0


async def test_a_waiting_claim_and_a_waiting_result_wake_at_once(astore: AsyncStore) -> None:
    """Neither waits out its poll interval: an enqueue wakes the claim, a completion wakes wait()/result()."""
    async with AsyncQueue(astore) as queue:
        claiming = asyncio.create_task(queue.claim_batch(1, wait=30, poll_interval=30))
        await asyncio.sleep(0.05)  # the claim is waiting now
        began = time.monotonic()
        job_id = await queue.enqueue({"n": 4})
        (job,) = await claiming
        assert job.id == job_id
        assert time.monotonic() - began < 5

        waiting = asyncio.create_task(queue.result(job_id, timeout=30))
        await asyncio.sleep(0.05)
        began = time.monotonic()
        await queue.complete(job, result={"ok": True})
        assert await waiting == {"ok": True}
        assert time.monotonic() - began < 5

        with pytest.raises(TimeoutError):
            await queue.wait(await queue.enqueue({"n": 5}), timeout=0.05)


@pytest.mark.parametrize("kind", ["memory-threaded", "postgres-native", "redis-native"])
async def test_an_encrypted_queue_seals_what_reaches_the_store(
    kind: str, clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The Queue's sealing runs inside the AsyncQueue: the store holds ciphertext, the queue reads plain data. (Not
    on the store that seals with a key of its own: a job sealed twice with two keys is refused, as with a Queue.)"""
    astore = ASYNC_STORE_FACTORIES[kind](clock, tmp_path, request)
    async with AsyncQueue(astore, encryption_keys=[new_key()]) as queue:
        job_id = await queue.enqueue({"secret": "tulip"})
        job = await queue.claim()
        assert job is not None and job.data == {"secret": "tulip"}
        await queue.complete(job, result={"answer": "orchid"})
        assert await queue.result(job_id) == {"answer": "orchid"}
        stored = await astore.get(job_id)
        kept = f"{stored.data} {stored.result} {[c.body for c in await astore.comments(job_id)]}"
        assert "tulip" not in kept and "orchid" not in kept
