"""The Queue API (the original Octoqueue's methods and octoqueue's additions), on every store."""

from __future__ import annotations

import threading
import time

import pytest

from octoqueue.errors import InvalidJobData, InvalidLabel, JobNotFound, JobTooLarge, LeaseLost, StateConflict
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy
from octoqueue.states import JobState, Priority
from octoqueue.stores.base import Store


@pytest.fixture
def queue(store: Store) -> Queue:
    return Queue(store, retry=RetryPolicy(initial=0.2, jitter=0), max_attempts=1, lease=30)


def test_original_api_roundtrip(queue: Queue) -> None:
    job_id = queue.enqueue({"data": "example"})
    assert isinstance(job_id, int)
    assert queue.get_job_status(job_id) == "pending"
    assert queue.count_open() == 1
    got = queue.dequeue()
    assert got == (job_id, {"data": "example"})
    assert queue.get_job_status(job_id) == "processing"
    jobs = queue.get_jobs(labels=["processing"], state="open")
    assert [(j[0], j[2]) for j in jobs] == [(job_id, {"data": "example"})]
    queue.complete(job_id)
    assert queue.get_job_status(job_id) == "completed"
    assert queue.count_open() == 0
    assert queue.get_jobs(labels=["completed"], state="closed")[0][0] == job_id
    assert queue.get_jobs(labels=["completed"], state="open") == []
    assert queue.dequeue() is None


def test_default_title_and_labels(queue: Queue) -> None:
    job = queue.get(queue.enqueue({"a": 1}, additional_labels=["urgent", "urgent", "gpu"]))
    assert job.title.startswith("Job ")
    assert list(job.labels) == ["urgent", "gpu"]
    assert queue.get_jobs(labels=["pending", "gpu"])[0][0] == job.id


def test_status_label_cannot_be_additional(queue: Queue) -> None:
    with pytest.raises(ValueError):
        queue.enqueue({"a": 1}, additional_labels=["completed"])


RESERVED = ["Completed", "PENDING", "archived", "Archived", "octoqueue-settings", "OctoQueue-Settings", "requeue",
            "queue:work", "Queue:Work", "  ", "", " gpu", "a" * 51, "a,b"]  # fmt: skip


@pytest.mark.parametrize("label", RESERVED)
def test_reserved_and_blank_labels_are_refused_alike(queue: Queue, label: str) -> None:
    """Issue 8 item 4: the same refusal on every store, and nothing is created."""
    with pytest.raises(InvalidLabel) as refused:
        queue.enqueue({"a": 1}, additional_labels=["gpu", label])
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, InvalidJobData)
    assert queue.count_open() == 0


def test_labels_that_differ_in_case_only_are_one_label(queue: Queue) -> None:
    job = queue.get(queue.enqueue({"a": 1}, additional_labels=["GPU", "gpu", "big"]))
    assert list(job.labels) == ["GPU", "big"]


def test_a_job_joins_a_named_queue_by_its_queue_label(queue: Queue) -> None:
    job = queue.enqueue_job({"a": 1}, additional_labels=["gpu"], queue="work")
    assert list(job.labels) == ["queue:work", "gpu"]
    claimed = queue.claim(labels=["queue:work"])
    assert claimed is not None and claimed.id == job.id


def test_get_job_status_missing_is_none(queue: Queue) -> None:
    assert queue.get_job_status(999_999) is None
    with pytest.raises(JobNotFound):
        queue.get(999_999)


def test_priorities_by_name_and_number(queue: Queue) -> None:
    bulk = queue.enqueue({"p": "bulk"}, priority="bulk")
    high = queue.enqueue({"p": "high"}, priority=Priority.HIGH)
    crit = queue.enqueue({"p": "critical"}, priority=0)
    assert [queue.claim().id for _ in range(3)] == [crit, high, bulk]  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        queue.enqueue({}, priority="urgent-ish")


def test_delay(queue: Queue) -> None:
    job_id = queue.enqueue({"later": True}, delay=0.8)
    assert queue.dequeue() is None
    time.sleep(1.0)
    assert queue.dequeue() == (job_id, {"later": True})


