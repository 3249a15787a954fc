"""The Worker on the embedded store: handlers, failures, timeouts, leases, shutdown."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from octoqueue.errors import ConfigurationError, PermanentError, RetryableError
from octoqueue.handlers import CommandHandler, load_handler
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy
from octoqueue.states import JobState
from octoqueue.worker import Worker


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    q = Queue(f"sqlite:///{tmp_path}/w.db", retry=RetryPolicy(initial=0.05, jitter=0), lease=30)
    yield q  # type: ignore[misc]
    q.close()


def run_once(worker: Worker) -> None:
    worker.run(once=True, install_signal_handlers=False)


def test_default_handler_completes_jobs_with_results(queue: Queue) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(5)]
    worker = Worker(queue, lambda data: data["n"] * 10, concurrency=2, poll_interval=0.05)
    run_once(worker)
    assert worker.stats.completed == 5 and worker.stats.failed == 0
    assert [queue.get(i).result for i in ids] == [0, 10, 20, 30, 40]


def test_a_result_too_large_fails_the_job_with_the_reason(queue: Queue) -> None:
    # Issue 8, item 7: the job used to be completed with its result lost, and the worker reported it "lost".
    job_id = queue.enqueue({"n": 1})
    worker = Worker(queue, lambda data: "x" * 70_000, poll_interval=0.05)
    run_once(worker)
    assert (worker.stats.completed, worker.stats.failed, worker.stats.lost) == (0, 1, 0)
    job = queue.get(job_id)
    assert job.state is JobState.FAILED
    assert job.last_error is not None and job.last_error.startswith("the result could not be stored:")


def test_handlers_by_type_and_job_argument(queue: Queue) -> None:
    seen: dict[str, Any] = {}
    worker = Worker(queue, poll_interval=0.05)

    @worker.handler("resize")
    def resize(data: Any, job: Job) -> str:
        seen["job"] = job
        return "resized"

    resized = queue.enqueue({"w": 1}, type="resize")
    other = queue.enqueue({"w": 2}, type="unknown")
    run_once(worker)
    assert seen["job"].id == resized and seen["job"].state is JobState.PROCESSING
    assert queue.get(resized).result == "resized"
    assert queue.get_job_status(other) == "pending"  # nobody here handles it: not claimed


def test_worker_without_handler_refuses_to_start(queue: Queue) -> None:
    with pytest.raises(ConfigurationError):
        Worker(queue).run(once=True, install_signal_handlers=False)


def test_exceptions_retry_with_backoff_then_die(queue: Queue) -> None:
    job_id = queue.enqueue({"n": 1}, max_attempts=3)
    calls: list[float] = []

    def flaky(data: Any) -> None:
        calls.append(time.monotonic())
        raise ValueError("flaky")

    worker = Worker(queue, flaky, poll_interval=0.02)
    deadline = time.monotonic() + 10
    while queue.get_job_status(job_id) != "failed" and time.monotonic() < deadline:
        run_once(worker)
        time.sleep(0.05)
    job = queue.get(job_id)
    assert job.state is JobState.FAILED and job.attempt == 3 and len(calls) == 3
    assert "ValueError: flaky" in (job.last_error or "")
    # exponential backoff: 0.05 s before the second attempt, 0.1 s before the third (never earlier)
    assert calls[1] - calls[0] >= 0.045 and calls[2] - calls[1] >= 0.095


def test_permanent_error_fails_at_once(queue: Queue) -> None:
    job_id = queue.enqueue({}, max_attempts=5)

    def broken(data: Any) -> None:
        raise PermanentError("bad input")

    run_once(Worker(queue, broken))
    job = queue.get(job_id)
    assert job.state is JobState.FAILED and job.attempt == 1
    assert "bad input" in (job.last_error or "")


def test_retryable_error_retries_even_with_on_failure_fail(queue: Queue) -> None:
    job_id = queue.enqueue({}, max_attempts=2)

    def later(data: Any, job: Job) -> str:
        if job.attempt == 1:
            raise RetryableError("not yet", delay=0)
        return "now"

    run_once(Worker(queue, later, on_failure="fail"))
    job = queue.get(job_id)
    assert job.state is JobState.COMPLETED and job.attempt == 2 and job.result == "now"


def test_on_failure_fail_does_not_retry_plain_errors(queue: Queue) -> None:
    job_id = queue.enqueue({}, max_attempts=5)
    run_once(Worker(queue, lambda d: 1 / 0, on_failure="fail"))
    assert queue.get_job_status(job_id) == "failed"


def test_timeout_really_stops_a_python_handler(queue: Queue, tmp_path: Path) -> None:
    marker = tmp_path / "finished"

    def stuck(data: Any) -> None:
        time.sleep(5)
        marker.write_text("ran to the end")

    job_id = queue.enqueue({}, max_attempts=1)
    started = time.monotonic()
    run_once(Worker(queue, stuck, timeout=0.5))
    assert time.monotonic() - started < 4
    job = queue.get(job_id)
    assert job.state is JobState.FAILED and "timeout" in (job.last_error or "")
    time.sleep(5)
    assert not marker.exists()  # the child was killed, not merely abandoned


def test_job_timeout_overrides_worker_and_child_results_come_back(queue: Queue) -> None:
    quick = queue.enqueue({"n": 21}, timeout=10)
    run_once(Worker(queue, load_handler("tests.core.handlers_for_tests:double")))
    assert queue.get(quick).result == 42


def test_command_handler(queue: Queue) -> None:
    ok = queue.enqueue({"n": 4})
    run_once(
        Worker(
            queue, CommandHandler("python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[\"n\"] + 1))'")
        )
    )
    assert queue.get(ok).result == 5
    bad = queue.enqueue({"n": 4})
    run_once(Worker(queue, CommandHandler("echo 'it broke' >&2; exit 3"), on_failure="fail"))
    job = queue.get(bad)
    assert job.state is JobState.FAILED
    assert "status 3" in (job.last_error or "") and "it broke" in (job.last_error or "")
    text = queue.enqueue({})
    run_once(Worker(queue, CommandHandler("echo job $OCTOQUEUE_JOB_ID")))
    assert queue.get(text).result == f"job {text}"


def test_command_timeout_kills_the_process_group(queue: Queue, tmp_path: Path) -> None:
    marker = tmp_path / "late"
    job_id = queue.enqueue({})
    started = time.monotonic()
    run_once(Worker(queue, CommandHandler(f"sleep 4 && touch {marker}"), timeout=0.4, on_failure="fail"))
    assert time.monotonic() - started < 3.5  # killed at 0.4 s, not after 4 s
    assert "timeout" in (queue.get(job_id).last_error or "")
    time.sleep(max(0.0, started + 5.0 - time.monotonic()))  # the sleep would have ended and touched the marker
    assert not marker.exists()


def test_heartbeat_keeps_a_long_job_and_recovery_leaves_it_alone(queue: Queue) -> None:
    job_id = queue.enqueue({}, max_attempts=3)
    runs: list[int] = []

    def slow(data: Any, job: Job) -> str:
        runs.append(job.attempt)
        time.sleep(1.5)
        return "done"

    worker = Worker(queue, slow, lease=0.6)
    thread = threading.Thread(target=run_once, args=(worker,))
    thread.start()
    for _ in range(30):  # another worker recovering expired leases the whole time
        queue.recover_expired()
        time.sleep(0.05)
    thread.join()
    assert runs == [1]
    assert queue.get(job_id).state is JobState.COMPLETED


def test_cancelled_while_running_result_is_refused(queue: Queue) -> None:
    job_id = queue.enqueue({})
    started = threading.Event()

    def slow(data: Any) -> str:
        started.set()
        time.sleep(0.5)
        return "too late"

    worker = Worker(queue, slow)
    thread = threading.Thread(target=run_once, args=(worker,))
    thread.start()
    assert started.wait(5)
    queue.cancel(job_id)
    thread.join()
    assert queue.get(job_id).state is JobState.CANCELLED
    assert worker.stats.lost == 1 and worker.stats.completed == 0


def test_stop_finishes_jobs_in_hand(queue: Queue) -> None:
    job_id = queue.enqueue({})
    started = threading.Event()

    def slow(data: Any) -> str:
        started.set()
        time.sleep(0.4)
        return "finished"

    worker = Worker(queue, slow, poll_interval=0.05)
    worker.start()
    assert started.wait(5)
    worker.stop(timeout=10)
    assert queue.get(job_id).state is JobState.COMPLETED


def test_stop_releases_jobs_past_the_grace_period(queue: Queue) -> None:
    job_id = queue.enqueue({}, max_attempts=1)
    started = threading.Event()

    def stuck(data: Any) -> None:
        started.set()
        time.sleep(2)

    worker = Worker(queue, stuck, shutdown_grace=0.2, poll_interval=0.05)
    worker.start()
    assert started.wait(5)
    worker.stop(timeout=10)
    job = queue.get(job_id)
    assert job.state is JobState.PENDING and job.attempts_left == 1
    assert worker.stats.released == 1
    time.sleep(2.2)  # the abandoned thread's late result must not complete the job
    assert queue.get(job_id).state is JobState.PENDING


def test_max_jobs(queue: Queue) -> None:
    for i in range(5):
        queue.enqueue({"n": i})
    stats = Worker(queue, lambda d: d, poll_interval=0.05).run(max_jobs=2, install_signal_handlers=False)
    assert stats.processed == 2 and queue.count_open() == 3


def test_broken_body_fails_with_a_comment(queue: Queue) -> None:
    from octoqueue.stores.memory import MemoryStore

    store = MemoryStore()
    q = Queue(store)
    job_id = q.enqueue({"a": 1})
    # a person edited the issue body into something that is not JSON (a GitHub-store reality)
    store._jobs[job_id] = store._jobs[job_id].model_copy(update={"data": None, "body_error": "not valid JSON"})
    good = q.enqueue({"b": 2})
    stats = Worker(q, lambda d: d).run(once=True, install_signal_handlers=False)
    assert stats.completed == 1 and q.get(good).state is JobState.COMPLETED
    assert q.get(job_id).state is JobState.FAILED
    assert "not valid JSON" in q.comments(job_id)[-1].body


def _count_completions(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], dict[int, str]]:
    """Count the store's transition_many calls (their sizes) and record each completion's outcome by job id.
    The first completion made on its own waits until the worker's other jobs wait to be completed, so that
    they finish together however the threads are scheduled."""
    store = worker.queue.store
    sizes: list[int] = []
    outcomes: dict[int, str] = {}
    transition, transition_many = store.transition, store.transition_many
    first = threading.Event()

    def one(job_id: int, **kw: Any) -> Job:
        if kw.get("target") is not JobState.COMPLETED or first.is_set():  # a heartbeat, or within a batch
            return transition(job_id, **kw)
        first.set()
        deadline = time.monotonic() + 10
        while len(worker._completions._waiting) < worker.concurrency - 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        try:
            job = transition(job_id, **kw)
        except Exception as exc:
            outcomes[job_id] = type(exc).__name__
            raise
        outcomes[job_id] = job.state.value
        return job

    def many(moves: Any) -> Any:
        sizes.append(len(moves))
        results = transition_many(moves)
        for move, result in zip(moves, results, strict=True):
            outcomes[move.job_id] = type(result).__name__ if isinstance(result, Exception) else result.state.value
        return results

    monkeypatch.setattr(store, "transition", one)
    monkeypatch.setattr(store, "transition_many", many)
    monkeypatch.setattr(store, "batches_transitions", True)  # as a store with a native batch verb says
    # ... that does not claim with its transitions (threads then hand their next claim to the claiming loop)
    monkeypatch.setattr(store, "batches_claims", False)
    return sizes, outcomes


def test_jobs_finishing_together_are_completed_in_one_store_call(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(8)]
    together = threading.Barrier(8)

    def handler(data: Any) -> int:
        together.wait(10)
        return int(data["n"])

    worker = Worker(queue, handler, concurrency=8, poll_interval=0.05)
    sizes, outcomes = _count_completions(worker, monkeypatch)
    run_once(worker)
    assert sizes == [7]  # one job completed on its own, the seven that finished meanwhile in one call
    assert (worker.stats.completed, worker.stats.lost) == (8, 0)
    assert sorted(outcomes) == sorted(ids) and set(outcomes.values()) == {"completed"}
    assert [queue.get(i).result for i in ids] == list(range(8))
    assert all(len(queue.comments(i)) == 1 for i in ids)  # each result comment posted once


def test_a_stale_lease_in_a_batch_loses_that_job_only(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(8)]
    stale = ids[3]
    together = threading.Barrier(8)

    def handler(data: Any, job: Job) -> int:
        if job.id == stale:  # another worker takes the job over: this one's attempt no longer holds it
            queue.release(job)
            retaken = queue.claim()
            assert retaken is not None and (retaken.id, retaken.attempt) == (stale, 2)
        together.wait(10)
        return int(data["n"])

    worker = Worker(queue, handler, concurrency=8, poll_interval=0.05)
    sizes, outcomes = _count_completions(worker, monkeypatch)
    run_once(worker)
    assert sum(sizes) == 7 and len(sizes) == 1
    assert outcomes.pop(stale) == "LeaseLost"
    assert set(outcomes.values()) == {"completed"} and len(outcomes) == 7
    assert (worker.stats.completed, worker.stats.lost) == (7, 1)
    taken_over = queue.get(stale)
    assert (taken_over.state, taken_over.attempt, taken_over.result) == (JobState.PROCESSING, 2, None)


def test_a_store_without_a_batch_verb_completes_one_by_one(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub's store has no batch verb: each completion stays a patient Queue.complete (rate limits waited out)."""
    ids = [queue.enqueue({"n": i}) for i in range(4)]
    worker = Worker(queue, lambda data: data["n"], concurrency=4)
    calls: list[int] = []
    monkeypatch.setattr(queue.store, "batches_transitions", False)  # as GitHub's store says
    monkeypatch.setattr(queue.store, "transition_many", lambda moves: calls.append(len(moves)) or [])
    worker.run(once=True)
    assert calls == []
    assert all(queue.get(i).state is JobState.COMPLETED for i in ids)


