"""The store contract: the few domain verbs every backend implements.

A store keeps jobs as the label-state model describes them (an issue: number, title, body data, one status label
plus extra labels, open/closed, comments). The queue core talks to stores only through :class:`Store`; each
backend enforces every state change atomically in its own native way (a SQLite ``BEGIN IMMEDIATE``, a git ref
created only if absent on GitHub, ...). The contract tests in ``tests/contract`` hold every store to it.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from octoqueue.body import MAX_BODY_CHARS
from octoqueue.errors import InvalidTransition, JobNotFound, StateConflict
from octoqueue.job import MUTABLE_FIELDS, Comment, Job, NewJob, Page, utcnow
from octoqueue.states import JobState, LabelScheme


@dataclass(frozen=True)
class Move:
    """One transition of a batch: the arguments of :meth:`Store.transition` for one job."""

    job_id: int
    expected: JobState | Collection[JobState] | None
    target: JobState
    attempt: int | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)


class Store(ABC):
    """Where jobs live. Implementations must be safe to call from several threads."""

    #: The URL the store was opened from (secrets removed).
    url: str = ""

    #: The longest comment :meth:`comment` accepts (characters). GitHub's limit on every store, so that a queue
    #: can move to GitHub; the queue checks a comment against it before it moves the job the comment is about.
    max_comment_chars: int = MAX_BODY_CHARS

    def __init__(self, labels: LabelScheme | None = None) -> None:
        self.labels = labels or LabelScheme()

    # -- time -------------------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The store's clock (UTC). Leases and delays are measured on it, not on a worker's clock."""
        return utcnow()

    # -- jobs -------------------------------------------------------------------------------------------------
    @abstractmethod
    def create(self, new: NewJob) -> Job:
        """Create a pending job and return it.

        When ``new.idempotency_key`` is set and a job with that key exists, return the existing job unchanged
        instead of creating a second one (atomically: two racing creates with one key make one job).
        """

    @abstractmethod
    def get(self, job_id: int) -> Job:
        """The job with this id; raise :class:`~octoqueue.errors.JobNotFound` when there is none."""

    @abstractmethod
    def list(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Collection[str] = (),
        open: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """Jobs oldest first, filtered by state (any of), extra labels (all of) and open/closed.

        At most ``limit`` jobs a page; ``Page.cursor`` continues the listing, None on the last page. Jobs with no
        status label are listed when ``states`` is None.
        """

    @abstractmethod
    def claim(
        self,
        *,
        worker: str,
        lease: float,
        limit: int = 1,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
    ) -> builtins.list[Job]:
        """Atomically take up to ``limit`` runnable pending jobs for ``worker``.

        Runnable: pending, ``run_at`` absent or not after :meth:`now`, carrying all ``labels``, of one of
        ``types`` when given, and one of ``ids`` when given (a worker started for one job issue).
        Order: priority (0 first), then oldest first. Each claimed job becomes processing
        with ``attempt`` incremented by one (the fencing token), ``worker`` set and ``lease_expires_at`` =
        now + ``lease`` seconds. A job is never handed to two claimers. Returns [] when nothing is runnable.
        """

    @abstractmethod
    def transition(
        self,
        job_id: int,
        *,
        expected: JobState | Collection[JobState] | None,
        target: JobState,
        attempt: int | None = None,
        **changes: Any,
    ) -> Job:
        """Atomically move a job from ``expected`` to ``target`` and apply ``changes``; return the new record.

        ``expected`` is the state (or states) the caller believes the job is in; None accepts any state.
        ``attempt``, when given, must equal the job's current attempt (fencing). When either does not hold,
        raise :class:`~octoqueue.errors.StateConflict` (:class:`~octoqueue.errors.LeaseLost` when the attempt
        moved on) and change nothing. A move outside :data:`~octoqueue.states.TRANSITIONS` raises
        :class:`~octoqueue.errors.InvalidTransition`. ``changes`` keys are in :data:`~octoqueue.job.MUTABLE_FIELDS`.
        Moving to a finished state closes the job, moving to pending or processing reopens it; leaving
        processing clears ``worker`` and ``lease_expires_at`` unless ``changes`` sets them.
        """

    @abstractmethod
    def recover_expired(self, *, limit: int = 100) -> builtins.list[Job]:
        """Return processing jobs whose lease expired to pending (failed when no attempts are left).

        Exactly one caller recovers a given expired attempt. Returns the jobs as they are afterwards.
        """

    @abstractmethod
    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        """How many jobs are in each of ``states`` (all states when None)."""

    @abstractmethod
    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        """Delete (or, where the backend cannot delete, archive) finished jobs last updated before
        ``older_than``; return how many."""

    # -- batches (stores that can do them in one round trip or one transaction override these) ---------------
    def create_many(self, items: Sequence[NewJob]) -> builtins.list[Job]:
        """Create several jobs, each as :meth:`create` would (idempotency keys included); return them in order."""
        return [self.create(item) for item in items]

    def transition_many(self, moves: Sequence[Move]) -> builtins.list[Job | Exception]:
        """Apply several transitions, each on its own terms: one result per move, in order.

        A move that succeeds gives the new record; one that fails gives the exception :meth:`transition` would
        have raised (StateConflict, LeaseLost, JobNotFound, InvalidTransition), and the other moves still apply.
        """
        results: builtins.list[Job | Exception] = []
        for move in moves:
            try:
                results.append(
                    self.transition(
                        move.job_id,
                        expected=move.expected,
                        target=move.target,
                        attempt=move.attempt,
                        **dict(move.changes),
                    )
                )
            except (StateConflict, JobNotFound, InvalidTransition) as exc:
                results.append(exc)
        return results

    # -- comments ---------------------------------------------------------------------------------------------
    @abstractmethod
    def comment(self, job_id: int, body: str) -> Comment:
        """Add a comment to the job's history; raise JobNotFound when there is no such job."""

    @abstractmethod
    def comments(self, job_id: int) -> builtins.list[Comment]:
        """The job's comments, oldest first."""

    # -- settings (the admin schema, queue definitions) -------------------------------------------------------
    @abstractmethod
    def get_setting(self, key: str) -> Any:
        """A JSON value stored under ``key``, or None."""

    @abstractmethod
    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key`` (None deletes it); visible to every process using the store."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The store is unusable afterwards."""

    # -- helpers shared by implementations --------------------------------------------------------------------
    def iter_jobs(self, **filters: Any) -> Iterator[Job]:
        """Every job matching ``filters`` (as :meth:`list`), following cursors."""
        cursor = None
        while True:
            page = self.list(cursor=cursor, **filters)
            yield from page.jobs
            if page.cursor is None:
                return
            cursor = page.cursor


def expected_set(expected: JobState | Collection[JobState] | None) -> frozenset[JobState] | None:
    if expected is None:
        return None
    if isinstance(expected, JobState):
        return frozenset({expected})
    return frozenset(expected)


def check_changes(changes: Iterable[str]) -> None:
    unknown = set(changes) - MUTABLE_FIELDS
    if unknown:
        raise TypeError(f"transition() cannot change {sorted(unknown)}")


def lease_until(now: datetime, lease: float) -> datetime:
    return now + timedelta(seconds=lease)


def apply_transition(
    job: Job,
    *,
    expected: JobState | Collection[JobState] | None,
    target: JobState,
    attempt: int | None,
    changes: dict[str, Any],
    now: datetime,
) -> Job:
    """The record ``job`` becomes under :meth:`Store.transition`, or the contract's exception.

    Stores that can read and write a job inside one atomic section (a lock, a transaction) use this so the
    rules are written once; stores with a native compare-and-set check the same things their own way.
    """
    from octoqueue.errors import LeaseLost, StateConflict
    from octoqueue.states import check_transition

    check_changes(changes)
    wanted = expected_set(expected)
    if attempt is not None and (job.attempt != attempt or (wanted is not None and job.state not in wanted)):
        raise LeaseLost(
            job.id,
            f"attempt {attempt} no longer holds the job (it is {job.status or 'unlabelled'}, attempt {job.attempt})",
        )
    if wanted is not None and job.state not in wanted:
        names = "/".join(sorted(s.value for s in wanted))
        raise StateConflict(job.id, f"expected it {names}, but it is {job.status or 'without a status label'}")
    check_transition(job.id, job.state, target)
    update: dict[str, Any] = {"state": target, "open": target.is_open, "updated_at": now}
    if job.state is JobState.PROCESSING and target is not JobState.PROCESSING:
        update["worker"] = None
        update["lease_expires_at"] = None
    update.update(changes)
    return job.model_copy(update=update)


def expire(job: Job, now: datetime) -> Job:
    """The record an expired processing job becomes: pending again, or failed when no attempts are left."""
    who = f" on worker {job.worker}" if job.worker else ""
    if job.attempts_left > 0:
        return apply_transition(
            job,
            expected=JobState.PROCESSING,
            target=JobState.PENDING,
            attempt=job.attempt,
            changes={"last_error": f"lease of attempt {job.attempt} expired{who}", "run_at": None},
            now=now,
        )
    return apply_transition(
        job,
        expected=JobState.PROCESSING,
        target=JobState.FAILED,
        attempt=job.attempt,
        changes={"last_error": f"lease of attempt {job.attempt} expired{who}; no attempts left"},
        now=now,
    )
