"""wait() and result(): a waiter learns of a finished job at once in-process, within the store's poll interval
from another process, never by spinning; large results come back whole."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import pytest

from octoqueue import Queue
from octoqueue.errors import StateConflict
from octoqueue.states import JobState
from octoqueue.stores.sqlite import SQLiteStore


def test_wait_returns_the_finished_job_and_times_out_otherwise(tmp_path: Path) -> None:
    queue = Queue(SQLiteStore(tmp_path / "jobs.db"))
    job_id = queue.enqueue({"a": 1})
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"job {job_id} is still pending after 0.1 s"):
        queue.wait(job_id, timeout=0.1)
    assert 0.1 <= time.monotonic() - started < 1.0
    threading.Timer(0.05, queue.complete, args=(job_id,), kwargs={"result": {"ok": True}}).start()
    done = queue.wait(job_id, timeout=5)
    assert (done.state, done.result) == (JobState.COMPLETED, {"ok": True})
    assert queue.result(job_id) == {"ok": True}


def _latencies(waiter: Queue, finisher: Queue, rounds: int) -> list[float]:
    seen: list[float] = []
    for _ in range(rounds):
        job_id = waiter.enqueue(None)
        finished_at: list[float] = []

        def finish(job_id: int = job_id, finished_at: list[float] = finished_at) -> None:
            time.sleep(0.01)
            finisher.complete(job_id)
            finished_at.append(time.monotonic())

        thread = threading.Thread(target=finish)
        thread.start()
        waiter.wait(job_id, timeout=5)
        returned = time.monotonic()
        thread.join()
        seen.append(max(0.0, returned - finished_at[0]))
    return seen


def test_wait_sees_a_job_finished_elsewhere_within_50_ms(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    same = Queue(SQLiteStore(path))
    in_process = _latencies(same, same, 40)
    other = _latencies(Queue(SQLiteStore(path)), Queue(SQLiteStore(path)), 40)
    for name, seen in (("same Queue", in_process), ("another process's Queue", other)):
        seen.sort()
        p50, p99 = statistics.median(seen), seen[int(len(seen) * 0.99) - 1]
        print(f"wait() after completion through {name}: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
        assert p99 < 0.05, (name, seen)
    assert statistics.median(in_process) < 0.005  # woken, not polled


def test_result_of_unfinished_failed_and_large_jobs(tmp_path: Path) -> None:
    queue = Queue(SQLiteStore(tmp_path / "jobs.db"))
    pending = queue.enqueue(None)
    with pytest.raises(StateConflict, match="it has no result, it is pending"):
        queue.result(pending)
    failed = queue.enqueue(None)
    queue.fail(failed, error="disk full")
    with pytest.raises(StateConflict, match="it is failed: disk full"):
        queue.result(failed)
    big = {"rows": ["x" * 100] * 200}  # 20 kB: more than the record keeps, less than a comment holds
    large = queue.enqueue(None)
    queue.complete(large, result=big)
    assert queue.get(large).result["truncated"] is True
    assert queue.result(large) == big
    assert queue.result(large, timeout=None) == big