def test_the_next_claim_is_made_while_a_completion_is_written(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot frees when the handler returns: the claiming loop takes the next job while the finished one's outcome
    is still being written (on SQLite the two then share a commit)."""
    first, second = queue.enqueue({"n": 1}), queue.enqueue({"n": 2})
    store = queue.store
    claim, transition = store.claim, store.transition
    claimed_second = threading.Event()
    running: list[int] = []

    def claiming(**kw: Any) -> list[Job]:
        jobs = claim(**kw)
        if any(job.id == second for job in jobs):
            claimed_second.set()
        return jobs

    def completing(job_id: int, **kw: Any) -> Job:
        if job_id == first:
            assert claimed_second.wait(10), "the second job was claimed only after the first one's completion"
        return transition(job_id, **kw)

    def handler(data: Any) -> None:
        running.append(data["n"])

    monkeypatch.setattr(store, "claim", claiming)
    monkeypatch.setattr(store, "transition", completing)
    worker = Worker(queue, handler, concurrency=1, poll_interval=0.05)
    run_once(worker)
    assert (worker.stats.completed, running) == (2, [1, 2])
    assert {queue.get(first).state, queue.get(second).state} == {JobState.COMPLETED}


def _count_claims(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Say the store claims with its transitions in one round trip (as Redis's does); count the worker's claims
    from its loop and the store's transition_and_claim calls."""
    store = queue.store
    calls = {"claim": 0, "transition_and_claim": 0}
    claim, transition_and_claim = queue.claim_batch, store.transition_and_claim

    def counted_claim(count: int, **kw: Any) -> list[Job]:
        calls["claim"] += 1
        return claim(count, **kw)

    def counted_both(moves: Any, **kw: Any) -> Any:
        calls["transition_and_claim"] += 1
        return transition_and_claim(moves, **kw)

    monkeypatch.setattr(store, "batches_claims", True)
    monkeypatch.setattr(queue, "claim_batch", counted_claim)
    monkeypatch.setattr(store, "transition_and_claim", counted_both)
    return calls


def test_a_thread_takes_its_next_job_with_its_completion(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(6)]
    calls = _count_claims(queue, monkeypatch)
    seen: list[int] = []
    worker = Worker(queue, lambda data: seen.append(data["n"]) or data["n"], concurrency=1, prefetch=1)
    run_once(worker)
    assert sorted(seen) == list(range(6)) and worker.stats.completed == 6
    assert [queue.get(i).result for i in ids] == list(range(6))
    # the loop claimed the first job (and found none at the end); each completion brought the next job
    assert calls == {"claim": 2, "transition_and_claim": 6}


def test_a_job_taken_with_a_completion_while_stopping_is_released(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = queue.enqueue({"n": 1}), queue.enqueue({"n": 2})
    calls = _count_claims(queue, monkeypatch)
    worker = Worker(queue, lambda data: data["n"], concurrency=1, prefetch=1)
    both = queue.store.transition_and_claim

    def stop_meanwhile(moves: Any, **kw: Any) -> Any:
        worker._stop.set()  # a SIGTERM arriving while the completion is on its way
        return both(moves, **kw)

    monkeypatch.setattr(queue.store, "transition_and_claim", stop_meanwhile)
    worker.run(install_signal_handlers=False)
    assert queue.get(first).state is JobState.COMPLETED
    released = queue.get(second)
    assert (released.state, released.attempts_used, worker.stats.released) == (JobState.PENDING, 0, 1)
    assert calls["claim"] == 1


def test_a_job_taken_with_a_refused_completion_is_released(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    stale, other = queue.enqueue({"n": 1}), queue.enqueue({"n": 2})
    _count_claims(queue, monkeypatch)

    def handler(data: Any, job: Job) -> int:
        if job.id == stale:  # another worker takes the job over: this one's completion is refused
            queue.release(job)
            retaken = queue.claim(ids=[stale])
            assert retaken is not None and retaken.attempt == 2
        return int(data["n"])

    worker = Worker(queue, handler, concurrency=1)
    run_once(worker)
    assert (worker.stats.completed, worker.stats.lost) == (1, 1)
    assert queue.get(other).state is JobState.COMPLETED  # released by the refused completion, then run
    assert (queue.get(stale).state, queue.get(stale).attempt) == (JobState.PROCESSING, 2)
