"""The SQLite store's fast paths (see docs/benchmarks.md) keep the contract: one conditional UPDATE per
transition with the exact exceptions, group commit across threads, the index that replaced jobs_state, and a
worker that drains without sleeping once the last job is done."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from octoqueue.errors import InvalidTransition, JobNotFound, LeaseLost, StateConflict
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.worker import Worker


@pytest.fixture()
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "q.db")
    yield s
    s.close()


def test_fast_transition_returns_the_stored_record(store: SQLiteStore) -> None:
    queue = Queue(store)
    queue.enqueue({"n": 1}, additional_labels=["a"])
    job = queue.claim()
    assert job is not None
    done = queue.complete(job, result={"ok": True})
    assert done == store.get(job.id).model_copy(update={"comments": 0})  # the result comment comes after
    # the holder stays named (the job's history); the lease is gone
    assert (done.state, done.open, done.worker, done.lease_expires_at) == (JobState.COMPLETED, False, job.worker, None)
    assert done.result == {"ok": True} and done.labels == ("a",) and done.attempt == 1
    queue.enqueue({"n": 2})
    second = queue.claim()
    assert second is not None
    assert queue.complete(second) == store.get(second.id)


def test_fast_transition_falls_back_to_the_exact_exception(store: SQLiteStore) -> None:
    queue = Queue(store, max_attempts=2)
    queue.enqueue({"n": 1})
    job = queue.claim(lease=0.01)
    assert job is not None
    time.sleep(0.02)
    assert [j.id for j in queue.recover_expired()] == [job.id]
    again = queue.claim()
    assert again is not None and again.attempt == 2
    with pytest.raises(LeaseLost):
        queue.complete(job)  # the first attempt's result is refused (fencing)
    with pytest.raises(JobNotFound):
        store.transition(999, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1)
    with pytest.raises(StateConflict):
        store.transition(again.id, expected=JobState.PENDING, target=JobState.CANCELLED)
    done = queue.complete(again)
    with pytest.raises(InvalidTransition):
        store.transition(done.id, expected=JobState.COMPLETED, target=JobState.FAILED)
    assert store.get(done.id) == done


def test_leaving_processing_clears_the_holder_unless_set(store: SQLiteStore) -> None:
    queue = Queue(store, max_attempts=1)
    queue.enqueue({"n": 1})
    job = queue.claim()
    assert job is not None and job.worker is not None
    beat = queue.heartbeat(job, lease=60)
    assert beat.worker == job.worker and beat.lease_expires_at is not None
    assert timedelta(seconds=55) < beat.lease_expires_at - store.now() <= timedelta(seconds=60)
    released = queue.release(beat)
    assert (released.state, released.worker, released.lease_expires_at) == (JobState.PENDING, None, None)
    assert released.attempt_base == 1
    retried = queue.fail(queue.claim() or job, error="boom", retry=True, delay=0)  # max_attempts 1: failed
    assert retried.state is JobState.FAILED and retried.last_error == "boom"


def test_threads_completing_at_once_share_commits_and_lose_nothing(store: SQLiteStore) -> None:
    queue = Queue(store)
    for i in range(400):
        queue.enqueue({"n": i})
    done: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while jobs := queue.claim_batch(3):
                for job in jobs:
                    finished = queue.complete(job)
                    assert finished.state is JobState.COMPLETED and finished.id == job.id
                    done.append(job.data["n"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(done) == list(range(400))
    assert store.count([JobState.COMPLETED, JobState.PENDING]) == {JobState.COMPLETED: 400, JobState.PENDING: 0}


def test_count_and_purge_use_the_partial_indexes(store: SQLiteStore) -> None:
    queue = Queue(store)
    for i in range(5):
        queue.enqueue({"n": i})
    first = queue.claim()
    second = queue.claim()
    assert first is not None and second is not None
    queue.complete(first)
    queue.fail(second, error="no")
    counts = store.count()
    assert counts == {
        JobState.PENDING: 3,
        JobState.PROCESSING: 0,
        JobState.COMPLETED: 1,
        JobState.FAILED: 1,
        JobState.CANCELLED: 0,
    }
    future = store.now() + timedelta(seconds=1)
    assert store.purge(states=[JobState.COMPLETED], older_than=future) == 1
    assert store.purge(states=[JobState.PENDING], older_than=future) == 3  # not only finished states
    assert store.count([JobState.FAILED, JobState.PENDING]) == {JobState.FAILED: 1, JobState.PENDING: 0}
    plan = " ".join(
        str(row)
        for row in store._conn().execute(
            "EXPLAIN QUERY PLAN DELETE FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') "
            "AND state IN (?) AND updated_at < ?",
            ("completed", 0.0),
        )
    )
    assert "jobs_finished" in plan


def test_an_old_database_loses_the_jobs_state_index(tmp_path: Path) -> None:
    """Files with jobs_state were written before schema versions were counted: their user_version is 0."""
    path = tmp_path / "old.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX jobs_finished")
        conn.execute("CREATE INDEX jobs_state ON jobs (state, updated_at)")
        conn.execute("PRAGMA user_version = 0")
    store = SQLiteStore(path)
    try:
        names = {row[0] for row in store._conn().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "jobs_finished" in names and "jobs_state" not in names
    finally:
        store.close()


def test_a_once_drain_ends_when_the_last_job_ends(store: SQLiteStore) -> None:
    """Without the lost-wake-up fix the claiming loop could sleep a whole poll interval after the last job."""
    queue = Queue(store)
    for round_ in range(5):
        for i in range(40):
            queue.enqueue({"n": i, "round": round_})
        worker = Worker(queue, lambda data: None, concurrency=4, poll_interval=30)
        started = time.monotonic()
        stats = worker.run(once=True, install_signal_handlers=False)
        assert stats.completed == 40
        assert time.monotonic() - started < 10


def test_a_created_job_is_the_row_written(store: SQLiteStore) -> None:
    """create reads back only the id and makes the rest from what it wrote and the columns' defaults."""
    queue = Queue(store)
    plain = queue.enqueue_job({"n": 1, "text": "é"})
    full = queue.enqueue_job(
        [1, 2], "t", ["Tag"], priority="high", delay=30, max_attempts=4, type="t", idempotency_key="k", timeout=9
    )
    again = queue.enqueue_job([3], idempotency_key="k")
    for job in (plain, full, again):
        assert job == store.get(job.id)
    assert again.id == full.id


def test_transition_many_is_one_transaction(store: SQLiteStore) -> None:
    """The Worker batches completions on SQLite because its transition_many is one commit (one fsync at FULL),
    each move still fenced by its own attempt."""
    queue = Queue(store)
    for i in range(4):
        queue.enqueue({"n": i})
    jobs = queue.claim_batch(4)
    stale = jobs[1].model_copy(update={"attempt": jobs[1].attempt + 1})
    statements: list[str] = []
    store._writer().set_trace_callback(statements.append)
    outcomes = queue.complete_many([jobs[0], stale, jobs[2], jobs[3]])  # no results: no result comments to write
    store._writer().set_trace_callback(None)
    assert store.batches_transitions
    assert [s for s in statements if s.split()[0] in ("BEGIN", "COMMIT", "SAVEPOINT")] == ["BEGIN IMMEDIATE", "COMMIT"]
    assert isinstance(outcomes[1], LeaseLost)
    assert [o.state for o in outcomes if not isinstance(o, Exception)] == [JobState.COMPLETED] * 3
    assert store.get(jobs[1].id).state is JobState.PROCESSING
