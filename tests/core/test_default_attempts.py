"""A RetryableError retries without being asked to: jobs get DEFAULT_MAX_ATTEMPTS (3) tries, as the peers' do."""

from __future__ import annotations

from octoqueue.api.settings import Settings
from octoqueue.errors import RetryableError
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.retry import DEFAULT_MAX_ATTEMPTS, RetryPolicy
from octoqueue.states import JobState
from octoqueue.worker import Worker


def test_a_retryable_error_is_retried_by_default() -> None:
    with Queue("memory://", retry=RetryPolicy(initial=0, jitter=0)) as queue:
        job_id = queue.enqueue({})

        def flaky(data: object, job: Job) -> str:
            if job.attempt < DEFAULT_MAX_ATTEMPTS:
                raise RetryableError("not yet")
            return "third time lucky"

        stats = Worker(queue, flaky, poll_interval=0.01).run(once=True, install_signal_handlers=False)
        job = queue.get(job_id)
    assert DEFAULT_MAX_ATTEMPTS == 3
    assert (job.state, job.attempt, job.result) == (JobState.COMPLETED, 3, "third time lucky")
    assert (stats.retried, stats.completed) == (2, 1)


def test_the_server_and_the_library_share_the_default() -> None:
    assert Settings(_env_file=None).max_attempts == DEFAULT_MAX_ATTEMPTS  # type: ignore[call-arg]
    with Queue("memory://") as queue:
        assert queue.enqueue_job({}).max_attempts == DEFAULT_MAX_ATTEMPTS
