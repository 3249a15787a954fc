"""A holder's complete waits out a rate limit within its lease, or within ``rate_limit_patience`` when given (the
server's HTTP requests: 10 s, then a 503), never longer."""

from __future__ import annotations

import time
from typing import Any

import pytest

from octoqueue import Queue
from octoqueue.errors import RateLimited
from octoqueue.states import JobState
from octoqueue.stores.memory import MemoryStore


class Limited(MemoryStore):
    """Refuses the next ``refusals`` transitions with a rate limit lasting ``retry_after`` seconds."""

    def __init__(self, refusals: int, retry_after: float) -> None:
        super().__init__()
        self.refusals, self.retry_after = refusals, retry_after

    def transition(self, job_id: int, **kwargs: Any) -> Any:
        if kwargs.get("target") is JobState.COMPLETED and self.refusals > 0:
            self.refusals -= 1
            raise RateLimited("secondary rate limit", self.retry_after)
        return super().transition(job_id, **kwargs)


def test_a_short_limit_is_waited_out_within_the_lease() -> None:
    queue = Queue(Limited(refusals=2, retry_after=0.1), lease=60)
    queue.enqueue(1)
    job = queue.claim()
    assert job is not None
    assert queue.complete(job).state is JobState.COMPLETED


def test_patience_caps_the_wait_and_the_limit_is_raised() -> None:
    queue = Queue(Limited(refusals=100, retry_after=2.0), lease=60, rate_limit_patience=0.5)
    queue.enqueue(1)
    job = queue.claim()
    assert job is not None
    started = time.monotonic()
    with pytest.raises(RateLimited):
        queue.complete(job)
    assert time.monotonic() - started < 1.0
    assert queue.get(job.id).state is JobState.PROCESSING  # still held: the caller may try again
