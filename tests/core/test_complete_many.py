"""``Queue.complete_many``: each job completed as ``complete`` would, one refusal touching no other job."""

from __future__ import annotations

from pathlib import Path

from octoqueue.errors import JobTooLarge
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.states import JobState


def test_a_result_too_large_refuses_that_job_only_and_leaves_it_in_hand(tmp_path: Path) -> None:
    with Queue(f"sqlite:///{tmp_path}/c.db") as queue:
        ids = [queue.enqueue({"n": n}) for n in range(3)]
        claimed = [queue.claim() for _ in ids]
        assert all(job is not None for job in claimed)
        outcomes = queue.complete_many([job for job in claimed if job], results=[0, "x" * 70_000, 2])
        assert isinstance(outcomes[0], Job) and isinstance(outcomes[2], Job)
        assert isinstance(outcomes[1], JobTooLarge)
        assert [queue.get(i).state for i in ids] == [JobState.COMPLETED, JobState.PROCESSING, JobState.COMPLETED]
        assert [len(queue.comments(i)) for i in ids] == [1, 0, 1]
