"""The store contract: the few domain verbs every backend implements.

A store keeps jobs as the label-state model describes them (an issue: number, title, body data, one status label
plus extra labels, open/closed, comments). The queue core talks to stores only through :class:`Store`; each
backend enforces every state change atomically in its own native way (a SQLite ``BEGIN IMMEDIATE``, a git ref
created only if absent on GitHub, ...). The contract kit :mod:`octoqueue.testing.contract` holds every store to
it; ``docs/design.md`` ("Writing a store") shows how to write one.

The job rules every store applies are written here once: :func:`is_runnable` (which pending jobs a claim may take),
:func:`claim_order`, :func:`claimed` (the record a claim makes), :func:`apply_transition` and :func:`expire`.
Abilities only some stores have are declared as protocols (:class:`RemovesLabels`, :class:`ReportsRateLimit`,
:class:`WakesWorkflows`, :class:`LinksDependencies`), checked with ``isinstance``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from octoqueue.body import MAX_BODY_CHARS
from octoqueue.errors import InvalidJobData, InvalidTransition, JobNotFound, StateConflict
from octoqueue.job import MUTABLE_FIELDS, Comment, Job, NewJob, Page, utcnow
from octoqueue.states import JobState, LabelScheme, has_any_label, has_labels

#: What a store reads the time from: a callable returning a timezone-aware UTC datetime (tests pass
#: :class:`octoqueue.testing.clock.ManualClock`).
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Move:
    """One transition of a batch: the arguments of :meth:`Store.transition` for one job."""

    job_id: int
    expected: JobState | Collection[JobState] | None
    target: JobState
    attempt: int | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Arrival:
    """Jobs that may have become runnable through another process (see :meth:`Store.watch_arrivals`).

    Read like the :class:`~octoqueue.job.Job` an arrival listener gets: ``state`` (always pending), ``labels`` (None:
    not known, any claimer may want them) and ``run_at`` (the earliest they may run; None: now). ``count`` jobs came.
    """

    labels: tuple[str, ...] | None
    count: int = 1
    run_at: datetime | None = None
    state: JobState = JobState.PENDING


class Store(ABC):
    """Where jobs live. Implementations must be safe to call from several threads."""

    #: The URL the store was opened from (secrets removed).
    url: str = ""
    #: How often a waiter (``Queue.wait``) re-reads a job changed by another process, in seconds.
    wait_poll_interval: float = 0.02
    #: Whether a write returns in well under a millisecond, waiting on no network round trip and no disk flush (an
    #: embedded store that does not fsync each commit). The server runs such writes of concurrent requests one after
    #: another on one thread (``octoqueue.api.threadbatch``); slower ones each get a thread and run side by side.
    quick_writes: bool = False

    #: The longest comment :meth:`comment` accepts (characters). GitHub's limit on every store, so that a queue
    #: can move to GitHub; the queue checks a comment against it before it moves the job the comment is about.
    max_comment_chars: int = MAX_BODY_CHARS

    def __init__(self, labels: LabelScheme | None = None, *, clock: Clock | None = None) -> None:
        self.labels = labels or LabelScheme()
        self._clock: Clock = clock or utcnow

    # -- time -------------------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The store's clock (UTC). Leases and delays are measured on it, not on a worker's clock.

        It is the ``clock`` the store was made with (the real time by default): every time a store compares or
        stamps comes from here, so a test that moves a ManualClock moves the store's time.
        """
        return self._clock()

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
    def list_jobs(
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
        exclude_labels: Collection[str] = (),
        exclude_types: Collection[str] = (),
    ) -> list[Job]:
        """Atomically take up to ``limit`` runnable pending jobs for ``worker``.

        Runnable: pending, ``run_at`` absent or not after :meth:`now`, carrying all ``labels``, of one of
        ``types`` when given, and one of ``ids`` when given (a worker started for one job issue); carrying none
        of ``exclude_labels`` (paused labels) and of none of ``exclude_types`` (types at a worker's limit). The
        queue passes the two exclusions only when they are not empty.
        Order: priority (0 first), then oldest first. Each claimed job becomes processing
        with ``attempt`` incremented by one (the fencing token), ``worker`` set and ``lease_expires_at`` =
        now + ``lease`` seconds, ``started_at`` = now (kept after the attempt ends, until the next claim; no
        transition changes it). A job is never handed to two claimers. Returns [] when nothing is runnable.
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
    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        """Return processing jobs whose lease expired to pending (failed when no attempts are left).

        Exactly one caller recovers a given expired attempt. Returns the jobs as they are afterwards.
        """

    def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]:
        """Up to ``limit`` jobs in ``states``, the last changed first (``updated_at``, then the higher id).

        This default reads every job in ``states``; stores that can read them latest first override it."""
        jobs = sorted(self.iter_jobs(states=states), key=lambda job: (job.updated_at, job.id), reverse=True)
        return jobs[:limit]

    @abstractmethod
    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        """How many jobs are in each of ``states`` (all states when None)."""

    @abstractmethod
    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        """Delete (or, where the backend cannot delete, archive) finished jobs last updated before
        ``older_than``; return how many."""

    @abstractmethod
    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        """Write ``job`` as it is and return it as stored: its id, title, data, state, labels, open/closed, every
        metadata field and both timestamps; then append ``comments`` after the job's own, keeping their bodies,
        authors and times (their ids are the store's). A job with that id is created when there is none and
        replaced when there is (its comments stay). The returned job's ``comments`` counts what the store now
        holds (``job.comments`` is not written). Later :meth:`create` calls take ids above every imported one.

        Not a queue move: no transition rule is checked and no lease honoured — it is how ``octoqueue mirror``
        copies a queue, which the other verbs cannot do (:meth:`create` picks a new id and stamps the time,
        :meth:`transition` stamps the time and refuses moves such as completed -> processing, :meth:`comment`
        stamps the time). Refuses (:class:`~octoqueue.errors.StateConflict`) an id the store cannot give this job.
        """

    # -- batches (stores that can do them in one round trip or one transaction override these) ---------------
    def create_many(self, items: Sequence[NewJob]) -> list[Job]:
        """Create several jobs, each as :meth:`create` would (idempotency keys included); return them in order."""
        return [self.create(item) for item in items]

    #: Whether :meth:`transition_many` is one round trip or transaction (a store that overrides it says so): the
    #: Worker batches completions only then, and completes one by one (each patient with a rate limit) otherwise.
    batches_transitions: bool = False

    def transition_many(self, moves: Sequence[Move]) -> list[Job | Exception]:
        """Apply several transitions, each on its own terms: one result per move, in order.

        A move that succeeds gives the new record; one that fails gives the exception :meth:`transition` would
        have raised (StateConflict, LeaseLost, JobNotFound, InvalidTransition), and the other moves still apply.
        """
        results: list[Job | Exception] = []
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

    #: Whether :meth:`transition_and_claim` is one round trip (a store that overrides it says so): the Worker's
    #: threads then take their next job with their completion instead of through the claiming loop.
    batches_claims: bool = False

    def transition_and_claim(
        self,
        moves: Sequence[Move],
        *,
        worker: str,
        lease: float,
        limit: int = 1,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        exclude_labels: Collection[str] = (),
        exclude_types: Collection[str] = (),
    ) -> tuple[list[Job | Exception], list[Job]]:
        """:meth:`transition_many` then :meth:`claim`: a worker finishing jobs and taking the next ones. A store
        that can do both in one round trip overrides this (one script on Redis); the default makes two calls."""
        moved = self.transition_many(moves) if moves else []
        excluded = {"exclude_labels": exclude_labels, "exclude_types": exclude_types}
        passed = {name: value for name, value in excluded.items() if value}  # as the queue passes them: when set
        return moved, self.claim(worker=worker, lease=lease, limit=limit, labels=labels, types=types, ids=ids, **passed)

    # -- comments ---------------------------------------------------------------------------------------------
    @abstractmethod
    def comment(self, job_id: int, body: str) -> Comment:
        """Add a comment to the job's history; raise JobNotFound when there is no such job."""

    @abstractmethod
    def comments(self, job_id: int) -> list[Comment]:
        """The job's comments, oldest first."""

    # -- settings (the admin schema, queue definitions) -------------------------------------------------------
    @abstractmethod
    def get_setting(self, key: str) -> Any:
        """A JSON value stored under ``key``, or None."""

    @abstractmethod
    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        """Replace the value under ``key`` by ``update(current)`` atomically and return the new value.

        ``current`` is the stored value (None when there is none); ``update`` returning None deletes the key. No
        update is lost when processes write one key at once: each ``update`` sees the value the previous one left
        (a store that checks a revision rather than locking may call ``update`` again on the fresh value, so it
        must have no side effects). A value that is not JSON raises :class:`~octoqueue.errors.InvalidJobData`
        and stores nothing.
        """

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key`` (None deletes it); visible to every process using the store."""
        self.update_setting(key, lambda _current: value)

    # -- arrivals from other processes -------------------------------------------------------------------------
    def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        """Call ``callback`` (from a background thread) when jobs may have become runnable through another store
        object, another process or another host (not through this object: its Queue reports those itself).

        Returns a function that stops the calls, or None when the store cannot watch (callers then poll). Once it
        returns, every job committed afterwards is reported.
        """
        return None

    async def watch_arrivals_on_loop(self, callback: Callable[[Arrival], None]) -> Callable[[], Awaitable[None]] | None:
        """As :meth:`watch_arrivals`, with ``callback`` called on the running event loop's thread by a task that
        reads the notifications itself: no thread between them and the loop (an asyncio server's waiting claims
        wake one thread hand-off sooner). Returns the coroutine function that stops it (await it on the same loop),
        or None when the store cannot (then use :meth:`watch_arrivals`). Each call holds its own connection."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The store is unusable afterwards."""

    # -- helpers shared by implementations --------------------------------------------------------------------
    def iter_jobs(self, **filters: Any) -> Iterator[Job]:
        """Every job matching ``filters`` (as :meth:`list_jobs`), following cursors."""
        cursor = None
        while True:
            page = self.list_jobs(cursor=cursor, **filters)
            yield from page.jobs
            if page.cursor is None:
                return
            cursor = page.cursor


# -- the job rules, written once --------------------------------------------------------------------------------
def is_runnable(
    job: Job,
    now: datetime,
    *,
    labels: Collection[str] = (),
    types: Collection[str] | None = None,
    ids: Collection[int] | None = None,
    exclude_labels: Collection[str] = (),
    exclude_types: Collection[str] = (),
) -> bool:
    """Whether :meth:`Store.claim` may take ``job`` at ``now`` with these filters.

    Pending and open, ``run_at`` absent or not after ``now``, carrying every one of ``labels`` (compared as GitHub
    compares label names: ignoring case), of one of ``types`` when given, one of ``ids`` when given; carrying
    none of ``exclude_labels`` (ignoring case) and of none of ``exclude_types`` (a job without a type is not
    excluded by type).
    """
    return (
        job.state is JobState.PENDING
        and job.open
        and (job.run_at is None or job.run_at <= now)
        and has_labels(job.labels, labels)
        and (types is None or job.type in types)
        and (ids is None or job.id in ids)
        and not (exclude_labels and has_any_label(job.labels, exclude_labels))
        and not (exclude_types and job.type in exclude_types)
    )


def is_listed(
    job: Job, *, states: Collection[JobState] | None = None, labels: Collection[str] = (), open: bool | None = None
) -> bool:
    """Whether :meth:`Store.list_jobs` with these filters lists ``job``: in one of ``states`` (any state, or none, when
    None), carrying every one of ``labels`` (ignoring case), open or closed as ``open`` says (either when None)."""
    return (
        (states is None or job.state in states)
        and (open is None or job.open == open)
        and has_labels(job.labels, labels)
    )


def claim_order(job: Job) -> tuple[int, int]:
    """The order claims take runnable jobs in: priority (0 first), then oldest (lowest id) first."""
    return (job.priority, job.id)


def claimed(job: Job, *, worker: str, lease: float, now: datetime) -> Job:
    """The record a claim makes of a runnable ``job``: processing, ``attempt`` + 1 (the fencing token), ``worker``
    set, the lease ending ``lease`` seconds after ``now``, ``started_at`` = ``now``."""
    return job.model_copy(
        update={
            "state": JobState.PROCESSING,
            "open": True,
            "attempt": job.attempt + 1,
            "worker": worker,
            "lease_expires_at": lease_until(now, lease),
            "started_at": now,
            "updated_at": now,
        }
    )


def checked_setting(key: str, value: Any) -> Any:
    """``value`` when it can be stored as a setting (JSON, no NaN); else :class:`~octoqueue.errors.InvalidJobData`."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidJobData(f"setting {key!r} is not a JSON value: {exc}") from exc
    return value


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


# -- optional abilities (the server asks with isinstance) ---------------------------------------------------------
@runtime_checkable
class RemovesLabels(Protocol):
    """A store whose jobs carry labels people add by hand (GitHub's ``requeue``), which the server takes off."""

    def remove_label(self, job_id: int, name: str) -> None:
        """Take the extra label ``name`` off job ``job_id``; a label already gone is fine. Status labels are refused
        (ValueError): they move only through :meth:`Store.transition`."""


class RateBudget(Protocol):
    """An API budget's counters, each None until the backend reported it."""

    @property
    def limit(self) -> int | None: ...

    @property
    def remaining(self) -> int | None: ...

    @property
    def reset(self) -> datetime | None: ...


@runtime_checkable
class ReportsRateLimit(Protocol):
    """A store behind a rate-limited API (GitHub); ``/metrics`` shows its budget."""

    @property
    def rate_limit(self) -> RateBudget:
        """The budget as the latest response told it."""


@runtime_checkable
class LinksDependencies(Protocol):
    """A store that shows people what a job waits for in its own way (GitHub's issue dependencies)."""

    def link_dependencies(self, job_id: int, parent_ids: Sequence[int]) -> None:
        """Record where people see it that job ``job_id`` is blocked by each of ``parent_ids`` (all existing jobs).
        Octoqueue itself reads a job's parents from its comment (see :mod:`octoqueue.dependencies`)."""

    def blocks_others(self, job_id: int) -> bool | None:
        """Whether job ``job_id`` blocks other jobs as the backend last said, without asking it again; None when
        not known. Lets a finish skip reading the ``dependents`` setting for a job nothing waits for."""


@runtime_checkable
class WakesWorkflows(Protocol):
    """A store that starts a worker workflow for each job it creates (GitHub's ``repository_dispatch``)."""

    def workflow_woken(self, job_id: int) -> bool | None:
        """Whether the wake-up for a job this store created recently went through; None when it sent none."""
