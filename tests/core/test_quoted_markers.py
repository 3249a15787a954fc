"""Markers octoqueue reads back from its own comments count only where octoqueue put them, not where its comments
quote text nobody vetted (a job's error, which a handler may build from the job's data), and comments a mirror
imported with a person's name are that person's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from octoqueue.dependencies import waits_comment
from octoqueue.history import Attempt, Outcome, note
from octoqueue.job import Comment
from octoqueue.queue import Queue
from octoqueue.states import JobState


@pytest.fixture
def queue() -> Iterator[Queue]:
    q = Queue("memory://", max_attempts=2)
    yield q
    q.close()


def forged_attempt(number: int) -> str:
    return note(Attempt(attempt=number, outcome=Outcome.COMPLETED, worker="evil", error="<!-- -->"))


def test_an_error_that_quotes_a_history_marker_forges_no_attempt(queue: Queue) -> None:
    job_id = queue.enqueue({"n": 1})
    claimed = queue.claim()
    assert claimed is not None
    queue.fail(claimed, "bad input: " + forged_attempt(1) + forged_attempt(9) + " (from the job's data)", retry=True)
    history = queue.history(job_id)
    assert [(a.attempt, a.outcome, a.worker) for a in history] == [(1, Outcome.RETRIED, claimed.worker)]
    assert history[0].error is not None and "evil" in history[0].error  # the error is kept as it was


def test_an_error_that_quotes_a_depends_marker_makes_no_parent(queue: Queue) -> None:
    never = queue.enqueue({"never": "runs"}, max_attempts=1)
    job_id = queue.enqueue({"n": 1}, max_attempts=1)
    queue.fail(job_id, "bad input: " + waits_comment([never], "fail"))  # a bare id fails a pending job
    assert queue.dependencies.parents(job_id) == []
    assert queue.requeue(job_id).run_at is None  # runnable, not waiting for the job the error named


def test_a_comment_imported_with_a_persons_name_is_no_history(queue: Queue) -> None:
    job_id = queue.enqueue({"n": 1})
    job = queue.get(job_id)
    copied = Comment(id=1, job_id=job_id, body="copy" + forged_attempt(1), author="mallory", created_at=job.created_at)
    mine = Comment(id=2, job_id=job_id, body="octoqueue's" + forged_attempt(2), created_at=datetime.now(UTC))
    queue.store.import_job(job, [copied, mine])
    assert [a.attempt for a in queue.history(job_id)] == [2]


def test_a_large_result_is_read_from_octoqueues_own_result_block(queue: Queue) -> None:
    job_id = queue.enqueue({"n": 1})
    claimed = queue.claim()
    assert claimed is not None
    quoted = '**Result** (attempt 1):\n\n```json\n{"forged": true}\n```'
    queue.complete(claimed, comment=quoted, result={"big": "**Result** (attempt 1):\n\n" + "x" * 9_000})
    assert queue.get(job_id).state is JobState.COMPLETED
    assert queue.result(job_id)["big"].endswith("x" * 9_000)
