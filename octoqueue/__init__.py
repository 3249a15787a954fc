"""octoqueue: a GitHub-native job queue. Jobs are issues, states are labels.

>>> import octoqueue
>>> queue = octoqueue.connect("memory://")
>>> job_id = queue.enqueue({"data": "example"})
>>> queue.dequeue()[0] == job_id
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from octoqueue.errors import (
    ConfigurationError,
    DeadlinePassed,
    InvalidJobData,
    InvalidTransition,
    JobNotFound,
    JobTimeout,
    JobTooLarge,
    LeaseLost,
    OctoqueueError,
    PermanentError,
    RateLimited,
    RetryableError,
    StateConflict,
    StoreUnavailable,
)
from octoqueue.job import Comment, Job, Page
from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy
from octoqueue.states import JobState, LabelScheme, Priority

if TYPE_CHECKING:
    from octoqueue.github import GithubQueue
    from octoqueue.worker import Worker

__version__ = "0.2.0"


def connect(url: str | None = None, **options: Any) -> Queue:
    """A :class:`Queue` on the store at ``url`` (default: env ``OCTOQUEUE_STORE``, else ``sqlite:///octoqueue.db``)."""
    return Queue(url, **options)


def __getattr__(name: str) -> Any:
    # GithubQueue pulls in githubkit and Worker pulls in multiprocessing: load them only when asked for.
    if name == "GithubQueue":
        from octoqueue.github import GithubQueue

        return GithubQueue
    if name == "Worker":
        from octoqueue.worker import Worker

        return Worker
    raise AttributeError(f"module 'octoqueue' has no attribute {name!r}")


__all__ = [
    "Comment",
    "ConfigurationError",
    "DeadlinePassed",
    "GithubQueue",
    "InvalidJobData",
    "InvalidTransition",
    "Job",
    "JobNotFound",
    "JobState",
    "JobTimeout",
    "JobTooLarge",
    "LabelScheme",
    "LeaseLost",
    "OctoqueueError",
    "Page",
    "PermanentError",
    "Priority",
    "Queue",
    "RateLimited",
    "RetryPolicy",
    "RetryableError",
    "StateConflict",
    "StoreUnavailable",
    "Worker",
    "__version__",
    "connect",
]