def test_dequeue_wait_is_woken_by_enqueue(queue: Queue) -> None:
    timer = threading.Timer(0.3, lambda: queue.enqueue({"late": 1}))
    timer.start()
    started = time.monotonic()
    got = queue.dequeue(wait_sec=5)
    assert got is not None and got[1] == {"late": 1}
    assert time.monotonic() - started < 3
    timer.join()


def test_complete_with_result_posts_comment(queue: Queue) -> None:
    queue.enqueue({"a": 1})
    job = queue.claim()
    assert job is not None
    done = queue.complete(job, result={"answer": 42})
    assert done.state is JobState.COMPLETED and not done.open
    assert queue.get(job.id).result == {"answer": 42}
    (note,) = queue.comments(job.id)
    assert '"answer": 42' in note.body


def test_complete_without_result_posts_nothing(queue: Queue) -> None:
    queue.enqueue({"a": 1})
    job = queue.claim()
    assert job is not None
    queue.complete(job)
    assert queue.comments(job.id) == []


def test_a_result_too_large_for_a_comment_leaves_the_job_in_hand(queue: Queue) -> None:
    # Issue 8, item 7: the job used to be completed first and the result refused after, so it was gone.
    queue.enqueue({"a": 1})
    job = queue.claim()
    assert job is not None
    with pytest.raises(JobTooLarge, match="the job was not changed"):
        queue.complete(job, result={"blob": "x" * 70_000})
    with pytest.raises(JobTooLarge):
        queue.complete(job.id, comment="y" * 70_000)  # a bare id and a comment alike
    with pytest.raises(JobTooLarge):  # defused, every line that starts with "/" grows by one character
        queue.complete(job, comment="/x\n" * (queue.store.max_comment_chars // 3))
    held = queue.get(job.id)
    assert held.state is JobState.PROCESSING and held.attempt == job.attempt and held.result is None
    assert queue.comments(job.id) == []
    done = queue.complete(job, result={"small": 1})  # the holder can still finish it
    assert done.state is JobState.COMPLETED and queue.get(job.id).result == {"small": 1}


def test_a_failure_with_a_huge_error_is_recorded_cut(queue: Queue) -> None:
    job_id = queue.enqueue({"a": 1})
    queue.dequeue()
    failed = queue.fail(job_id, error="e" * 100_000)
    assert failed.state is JobState.FAILED
    assert failed.last_error is not None and failed.last_error.endswith("100,000 characters in all; cut to fit]")
    (note,) = queue.comments(job_id)
    assert "cut to fit" in note.body and len(note.body) <= queue.store.max_comment_chars


def test_fail_is_final_and_comments(queue: Queue) -> None:
    job_id = queue.enqueue({"a": 1})
    queue.dequeue()
    failed = queue.fail(job_id, "disk full")
    assert failed.state is JobState.FAILED and not failed.open
    assert failed.last_error == "disk full"
    assert "disk full" in queue.comments(job_id)[-1].body


def test_retry_with_backoff_then_dead(queue: Queue) -> None:
    job_id = queue.enqueue({"a": 1}, max_attempts=2)
    first = queue.claim()
    assert first is not None and first.attempt == 1
    back = queue.fail(first, error="flaky", retry=True)
    assert back.state is JobState.PENDING and back.run_at is not None
    assert queue.claim() is None  # backing off
    time.sleep(0.35)
    second = queue.claim()
    assert second is not None and second.id == job_id and second.attempt == 2
    dead = queue.fail(second, error="flaky again", retry=True)
    assert dead.state is JobState.FAILED and not dead.open  # no attempts left: dead
    bodies = [c.body for c in queue.comments(job_id)]
    assert any("Attempt 1 failed: flaky" in b for b in bodies)
    assert "flaky again" in bodies[-1]


def test_requeue_clears_failed_and_gives_fresh_budget(queue: Queue) -> None:
    job_id = queue.enqueue({"a": 1}, max_attempts=1)
    job = queue.claim()
    assert job is not None
    queue.fail(job, error="nope", retry=True)
    assert queue.get_job_status(job_id) == "failed"
    again = queue.requeue(job_id)
    assert again.state is JobState.PENDING and again.open
    assert again.attempts_left == 1
    claimed = queue.claim()
    assert claimed is not None and claimed.id == job_id and claimed.attempt == 2
    queue.complete(claimed)
    assert queue.get_job_status(job_id) == "completed"
    assert any("requeued" in c.body for c in queue.comments(job_id))


def test_cancel_pending_and_running(queue: Queue) -> None:
    waiting = queue.enqueue({"a": 1})
    queue.cancel(waiting)
    assert queue.get_job_status(waiting) == "cancelled"
    assert queue.dequeue() is None
    running_id = queue.enqueue({"b": 2})
    running = queue.claim()
    assert running is not None and running.id == running_id
    queue.cancel(running_id)
    with pytest.raises(LeaseLost):
        queue.complete(running)
    assert queue.get_job_status(running_id) == "cancelled"
    with pytest.raises(StateConflict):
        queue.cancel(running_id)


def test_lease_expiry_and_fencing_through_queue(queue: Queue) -> None:
    queue.enqueue({"a": 1}, max_attempts=3)
    stale = queue.claim(lease=0.2)
    assert stale is not None
    time.sleep(0.4)
    assert [j.id for j in queue.recover_expired()] == [stale.id]
    fresh = queue.claim()
    assert fresh is not None and fresh.attempt == stale.attempt + 1
    with pytest.raises(LeaseLost):
        queue.complete(stale, result="late")
    with pytest.raises(LeaseLost):
        queue.fail(stale, error="late")
    queue.complete(fresh, result="ok")
    assert queue.get(fresh.id).result == "ok"


def test_heartbeat_extends_lease(queue: Queue) -> None:
    queue.enqueue({"a": 1})
    job = queue.claim(lease=0.5)
    assert job is not None and job.lease_expires_at is not None
    renewed = queue.heartbeat(job, lease=30)
    assert renewed.lease_expires_at is not None and renewed.lease_expires_at > job.lease_expires_at
    time.sleep(0.7)
    assert queue.recover_expired() == []
    queue.complete(renewed)


def test_release_does_not_use_an_attempt(queue: Queue) -> None:
    job_id = queue.enqueue({"a": 1}, max_attempts=1)
    job = queue.claim()
    assert job is not None
    back = queue.release(job)
    assert back.state is JobState.PENDING and back.attempts_left == 1
    again = queue.claim()
    assert again is not None and again.id == job_id


def test_invalid_and_oversized_data_rejected_before_storing(queue: Queue) -> None:
    with pytest.raises(InvalidJobData):
        queue.enqueue({"bad": {1, 2}})
    with pytest.raises(InvalidJobData):
        queue.enqueue({"nan": float("nan")})
    with pytest.raises(JobTooLarge):
        queue.enqueue({"big": "x" * 70_000})
    assert queue.count_open() == 0


def test_idempotent_enqueue(queue: Queue) -> None:
    first = queue.enqueue({"a": 1}, idempotency_key="order-17")
    second = queue.enqueue({"a": 1}, idempotency_key="order-17")
    assert first == second
    assert queue.count_open() == 1


def test_clear_removes_old_finished_jobs(queue: Queue) -> None:
    done = queue.enqueue({"a": 1})
    keep = queue.enqueue({"b": 2})
    queue.dequeue()
    queue.complete(done)
    assert queue.clear(older_than=3600) == 0
    assert queue.clear(older_than=-5) == 1
    assert queue.get_job_status(done) in (None, "completed")  # stores that cannot delete archive instead
    assert queue.get_job_status(keep) == "pending"
    with pytest.raises(ValueError):
        queue.clear(0, states=[JobState.PENDING])


def test_comment_and_list(queue: Queue) -> None:
    ids = [queue.enqueue({"i": i}) for i in range(5)]
    queue.create_comment(ids[0], "hello")
    assert queue.comments(ids[0])[0].body == "hello"
    page = queue.list_jobs(limit=2)
    assert [j.id for j in page.jobs] == ids[:2] and page.cursor
    assert [j.id for j in queue.list_jobs(states=["pending"], limit=100).jobs] == ids


def test_job_record_is_immutable(queue: Queue) -> None:
    job = queue.get(queue.enqueue({"a": 1}))
    assert isinstance(job, Job)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type varies
        job.title = "changed"  # type: ignore[misc]
