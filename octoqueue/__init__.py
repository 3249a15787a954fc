"""octoqueue: a GitHub-native job queue. Jobs are issues, states are labels.

>>> import octoqueue
>>> queue = octoqueue.connect("memory://")
>>> job_id = queue.enqueue({"data": "example"})
>>> queue.dequeue()[0] == job_id
True
"""

from __future__ import annotations

import importlib
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

if TYPE_CHECKING:
    from octoqueue.github import GithubQueue
    from octoqueue.job import Comment, Job, Page
    from octoqueue.queue import Queue
    from octoqueue.retry import RetryPolicy
    from octoqueue.states import JobState, LabelScheme, Priority
    from octoqueue.worker import Worker
    from octoqueue.workflows import Workflow

__version__ = "0.2.0"

#: Names imported on first use, so that ``import octoqueue`` (and ``octoqueue --version``) stays quick: the models
#: pull in pydantic, GithubQueue githubkit, Worker multiprocessing.
_LAZY = {
    "Comment": "octoqueue.job",
    "Job": "octoqueue.job",
    "Page": "octoqueue.job",
    "Queue": "octoqueue.queue",
    "RetryPolicy": "octoqueue.retry",
    "JobState": "octoqueue.states",
    "LabelScheme": "octoqueue.states",
    "Priority": "octoqueue.states",
    "GithubQueue": "octoqueue.github",
    "Worker": "octoqueue.worker",
    "Workflow": "octoqueue.workflows",
}


def connect(url: str | None = None, **options: Any) -> Queue:
    """A :class:`Queue` on the store at ``url`` (default: env ``OCTOQUEUE_STORE``, else ``sqlite:///octoqueue.db``)."""
    from octoqueue.queue import Queue

    return Queue(url, **options)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'octoqueue' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
    "Workflow",
    "__version__",
    "connect",
]
