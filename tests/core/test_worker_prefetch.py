"""The Worker's prefetch on the embedded store: a thread takes several jobs at once, runs them in turn and completes
them together with taking its next ones (one transaction), each job keeping its own lease and fencing attempt.
Held jobs that have not started are renewed with the others, given back on stop and on pause, and count against
per-type limits; a worker SIGKILLed while holding them loses none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from octoqueue.errors import ConfigurationError
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.memory import MemoryStore
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.testing.clock import ManualClock
from octoqueue.worker import DEFAULT_PREFETCH, Worker, default_prefetch, shares

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    return Queue(SQLiteStore(tmp_path / "w.db"))


def _count_calls(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The sizes of the store's claims and transition_and_claim calls (moves, limit)."""
    store = queue.store
    calls: dict[str, list[int]] = {"claim": [], "moves": [], "limit": []}
    claim, both = store.claim, store.transition_and_claim

    def counted_claim(**kw: Any) -> list[Job]:
        calls["claim"].append(kw["limit"])
        return claim(**kw)

    def counted_both(moves: Any, **kw: Any) -> Any:
        calls["moves"].append(len(moves))
        calls["limit"].append(kw["limit"])
        return both(moves, **kw)

    monkeypatch.setattr(store, "claim", counted_claim)
    monkeypatch.setattr(store, "transition_and_claim", counted_both)
    return calls


def test_the_default_prefetch_follows_the_store(tmp_path: Path) -> None:
    assert default_prefetch(SQLiteStore(tmp_path / "d.db")) == DEFAULT_PREFETCH > 1
    assert default_prefetch(MemoryStore()) == 1  # its claims are not made with its transitions
    assert Worker(Queue(MemoryStore()), print, prefetch=5).prefetch == 5
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigurationError, match="prefetch"):
            Worker(Queue(MemoryStore()), print, prefetch=bad)  # type: ignore[arg-type]


def test_shares_split_a_claim_evenly_in_order() -> None:
    jobs = [Job(id=i, title=str(i), state=JobState.PROCESSING) for i in range(1, 6)]
    assert [[j.id for j in share] for share in shares(jobs, 2)] == [[1, 2, 3], [4, 5]]
    assert [[j.id for j in share] for share in shares(jobs, 8)] == [[1], [2], [3], [4], [5]]
    assert shares([], 4) == []


def test_a_thread_completes_its_batch_and_takes_the_next_in_one_call(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(10)]
    calls = _count_calls(queue, monkeypatch)
    seen: list[int] = []
    worker = Worker(queue, lambda data: seen.append(data["n"]) or data["n"], concurrency=1, prefetch=4)
    worker.run(once=True, install_signal_handlers=False)
    assert seen == list(range(10)) and worker.stats.completed == 10
    assert [queue.get(i).result for i in ids] == list(range(10))
    assert {queue.get(i).attempt for i in ids} == {1}
    # the loop claimed the first 4 (and found none at the end); each batch's completion brought the next batch
    assert calls == {"claim": [4, 4], "moves": [4, 4, 2], "limit": [4, 4, 4]}


