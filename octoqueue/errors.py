"""Exceptions. Every octoqueue error derives from :class:`OctoqueueError`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from octoqueue.states import JobState


class OctoqueueError(Exception):
    """An octoqueue operation failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(OctoqueueError):
    """octoqueue is configured wrongly (store URL, token, options)."""


class AccessDenied(ConfigurationError):
    """The store refused the credentials, or they lack a permission the operation needs: retrying cannot help.

    ``status`` is the store's own code for it where it has one (GitHub: 401 for a missing, wrong or expired
    token, 403 for a token without the permission).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class JobNotFound(OctoqueueError):
    """No such job."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} does not exist")


class ScheduleNotFound(OctoqueueError):
    """No schedule has this id."""

    def __init__(self, schedule_id: str) -> None:
        self.schedule_id = schedule_id
        super().__init__(f"schedule {schedule_id!r} does not exist")


class InvalidTransition(OctoqueueError):
    """The job is not in a state that allows this change."""

    def __init__(self, job_id: int, current: JobState | None, target: JobState) -> None:
        self.job_id = job_id
        self.current = current
        self.target = target
        now = current.value if current is not None else "without a status label"
        super().__init__(f"job {job_id} is {now}; it cannot become {target.value}")


class StateConflict(OctoqueueError):
    """Someone else changed the job first (the expected state or attempt no longer holds)."""

    def __init__(self, job_id: int, detail: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id}: {detail}")


class LeaseLost(StateConflict):
    """This worker's lease on the job expired or the job was claimed again: its result is not accepted."""


class JobTooLarge(OctoqueueError):
    """The job's body would exceed GitHub's 65,536-character limit for issue bodies."""


class InvalidJobData(OctoqueueError):
    """The job's data is not a JSON value octoqueue can store."""


class InvalidLabel(InvalidJobData, ValueError):
    """A job label octoqueue refuses: blank, too long, or a name octoqueue gives a meaning to (see LabelScheme)."""


class DependentsFull(OctoqueueError, ValueError):
    """A job with ``depends_on`` was refused: the jobs already waiting for unfinished (or failed) parents fill the
    room the store keeps for dependencies (see :data:`octoqueue.dependencies.MAX_SETTING_CHARS`)."""


class StoreUnavailable(OctoqueueError):
    """The store could not be reached or answered with an error."""


class RateLimited(StoreUnavailable):
    """GitHub's rate limit was hit; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class DeadlinePassed(RateLimited):
    """A request was not sent: waiting out the rate limit (``retry_after`` seconds) would have sent it after the
    caller's deadline — a holder's lease, or the grace of a claim it just took. Nothing was written."""


class HandlerError(Exception):
    """Base of the errors a handler raises to steer what happens to its job."""

    def __init__(self, message: str = "", *, result: Any = None) -> None:
        self.result = result
        super().__init__(message)


class RetryableError(HandlerError):
    """The job failed but may succeed later: retry it with backoff while attempts remain."""

    def __init__(self, message: str = "", *, delay: float | None = None, result: Any = None) -> None:
        self.delay = delay
        super().__init__(message, result=result)


class PermanentError(HandlerError):
    """The job can never succeed: fail it now, without further attempts."""


class JobTimeout(RetryableError):
    """The handler ran past the job's timeout and was stopped."""
