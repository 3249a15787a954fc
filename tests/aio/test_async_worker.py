"""AsyncWorker on every store: async handlers run concurrently as tasks, outcomes as the Worker records them, a lost
lease cancels the job's task, a stop past the grace period releases the jobs in hand."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from octoqueue.aio import AsyncQueue, AsyncWorker
from octoqueue.aio.store import AsyncStore
from octoqueue.errors import PermanentError, RetryableError
from octoqueue.job import Job
from octoqueue.registry import WORKERS_SETTING, live_workers
from octoqueue.states import JobState
from octoqueue.testing.clock import ManualClock
from octoqueue.worker import WorkerStats
from tests.aio.conftest import ASYNC_STORE_FACTORIES

pytestmark = pytest.mark.anyio


async def test_jobs_run_concurrently_and_each_outcome_is_recorded(astore: AsyncStore) -> None:
    async with AsyncQueue(astore, max_attempts=3) as queue:
        running = 0
        most = 0
        gate = asyncio.Event()
        worker = AsyncWorker(queue, concurrency=4, poll_interval=0.05)

        @worker.handler("add")
        async def add(data: dict[str, Any], job: Job) -> int:
            nonlocal running, most
            running += 1
            most = max(most, running)
            if running == 4:
                gate.set()
            await asyncio.wait_for(gate.wait(), 5)  # nobody finishes before four run at once
            running -= 1
            return int(data["a"]) + job.attempt

        @worker.handler("bad")
        async def bad(data: Any) -> None:
            raise PermanentError("never")

        @worker.handler("later")
        def later(data: Any) -> None:  # a plain function runs in a thread
            raise RetryableError("not yet", delay=600)

        batches: list[int] = []
        complete_many, complete_and_claim = queue.complete_many, queue.complete_and_claim

        async def counted(jobs: Any, results: Any = None) -> Any:
            batches.append(len(jobs))
            return await complete_many(jobs, results)

        async def counted_both(jobs: Any, results: Any, count: int, **filters: Any) -> Any:
            batches.append(len(jobs))
            return await complete_and_claim(jobs, results, count, **filters)

        queue.complete_many = counted  # type: ignore[method-assign]
        queue.complete_and_claim = counted_both  # type: ignore[method-assign]
        ids = [j.id for j in await queue.enqueue_many([{"a": i} for i in range(8)], type="add")]
        bad_id = await queue.enqueue({}, type="bad")
        later_id = await queue.enqueue({}, type="later")
        stats = await worker.run(once=True)

        assert most == 4
        assert stats.completed == 8 and stats.failed == 1 and stats.retried == 1 and stats.processed == 10
        assert [await queue.result(i) for i in ids] == [i + 1 for i in range(8)]
        if astore.batches_transitions:  # jobs finishing together are completed in one call, as the Worker does
            assert sum(batches) == 8 and len(batches) < 8
        else:
            assert batches == []
        failed = await queue.get(bad_id)
        assert failed.state is JobState.FAILED and "never" in (failed.last_error or "")
        assert (await queue.get(later_id)).state is JobState.PENDING


async def test_a_lost_lease_cancels_the_handler_and_its_result_is_never_recorded(
    astore: AsyncStore, clock: ManualClock
) -> None:
    async with AsyncQueue(astore) as queue:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def forever(data: Any) -> str:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "too late"

        worker = AsyncWorker(queue, forever, lease=0.3, poll_interval=0.05, recover_interval=3600)
        job_id = await queue.enqueue({"n": 1})
        running = asyncio.create_task(worker.run(max_jobs=1))
        await asyncio.wait_for(started.wait(), 10)
        recovered: list[Job] = []
        for _ in range(20):  # a heartbeat in flight may renew the lease past the first move of the clock
            clock.advance(60)  # the lease runs out on the store's clock: another worker takes the job back
            recovered = await queue.recover_expired()
            if recovered:
                break
        assert [j.id for j in recovered] == [job_id]
        await asyncio.wait_for(cancelled.wait(), 10)  # the next heartbeat finds the lease gone
        stats = await asyncio.wait_for(running, 10)
        assert stats.lost == 1 and stats.completed == 0
        job = await queue.get(job_id)
        assert job.state is JobState.PENDING and job.result is None


async def test_a_stop_lets_jobs_in_hand_finish_and_past_the_grace_releases_them(astore: AsyncStore) -> None:
    async with AsyncQueue(astore) as queue:
        started = asyncio.Event()
        go_on = asyncio.Event()

        async def handler(data: dict[str, Any]) -> str:
            started.set()
            await go_on.wait()
            return "done"

        async def stopped_while_running(grace: float) -> tuple[int, WorkerStats]:
            started.clear()
            job_id = await queue.enqueue({})
            worker = AsyncWorker(queue, handler, poll_interval=0.05, shutdown_grace=grace, name="aw")
            running = asyncio.create_task(worker.run())
            await asyncio.wait_for(started.wait(), 10)
            for _ in range(200):  # its record is written when it starts
                if live_workers(await astore.get_setting(WORKERS_SETTING), await astore.now()):
                    break
                await asyncio.sleep(0.01)
            assert [w.name for w in live_workers(await astore.get_setting(WORKERS_SETTING), await astore.now())] == [
                "aw"
            ]
            worker.stop()
            if grace:
                go_on.set()  # the job in hand finishes within the grace
            stats = await asyncio.wait_for(running, 20)
            go_on.clear()
            assert await astore.get_setting(WORKERS_SETTING) is None  # its record went with a clean stop
            return job_id, stats

        finished, stats = await stopped_while_running(grace=10)
        assert stats.completed == 1 and stats.released == 0
        assert (await queue.get(finished)).state is JobState.COMPLETED
        released, stats = await stopped_while_running(grace=0)
        assert stats.completed == 0 and stats.released == 1
        job = await queue.get(released)
        assert job.state is JobState.PENDING and job.attempts_used == 0


async def test_on_an_encrypted_queue_logs_hide_content_and_a_keyless_claim_counts_as_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """B4a and B5 for the AsyncWorker: the rule lives in WorkerBase, so both workers follow it."""
    from octoqueue.sealing import new_key
    from octoqueue.stores.memory import MemoryStore

    caplog.set_level("INFO", logger="octoqueue")
    store = MemoryStore()
    async with AsyncQueue(store, encryption_keys=new_key()) as sealed:
        done = (await sealed.enqueue_job({"secret": "s3cr3t"})).id

        async def echo(data: dict[str, Any]) -> dict[str, Any]:
            return {"echo": data["secret"]}

        assert (await AsyncWorker(sealed, echo).run(once=True)).completed == 1
        unreadable = (await sealed.enqueue_job({"secret": "s3cr3t"})).id
    assert f"job {done} completed" in caplog.text and "s3cr3t" not in caplog.text
    async with AsyncQueue(store, encryption_keys=[]) as keyless:
        stats = await AsyncWorker(keyless, echo).run(once=True)
    assert (stats.failed, stats.job_ids, stats.all_succeeded) == (1, [unreadable], False)


@pytest.mark.parametrize("kind", ["sqlite-threaded", "postgres-native", "redis-native"])
async def test_where_the_store_claims_with_its_transitions_finished_jobs_bring_the_next_ones(
    kind: str, clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with AsyncQueue(ASYNC_STORE_FACTORIES[kind](clock, tmp_path, request)) as queue:
        assert queue.store.batches_transitions and queue.batches_claims
        ids = [j.id for j in await queue.enqueue_many([{"n": i} for i in range(12)])]
        calls = {"claim_batch": 0, "complete_and_claim": 0}
        claim_batch, complete_and_claim = queue.claim_batch, queue.complete_and_claim

        async def counted_claim(count: int, **kw: Any) -> list[Job]:
            calls["claim_batch"] += 1
            return await claim_batch(count, **kw)

        async def counted_both(jobs: Any, results: Any, count: int, **filters: Any) -> Any:
            calls["complete_and_claim"] += 1
            return await complete_and_claim(jobs, results, count, **filters)

        queue.claim_batch = counted_claim  # type: ignore[method-assign]
        queue.complete_and_claim = counted_both  # type: ignore[method-assign]
        seen: list[int] = []

        async def handler(data: dict[str, int]) -> int:
            seen.append(data["n"])
            return data["n"]

        stats = await AsyncWorker(queue, handler, concurrency=2, poll_interval=0.05).run(once=True)
        assert sorted(seen) == list(range(12)) and stats.completed == 12
        assert [await queue.result(i) for i in ids] == list(range(12))
        assert {(await queue.get(i)).attempt for i in ids} == {1}
        # the loop claimed the first two (and found none at the end); each completion brought the next job
        assert calls["claim_batch"] <= 3 and calls["complete_and_claim"] >= 6