def test_exactly_once_with_threads_and_two_workers(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    Queue(SQLiteStore(path)).enqueue_many([{"n": i} for i in range(600)])
    ran: Counter[int] = Counter()
    lock = threading.Lock()

    def handler(data: Any) -> None:
        with lock:
            ran[data["n"]] += 1

    workers = [Worker(Queue(SQLiteStore(path)), handler, concurrency=3, prefetch=7) for _ in range(2)]
    threads = [threading.Thread(target=w.run, kwargs={"once": True, "install_signal_handlers": False}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(ran) == list(range(600)) and set(ran.values()) == {1}
    store = SQLiteStore(path)
    assert store.count()[JobState.COMPLETED] == 600
    assert {job.attempt for job in store.iter_jobs(limit=1000)} == {1}
    assert sum(w.stats.completed for w in workers) == 600


def test_held_jobs_keep_their_leases(tmp_path: Path) -> None:
    clock = ManualClock()
    queue = Queue(SQLiteStore(tmp_path / "l.db", clock=clock))
    ids = [queue.enqueue({"n": i}) for i in range(4)]
    started, go_on = threading.Event(), threading.Event()

    def handler(data: Any) -> None:
        if data["n"] == 0:
            started.set()
            assert go_on.wait(10)

    worker = Worker(queue, handler, concurrency=1, prefetch=4, lease=60, poll_interval=0.01)
    running = worker.start(once=True)
    try:
        assert started.wait(10)
        before = {i: queue.get(i).lease_expires_at for i in ids}
        clock.advance(timedelta(seconds=50))
        worker._heartbeat_once()  # what the heartbeat thread does every lease / 3
        after = {i: queue.get(i).lease_expires_at for i in ids}
        assert all(after[i] == before[i] + timedelta(seconds=50) for i in ids)  # the three not started too
        clock.advance(timedelta(seconds=30))  # past the first leases, within the renewed ones
        assert queue.recover_expired() == []
    finally:
        go_on.set()
        running.join(10)
    assert worker.stats.completed == 4
    assert {queue.get(i).attempt for i in ids} == {1}


def test_stop_gives_back_the_jobs_not_started(queue: Queue) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(5)]
    started, go_on = threading.Event(), threading.Event()
    ran: list[int] = []

    def handler(data: Any) -> None:
        ran.append(data["n"])
        started.set()
        assert go_on.wait(10)

    worker = Worker(queue, handler, concurrency=1, prefetch=4, poll_interval=0.01)
    worker.start()
    assert started.wait(10)
    worker.stop(wait=False)
    go_on.set()
    worker.stop()
    assert ran == [0]
    assert (worker.stats.completed, worker.stats.released) == (1, 3)
    assert queue.get(ids[0]).state is JobState.COMPLETED
    for job_id in ids[1:4]:  # held, not started: pending again, the attempt not counted
        job = queue.get(job_id)
        assert (job.state, job.attempts_used, job.worker) == (JobState.PENDING, 0, None)
    assert queue.get(ids[4]).attempt == 0  # never taken


def test_a_pause_gives_back_the_jobs_not_started(queue: Queue) -> None:
    ids = [queue.enqueue({"n": i}, additional_labels=["mail"] if i == 2 else ()) for i in range(4)]
    ran: list[int] = []

    def handler(data: Any) -> None:
        ran.append(data["n"])
        if data["n"] == 0:
            queue.pause("mail")  # the held job 2 carries it

    worker = Worker(queue, handler, concurrency=1, prefetch=4, poll_interval=0.01)
    worker.run(once=True, install_signal_handlers=False)
    assert ran == [0, 1, 3]
    assert (worker.stats.completed, worker.stats.released) == (3, 1)
    paused = queue.get(ids[2])
    assert (paused.state, paused.attempts_used) == (JobState.PENDING, 0)
    queue.resume("mail")
    assert Worker(queue, handler, prefetch=4).run(once=True, install_signal_handlers=False).completed == 1


def test_a_stale_completion_in_a_batch_is_refused(queue: Queue) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(4)]
    stale = ids[1]

    def handler(data: Any, job: Job) -> int:
        if job.id == stale:  # another worker takes the job over: this one's attempt no longer holds it
            queue.release(job)
            retaken = queue.claim(ids=[stale])
            assert retaken is not None and retaken.attempt == 2
        return int(data["n"])

    worker = Worker(queue, handler, concurrency=1, prefetch=4)
    worker.run(once=True, install_signal_handlers=False)
    assert (worker.stats.completed, worker.stats.lost) == (3, 1)
    taken_over = queue.get(stale)
    assert (taken_over.state, taken_over.attempt, taken_over.result) == (JobState.PROCESSING, 2, None)
    assert [queue.get(i).state for i in ids if i != stale] == [JobState.COMPLETED] * 3


def test_held_jobs_count_against_a_type_limit(queue: Queue) -> None:
    for i in range(6):
        queue.enqueue({"n": i}, type="email")
        queue.enqueue({"n": i}, type="other")
    worker: Worker
    most_in_hand: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(data: Any, job: Job) -> None:
        with worker._lock:
            in_hand = Counter(j.type for j in worker._inflight.values())
        with lock:
            for name, n in in_hand.items():
                most_in_hand[name] = max(most_in_hand[name], n)

    worker = Worker(queue, handler, concurrency=2, prefetch=8, concurrency_per_type={"email": 1}, poll_interval=0.01)
    worker.run(once=True, install_signal_handlers=False)
    assert worker.stats.completed == 12
    assert most_in_hand["email"] == 1 and most_in_hand["other"] > 1


# The doomed worker: one thread holding four jobs; the first one's handler says so and blocks.
CHILD = """
import sys, threading
from octoqueue.queue import Queue
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.worker import Worker

def handler(data):
    sys.stdout.write("started\\n")
    sys.stdout.flush()
    threading.Event().wait()

queue = Queue(SQLiteStore(sys.argv[1]))
Worker(queue, handler, concurrency=1, prefetch=4, lease=30).run(install_signal_handlers=False)
"""


def test_a_sigkilled_worker_holding_prefetched_jobs_loses_none(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    queue = Queue(SQLiteStore(path))
    ids = [queue.enqueue({"n": i}) for i in range(6)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "started\n"
        held = [job.id for job in queue.list_jobs(states=[JobState.PROCESSING]).jobs]
        assert sorted(held) == ids[:4]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    clock = ManualClock()
    later = Queue(SQLiteStore(path, clock=clock))
    assert later.recover_expired() == []  # their leases still run
    clock.advance(timedelta(seconds=31))
    assert sorted(job.id for job in later.recover_expired()) == ids[:4]
    ran: list[int] = []
    stats = Worker(later, lambda data: ran.append(data["n"]), prefetch=4).run(once=True, install_signal_handlers=False)
    assert sorted(ran) == list(range(6)) and stats.completed == 6
    assert all(later.get(i).state is JobState.COMPLETED for i in ids)


def test_a_handler_raising_system_exit_frees_its_thread(queue: Queue) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(6)]

    def handler(data: Any) -> int:
        if data["n"] == 0:
            raise SystemExit(3)  # not an Exception: it goes up through the worker's code
        return int(data["n"])

    worker = Worker(queue, handler, concurrency=1, prefetch=4, poll_interval=0.01)
    running = worker.start(once=True)
    running.join(10)
    assert not running.is_alive(), "the worker waited for a slot the handler's thread never gave back"
    assert [queue.get(i).state for i in ids[4:]] == [JobState.COMPLETED] * 2
    # the batch the error went through is left to its leases (they expire and the jobs run again)
    assert [queue.get(i).state for i in ids[:4]] == [JobState.PROCESSING] * 4
