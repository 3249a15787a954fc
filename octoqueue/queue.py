"""The Queue: the original Octoqueue's API, over any store.

The queue core never imports a concrete store; it is handed a :class:`~octoqueue.stores.base.Store` or a URL.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from octoqueue.authorship import Authorship
from octoqueue.body import MAX_BODY_CHARS
from octoqueue.commands import defuse
from octoqueue.dependencies import WAITING_UNTIL, Dependencies, is_waiting
from octoqueue.errors import (
    InvalidJobData,
    InvalidTransition,
    JobNotFound,
    JobTooLarge,
    OctoqueueError,
    RateLimited,
    StateConflict,
)
from octoqueue.history import NOTE_ROOM, Attempt, Outcome, ended, note, read_history, with_note
from octoqueue.job import Comment, Job, NewJob, Page
from octoqueue.pauses import DEFAULT_TTL as DEFAULT_PAUSE_TTL
from octoqueue.pauses import PauseControl, Pauses
from octoqueue.retry import DEFAULT_MAX_ATTEMPTS, RetryPolicy
from octoqueue.sealing import is_encrypted, seal_store, unreadable
from octoqueue.states import FINISHED, JobState, Priority, label_key, queue_label
from octoqueue.stores import Store, open_store
from octoqueue.stores.base import Arrival, Move

if TYPE_CHECKING:
    from octoqueue.schedules import Schedule, Schedules

#: Results up to this size (serialised) are kept in the job's metadata too; larger ones only in the comment.
RESULT_META_LIMIT = 8_192
#: A failure's error is kept up to this many characters (in the job's metadata and its failure comment).
ERROR_LIMIT = 8_192
#: The attempt a result comment is sized with before the job's real attempt is known (the most digits).
_WIDEST_ATTEMPT = 10**9

JobRef = int | Job
T = TypeVar("T")

log = logging.getLogger("octoqueue.queue")

#: Jobs a Queue remembers having claimed (and not finished), for the lease a bare-id finish may wait within.
CLAIMS_REMEMBERED = 10_000
#: The shortest pause before a move refused by a rate limit is tried again (seconds).
MIN_PAUSE = 0.05

#: At most this many waiters are woken for one announcement of several jobs from another process.
MAX_WAKES_PER_ARRIVAL = 64

#: How long a claim waiting on a store that reports arrivals (:attr:`Queue.hears_other_processes`) sleeps at most
#: before asking the store again when it heard of nothing (seconds): a safety net for a lost notification and for
#: jobs due later that it was not told of (made before it listened). Jobs it was told of wake it at their ``run_at``.
IDLE_RECHECK = 5.0
#: How many ``run_at`` times to come a Queue keeps to wake its claims at (the earliest; later ones beyond it are
#: found by the recheck).
DUE_KEPT = 1024


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _job_id(job: JobRef) -> int:
    return job.id if isinstance(job, Job) else int(job)


class Queue:
    """A job queue over a store.

    ``store`` is a :class:`Store` or a store URL (``sqlite:///octoqueue.db``, ``memory://``,
    ``github://owner/repo``, ...); None opens env ``OCTOQUEUE_STORE`` or the embedded SQLite default.
    ``max_attempts`` and ``retry`` are the defaults for new jobs; ``lease`` is how long a claim holds a job
    (seconds) before another worker may take it back, unless renewed by :meth:`heartbeat`.
    ``encryption_keys`` (else env ``OCTOQUEUE_ENCRYPTION_KEY``; comma-separated, newest first) seals job data,
    results, errors and comments before they reach the store (see :mod:`octoqueue.sealing`).
    ``rate_limit_patience``: the longest a holder's ``complete``/``fail`` waits out a store's rate limit before
    raising it (None: as long as the lease allows; the server gives its HTTP requests 10 s, then answers 503).
    ``pause_check_interval``: seconds a claim trusts the pause state it read last (:mod:`octoqueue.pauses`).

    The primary names are ``enqueue_job``/``enqueue_many``, ``claim``/``claim_batch``, ``heartbeat``, ``complete``,
    ``fail``, ``requeue``, ``cancel``, ``release``, ``get``, ``wait``, ``result``, ``counts``, ``list_jobs``,
    ``comments``, ``clear``. The original Octoqueue's ``enqueue``, ``dequeue``, ``count_open``, ``get_job_status``
    and ``get_jobs`` are the compatibility surface, grouped in their own section below.
    """

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        retry: RetryPolicy | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        lease: float = 300.0,
        worker_name: str | None = None,
        encryption_keys: str | Sequence[str] | None = None,
        rate_limit_patience: float | None = None,
        pause_check_interval: float = DEFAULT_PAUSE_TTL,
    ) -> None:
        opened = store if isinstance(store, Store) else open_store(store)
        self.rate_limit_patience = rate_limit_patience
        self.store: Store = seal_store(opened, encryption_keys)
        self.pauses = PauseControl(self.store, pause_check_interval)
        self.retry_policy = retry or RetryPolicy()
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.lease = float(lease)
        self.worker_name = worker_name or default_worker_name()
        self._arrivals = threading.Condition()
        self._arrived = 0  # arrivals so far: a waiter sleeps only if none came since its claim began
        self._wakes = 0  # wake_claims() calls so far: a waiter returns after one
        self._due: list[datetime] = []  # heap: the run_at still to come of jobs heard of (DUE_KEPT at most)
        self._finished = threading.Condition()  # notified when this object finishes a job (see wait())
        self._listeners: list[tuple[Callable[..., None], bool]] = []
        self._claims: OrderedDict[int, Job] = OrderedDict()  # claimed here, not finished yet: their leases
        self._claims_lock = threading.Lock()
        self._watch_lock = threading.Lock()
        self._watching = False
        self._unwatch: Callable[[], None] | None = None
        self._watched_on_loop = False  # the store's arrivals are heard by a task (watch_store_on_loop)
        #: Which comments octoqueue wrote: only their hidden markers (history, parents) count.
        self.authorship = Authorship(self.store)
        #: The dependencies between this queue's jobs (``enqueue(..., depends_on=...)``, workflows).
        self.dependencies = Dependencies(self)

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def encrypted(self) -> bool:
        """Whether this queue seals job data, results and errors (see :mod:`octoqueue.sealing`)."""
        return is_encrypted(self.store)

    def close(self) -> None:
        with self._watch_lock:
            if self._unwatch is not None:
                self._unwatch()
                self._unwatch = None
        self.store.close()

    def __repr__(self) -> str:
        return f"Queue({self.store.url!r})"

    # -- producing ---------------------------------------------------------------------------------------------
    def enqueue_job(
        self,
        data: Any,
        title: str | None = None,
        additional_labels: Iterable[str] | None = None,
        *,
        priority: int | str = Priority.NORMAL,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        max_attempts: int | None = None,
        type: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        queue: str | None = None,
        depends_on: Iterable[JobRef] | None = None,
        on_parent_failure: str = "fail",
    ) -> Job:
        """Add a job and return its record.

        ``additional_labels`` must pass :meth:`LabelScheme.check_extra` (no status or other reserved label, any
        letter case), else :class:`~octoqueue.errors.InvalidLabel` (a ValueError); ``queue``: the named queue of
        the worker API the job joins (label ``queue:<name>``, which no caller may give as a label).
        ``priority``: 0 (critical) ... 4 (bulk) or a name; ``run_at``/``delay``: not before then;
        ``max_attempts``: tries before the job is dead (failed and closed); ``type``: which handler runs it;
        ``idempotency_key``: a second enqueue with the same key returns the first job; ``timeout``: seconds a
        handler may run before it is stopped.
        ``depends_on``: jobs (ids or records) that must all complete before this one may run; when one of them fails
        or is cancelled this job fails (``on_parent_failure="cancel"``: is cancelled) with an error naming it, and
        requeueing that parent brings it back (see :mod:`octoqueue.dependencies`). Not with ``run_at``/``delay``.
        """
        parents = None
        if depends_on is not None:
            if run_at is not None or delay is not None:
                raise ValueError("a job with depends_on runs when its parents completed: give no run_at or delay")
            parents = self.dependencies.check([_job_id(p) for p in depends_on], on_parent_failure)
            run_at = WAITING_UNTIL if parents else None
        new = self._new_job(
            data,
            title,
            additional_labels,
            priority=priority,
            run_at=run_at,
            delay=delay,
            max_attempts=max_attempts,
            type=type,
            idempotency_key=idempotency_key,
            timeout=timeout,
            queue=queue,
        )
        job = self.store.create(new)
        if parents:
            # A retry with the same key finds the job made (and attached, or refused and cancelled) before.
            known = idempotency_key is not None and (
                not is_waiting(job) or self.dependencies.record(job.id) is not None
            )
            return job if known else self.dependencies.attach(job, parents, on_parent_failure)
        self._notify(job)
        return job

    def enqueue_many(
        self,
        items: Iterable[Any],
        title: str | None = None,
        additional_labels: Iterable[str] | None = None,
        *,
        idempotency_keys: Sequence[str | None] | None = None,
        **options: Any,
    ) -> list[Job]:
        """Add a job for each item of ``items`` (its data) and return their records, in order: one round trip
        where the store can batch (PostgreSQL: one statement). ``title``, ``additional_labels`` and ``options``
        (as :meth:`enqueue_job`) apply to every job; ``idempotency_keys``, when given, has one key (or None) per
        item. Every item is checked before any job is made."""
        datas = list(items)
        keys = list(idempotency_keys) if idempotency_keys is not None else [None] * len(datas)
        if len(keys) != len(datas):
            raise ValueError(f"{len(datas)} items but {len(keys)} idempotency keys")
        if "idempotency_key" in options:
            raise ValueError("enqueue_many takes idempotency_keys, one per item")
        if "depends_on" in options:
            raise ValueError("enqueue_many takes no depends_on: enqueue jobs with parents one by one (or a Workflow)")
        if not datas:
            return []
        if any(key is not None and not isinstance(key, str) for key in keys):
            raise ValueError("idempotency keys must be strings or None")
        # The options are checked once (and a delay read from the store's clock once); each item's data on its own.
        shared = self._new_job(datas[0], title, additional_labels, **options)
        news = [shared.for_item(data, key, checked_data_json(data)) for data, key in zip(datas, keys, strict=True)]
        jobs = self.store.create_many(news)
        self._notify(*jobs)
        return jobs

    def _new_job(
        self,
        data: Any,
        title: str | None,
        additional_labels: Iterable[str] | None,
        *,
        priority: int | str = Priority.NORMAL,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        max_attempts: int | None = None,
        type: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        queue: str | None = None,
    ) -> NewJob:
        """The checked record of a job to create (see :meth:`enqueue_job`)."""
        if run_at is not None and delay is not None:
            raise ValueError("give run_at or delay, not both")
        if delay is not None:
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            run_at = self.store.now() + timedelta(seconds=seconds)
        if run_at is not None and run_at.tzinfo is None:
            raise ValueError("run_at must be timezone-aware (e.g. datetime.now(UTC))")
        attempts = self.max_attempts if max_attempts is None else int(max_attempts)
        if attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive")
        labels: tuple[str, ...] = ()
        if additional_labels or queue is not None:
            given = tuple(additional_labels or ())
            for label in given:
                self.store.labels.check_extra(label)
            unique: dict[str, str] = {}  # GitHub merges names that differ in case only: so does every store
            for name in ((queue_label(queue),) if queue is not None else ()) + given:
                unique.setdefault(label_key(name), name)
            labels = tuple(unique.values())
        text = checked_data_json(data)
        return NewJob.of(
            {
                "data": data,
                "title": title or default_title(),
                "labels": labels,
                "type": type,
                "priority": int(Priority.parse(priority)),
                "run_at": run_at,
                "max_attempts": attempts,
                "idempotency_key": idempotency_key,
                "timeout": float(timeout) if timeout.__class__ is int else timeout,
            },
            text,
        )

    # -- consuming ---------------------------------------------------------------------------------------------
    def claim(
        self,
        *,
        worker: str | None = None,
        lease: float | None = None,
        wait: float = 0,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        exclude_types: Collection[str] = (),
    ) -> Job | None:
        """Claim one job with a lease (see :meth:`claim_batch`); None when none arrives within ``wait``."""
        jobs = self.claim_batch(
            1, worker=worker, lease=lease, wait=wait, labels=labels, types=types, ids=ids, exclude_types=exclude_types
        )
        return jobs[0] if jobs else None

    def claim_batch(
        self,
        count: int,
        *,
        worker: str | None = None,
        lease: float | None = None,
        wait: float = 0,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        exclude_types: Collection[str] = (),
        poll_interval: float = 0.5,
        on_rejected: Callable[[Job], None] | None = None,
    ) -> list[Job]:
        """Claim up to ``count`` runnable jobs, highest priority then oldest first.

        Each job comes back processing, with ``attempt`` as its fencing token and ``lease_expires_at``. Jobs whose
        body is not valid JSON, or whose data is sealed with a key this queue lacks, are failed on the spot with an
        explanatory comment and a warning in the log, and not returned: ``on_rejected`` gets each, failed. Waits up to
        ``wait`` seconds for jobs; a job enqueued through this Queue object wakes the waiter at once, and so does one
        enqueued elsewhere when the store reports other processes' arrivals (:meth:`Store.watch_arrivals`). Where it
        does not, the waiting claim asks the store again every ``poll_interval`` seconds; where it does, only when
        woken, when a job it heard of reaches its ``run_at``, and every :data:`IDLE_RECHECK` seconds as a safety net.
        ``labels``, ``types``, ``ids`` and ``exclude_types`` narrow which jobs may be claimed (see
        :meth:`Store.claim`). While the queue is paused, or a label the claim asks for (:meth:`pause`), the claim
        gets nothing; jobs carrying another paused label are skipped.
        A store that cannot claim for now (GitHub's rate limit, :class:`~octoqueue.errors.RateLimited`) means no
        job yet, not an error: the claim waits it out within ``wait``, then returns [].
        """
        deadline = time.monotonic() + max(0.0, wait)
        if wait > 0:
            self._watch_store()
        wakes = self._wakes
        while True:
            seen = self._arrived
            pause = poll_interval
            asked = False  # the store was asked and had nothing (not paused, not rate-limited)
            try:
                paused = self.pauses.current()
                if paused.stops(labels):
                    jobs = []
                else:
                    excluded: dict[str, Any] = {}  # only when set: a store from before exclusions still claims
                    if paused.labels:
                        excluded["exclude_labels"] = tuple(paused.labels)
                    if exclude_types:
                        excluded["exclude_types"] = tuple(exclude_types)
                    jobs = self.store.claim(
                        worker=worker or self.worker_name,
                        lease=self.lease if lease is None else lease,
                        limit=count,
                        labels=labels,
                        types=types,
                        ids=ids,
                        **excluded,
                    )
                    asked = not jobs
            except RateLimited as exc:
                log.info("no claim for now: %s", exc)
                jobs, pause = [], max(exc.retry_after, MIN_PAUSE)
            else:
                usable = [job for job in jobs if not self._reject_broken(job, on_rejected)]
                if usable:
                    self._remember(*usable)
                    return usable
                if jobs:
                    continue  # only broken bodies this round; there may be good jobs behind them
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._wakes != wakes:
                return []
            if asked:
                pause = self.idle_pause(poll_interval)
            waiting = min(remaining, pause)
            self._refresh_pauses_ahead(waiting)
            with self._arrivals:
                if self._arrived == seen:
                    self._arrivals.wait(waiting)

    def idle_pause(self, poll_interval: float) -> float:
        """How long a claim that asked the store and found nothing may wait before it asks again (an arrival ends
        the wait sooner): ``poll_interval`` where the store does not report other processes' jobs; where it does,
        until the earliest ``run_at`` to come among the jobs heard of, :data:`IDLE_RECHECK` at most."""
        if not self.hears_other_processes:
            return poll_interval
        return self._until_due(max(poll_interval, IDLE_RECHECK))

    def _until_due(self, most: float) -> float:
        """Seconds until the earliest ``run_at`` still to come among the jobs heard of, ``most`` at most. Times that
        passed are forgotten: the claim just made found those jobs runnable, or somebody took them."""
        if not self._due:
            return most
        with self._arrivals:
            now = self.store.now()
            while self._due and self._due[0] <= now:
                heapq.heappop(self._due)
            if not self._due:
                return most
            return min(most, max((self._due[0] - now).total_seconds(), MIN_PAUSE))

    def _refresh_pauses_ahead(self, waiting: float) -> None:
        """Before a claim waits ``waiting`` seconds: read the pause state now if it goes stale meanwhile (up to half
        its interval ahead), so that the claim an arrival wakes goes straight to the store. A failed read is left
        to that claim, which reads again and reports it."""
        try:
            self.pauses.refresh_ahead(min(waiting, self.pauses.ttl / 2))
        except Exception as exc:
            log.debug("could not read the pause state ahead of a wait: %s", exc)

    @property
    def hears_other_processes(self) -> bool:
        """Whether the store reports jobs made runnable through other store objects and processes (it watches
        arrivals, :meth:`Store.watch_arrivals`), from the first wait or listener on; else claims poll for them."""
        return self._unwatch is not None or self._watched_on_loop

    def _reject_broken(self, job: Job, on_rejected: Callable[[Job], None] | None) -> bool:
        sealed = unreadable(job)
        error = sealed or job.body_error
        if error is None:
            return False
        fix = "Give this worker the queue's key" if sealed else "Fix the issue body"
        message = f"This job cannot run: {error}. {fix} and requeue the job."
        try:
            failed = self.store.transition(
                job.id,
                expected=JobState.PROCESSING,
                target=JobState.FAILED,
                attempt=job.attempt,
                last_error=error,
                worker=job.worker,
            )
            self._say(job.id, with_note(message, ended(failed, Outcome.FAILED, at=self.store.now(), error=error)))
        except StateConflict:
            return True
        self._settle_dependents(failed)
        log.warning("job %d cannot run and is failed: %s. %s and requeue it.", job.id, error, fix)
        if on_rejected is not None:
            on_rejected(failed)
        return True

    def heartbeat(self, job: Job, lease: float | None = None) -> Job:
        """Extend the lease of a job this worker holds; raise LeaseLost when it no longer holds it."""
        move = self._renewal(job, lease)
        renewed = self.store.transition(
            move.job_id, expected=move.expected, target=move.target, attempt=move.attempt, **move.changes
        )
        self._remember(renewed)
        return renewed

    def heartbeat_many(self, jobs: Sequence[Job], lease: float | None = None) -> list[Job | Exception]:
        """:meth:`heartbeat` for several jobs, in one round trip where the store batches transitions: one outcome
        per job, in order — the renewed record, or the exception :meth:`heartbeat` would have raised."""
        if not jobs:
            return []
        now = self.store.now()
        outcomes = self.store.transition_many([self._renewal(job, lease, now=now) for job in jobs])
        self._remember(*[outcome for outcome in outcomes if isinstance(outcome, Job)])
        return outcomes

    def _renewal(self, job: Job, lease: float | None, *, now: datetime | None = None) -> Move:
        """The move that renews ``job``'s lease for ``lease`` seconds (the queue's by default), fenced by its
        attempt."""
        until = (self.store.now() if now is None else now) + timedelta(seconds=self.lease if lease is None else lease)
        changes = {"lease_expires_at": until, "worker": job.worker}
        return Move(job.id, JobState.PROCESSING, JobState.PROCESSING, job.attempt, changes)

    def recover_expired(self) -> list[Job]:
        """Put jobs whose lease expired back to pending (failed when out of attempts); return them."""
        jobs = self.store.recover_expired()
        for job in jobs:
            then = "back to pending" if job.state is JobState.PENDING else "no attempts left: failed"
            text = f"Attempt {job.attempt} lost its lease ({then}): {job.last_error}."
            self._say_history(job.id, text, ended(job, Outcome.EXPIRED, at=self.store.now(), error=job.last_error))
        pending = [job for job in jobs if job.state is JobState.PENDING]
        if pending:
            self._notify(*pending)
        self._settle_dependents(*[job for job in jobs if job.state is JobState.FAILED])
        return jobs

    # -- finishing ---------------------------------------------------------------------------------------------
    def complete(self, job_id: JobRef, comment: str | None = None, result: Any = None) -> Job:
        """Mark a job completed, with an optional comment and result (posted as a comment).

        Given the :class:`Job` from :meth:`claim` as ``job_id``, the completion is fenced: it raises LeaseLost if
        the lease expired and the job was taken back. Given a bare id, it completes a pending or processing job.
        The comment and result are checked first: when they would not fit a comment on the store,
        :class:`~octoqueue.errors.JobTooLarge` is raised and the job is left as it was (fail it instead).
        """
        number, attempt = self._ref(job_id)
        self._check_comment(
            _result_comment(comment, result, _WIDEST_ATTEMPT if attempt is None else attempt),
            "the result comment",
            NOTE_ROOM,
        )
        changes: dict[str, Any] = self._holder(job_id)
        if result is not None:
            changes["result"] = _result_for_meta(result)
        expected = JobState.PROCESSING if attempt is not None else (JobState.PENDING, JobState.PROCESSING)
        done = self._patiently(
            lambda: self.store.transition(
                number, expected=expected, target=JobState.COMPLETED, attempt=attempt, **changes
            ),
            self._lease_end(job_id),
        )
        self._forget(number)
        text = _result_comment(comment, result, done.attempt)
        if text:
            self._say_patiently(number, with_note(text, ended(done, Outcome.COMPLETED, at=self.store.now())))
        self._notify_finished()
        self._settle_dependents(done)
        return done

    def complete_many(self, jobs: Sequence[JobRef], results: Sequence[Any] | None = None) -> list[Job | Exception]:
        """Complete several jobs as :meth:`complete` would, in one round trip where the store can batch (each
        fenced by its own attempt when given a :class:`Job`). One outcome per job, in order: the new record, or the
        exception :meth:`complete` would have raised (LeaseLost, StateConflict, JobNotFound, JobTooLarge for a
        result too large for a comment, that job left as it was) — the others still complete. A result
        (``results``, one per job, None for none) is kept as :meth:`complete` keeps it."""
        given, refused, moves = self._completions(jobs, results)
        return self._completed(given, refused, self.store.transition_many(moves) if moves else [])

    def complete_and_claim(
        self,
        jobs: Sequence[JobRef],
        results: Sequence[Any] | None,
        count: int,
        *,
        worker: str | None = None,
        lease: float | None = None,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        on_rejected: Callable[[Job], None] | None = None,
    ) -> tuple[list[Job | Exception], list[Job]]:
        """:meth:`complete_many`, then claim up to ``count`` jobs as :meth:`claim_batch` does without waiting: a
        worker handing back what it finished and taking what it runs next, in one round trip on a store that
        can (:meth:`Store.transition_and_claim`; Redis). A claimed job that cannot run is failed and given to
        ``on_rejected``, as :meth:`claim_batch` does. Returns the completions' outcomes and the claimed jobs."""
        given, refused, moves = self._completions(jobs, results)
        paused = self.pauses.current()
        excluded: dict[str, Any] = {"exclude_labels": tuple(paused.labels)} if paused.labels else {}
        taken: list[Job] = []
        if paused.stops(labels) or count < 1:  # a paused queue or label: the completions alone
            moved = self.store.transition_many(moves) if moves else []
        else:
            moved, taken = self.store.transition_and_claim(
                moves,
                worker=worker or self.worker_name,
                lease=self.lease if lease is None else lease,
                limit=count,
                labels=labels,
                types=types,
                ids=ids,
                **excluded,
            )
        outcomes = self._completed(given, refused, moved)
        usable = [job for job in taken if not self._reject_broken(job, on_rejected)]
        self._remember(*usable)
        return outcomes, usable

    def _completions(
        self, jobs: Sequence[JobRef], results: Sequence[Any] | None
    ) -> tuple[list[Any], dict[int, Exception], list[Move]]:
        """The completions' results, the jobs refused up front (by their place), and the moves for the rest."""
        given = list(results) if results is not None else [None] * len(jobs)
        if len(given) != len(jobs):
            raise ValueError(f"{len(jobs)} jobs but {len(given)} results")
        refused: dict[int, Exception] = {}
        moves: list[Move] = []
        for i, (job, result) in enumerate(zip(jobs, given, strict=True)):
            job_id, attempt = self._ref(job)
            try:
                text = _result_comment(None, result, _WIDEST_ATTEMPT if attempt is None else attempt)
                self._check_comment(text, "the result comment", NOTE_ROOM)
            except JobTooLarge as exc:
                refused[i] = exc
                continue
            expected = JobState.PROCESSING if attempt is not None else (JobState.PENDING, JobState.PROCESSING)
            changes = self._holder(job)
            if result is not None:
                changes["result"] = _result_for_meta(result)
            moves.append(Move(job_id, expected, JobState.COMPLETED, attempt, changes))
        return given, refused, moves

    def _completed(
        self, given: list[Any], refused: dict[int, Exception], moved: list[Job | Exception]
    ) -> list[Job | Exception]:
        """One outcome per completion, in order; the completed jobs forgotten, their result comments said, their
        waiters woken and their dependents settled."""
        results = iter(moved)
        outcomes = [refused[i] if i in refused else next(results) for i in range(len(given))]
        for outcome, result in zip(outcomes, given, strict=True):
            if isinstance(outcome, Job):
                self._forget(outcome.id)
                text = _result_comment(None, result, outcome.attempt)
                if text:
                    self._say(outcome.id, with_note(text, ended(outcome, Outcome.COMPLETED, at=self.store.now())))
        self._notify_finished()
        self._settle_dependents(*[outcome for outcome in outcomes if isinstance(outcome, Job)])
        return outcomes

    def fail(
        self,
        job_id: JobRef,
        comment: str | None = None,
        *,
        error: str | None = None,
        retry: bool = False,
        delay: float | None = None,
    ) -> Job:
        """Fail a job. With ``retry=True`` and attempts left it goes back to pending after a backoff delay
        (``delay`` overrides the policy); otherwise it is failed for good and closed. Returns the new record.
        ``job_id`` is the job's id, or its :class:`Job` from :meth:`claim` (then fenced, as :meth:`complete`)."""
        number, attempt = self._ref(job_id)
        until = self._lease_end(job_id)
        current = job_id if isinstance(job_id, Job) else self._patiently(lambda: self.store.get(number), until)
        # A failure must always be recordable: text too long for the store is cut (saying so), never refused.
        error = self._fit(error or comment or "This job has failed", ERROR_LIMIT)
        holder = current.worker or self._holder(job_id).get("worker")
        if retry and current.attempts_left > 0:
            wait = self.retry_policy.delay(current.attempts_used) if delay is None else delay
            run_at = self.store.now() + timedelta(seconds=wait)
            new = self._patiently(
                lambda: self.store.transition(
                    number,
                    expected=JobState.PROCESSING,
                    target=JobState.PENDING,
                    attempt=attempt,
                    run_at=run_at,
                    last_error=error,
                ),
                until,
            )
            self._forget(number)
            self._say_patiently(
                number,
                with_note(
                    f"Attempt {current.attempt} failed: {error}\n\nRetrying in {wait:.1f} s "
                    f"({new.attempts_left} attempt(s) left).",
                    ended(new, Outcome.RETRIED, at=self.store.now(), worker=holder, error=error),
                ),
            )  # ERROR_LIMIT leaves room for the words around the error and the attempt's footer
            self._notify(new)
            return new
        expected = JobState.PROCESSING if attempt is not None else (JobState.PENDING, JobState.PROCESSING)
        kept = {"worker": holder} if holder else {}
        new = self._patiently(
            lambda: self.store.transition(
                number, expected=expected, target=JobState.FAILED, attempt=attempt, last_error=error, **kept
            ),
            until,
        )
        self._forget(number)
        footer = note(ended(new, Outcome.FAILED, at=self.store.now(), error=error))
        text = self._fit(comment, self.store.max_comment_chars - len(footer)) if comment else None
        self._say_patiently(number, (text or f"This job has failed: {error}") + footer)
        self._notify_finished()
        self._settle_dependents(new)
        return new

    def requeue(self, job_id: JobRef, comment: str | None = None) -> Job:
        """Put any job back to pending with a fresh attempt budget (its failed/completed label goes)."""
        number = _job_id(job_id)
        current = self.store.get(number)
        if current.state is JobState.PENDING:  # pending -> pending releases a waiting job; it is no requeue
            raise InvalidTransition(number, current.state, JobState.PENDING)
        new = self.store.transition(
            number,
            expected=current.state,
            target=JobState.PENDING,
            attempt=current.attempt,
            attempt_base=current.attempt,
            run_at=None,
        )
        last = read_history(current, ()) if current.state in FINISHED else []
        self._say(number, with_note(comment or "Job has been requeued for processing", last[-1] if last else None))
        new = self.dependencies.requeued(new)
        self._notify(new)
        return new

    def release(self, job: Job) -> Job:
        """Give a claimed job back unrun (e.g. on shutdown): pending again, the attempt not counted."""
        released = self.store.transition(
            job.id,
            expected=JobState.PROCESSING,
            target=JobState.PENDING,
            attempt=job.attempt,
            attempt_base=job.attempt_base + 1,
            run_at=None,
        )
        self._forget(job.id)
        text = f"Attempt {job.attempt} was given back (it does not count against the job's attempts)."
        self._say_history(job.id, text, ended(released, Outcome.RELEASED, at=self.store.now(), worker=job.worker))
        return released

    def cancel(self, job: JobRef, comment: str | None = None) -> Job:
        """Cancel a pending or processing job (closed, label ``cancelled``). A running handler's later result
        is refused."""
        job_id = _job_id(job)
        new = self.store.transition(job_id, expected=(JobState.PENDING, JobState.PROCESSING), target=JobState.CANCELLED)
        self._say(job_id, comment or "This job has been cancelled")
        self._notify_finished()
        self._settle_dependents(new)
        return new

    def requeue_where(
        self,
        *,
        states: Collection[JobState | str] = (JobState.FAILED,),
        labels: Collection[str] = (),
        comment: str | None = None,
        dry_run: bool = False,
    ) -> list[Job]:
        """Requeue every job in one of ``states`` carrying all ``labels`` (as :meth:`requeue`); return them. A job
        that changed meanwhile is left as it is. ``dry_run``: return the jobs that would be requeued."""
        return self._each_where(states, labels, dry_run, lambda job_id: self.requeue(job_id, comment))

    def cancel_where(
        self,
        *,
        states: Collection[JobState | str] = (JobState.PENDING,),
        labels: Collection[str] = (),
        comment: str | None = None,
        dry_run: bool = False,
    ) -> list[Job]:
        """Cancel every pending or processing job in ``states`` carrying all ``labels``; return them."""
        wanted = [JobState(s) for s in states]
        if not set(wanted) <= {JobState.PENDING, JobState.PROCESSING}:
            raise ValueError("only pending or processing jobs can be cancelled")
        return self._each_where(wanted, labels, dry_run, lambda job_id: self.cancel(job_id, comment))

    def _each_where(
        self,
        states: Collection[JobState | str],
        labels: Collection[str],
        dry_run: bool,
        act: Callable[[int], Job],
    ) -> list[Job]:
        wanted = [JobState(s) for s in states]
        if not wanted:
            raise ValueError("name at least one state")
        found = list(self.store.iter_jobs(states=wanted, labels=tuple(labels)))  # first list, then act: no cursor
        if dry_run:  # shifts under our own changes
            return found
        done: list[Job] = []
        for job in found:
            try:
                done.append(act(job.id))
            except (StateConflict, InvalidTransition, JobNotFound):
                continue  # moved on, or gone, since it was listed
        return done

    # -- reading -----------------------------------------------------------------------------------------------
    def history(self, job_id: int) -> list[Attempt]:
        """Every attempt of the job, oldest first: worker, start, end, outcome, error and duration of each (see
        :mod:`octoqueue.history`), from the comments octoqueue wrote (:mod:`octoqueue.authorship`: a person's
        comment with a forged marker is no history). Two reads: the job and its comments. Raises JobNotFound."""
        job = self.store.get(int(job_id))
        return read_history(job, self.authorship.own_comments(self.store.comments(job.id)))

    def get(self, job_id: int) -> Job:
        """The job's record; raises JobNotFound."""
        return self.store.get(int(job_id))

    def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """Block until the job is finished (completed, failed or cancelled) and return it; raise
        :class:`TimeoutError` when ``timeout`` seconds pass first. A job this Queue object finishes wakes the waiter
        at once; one finished by another process is seen within the store's ``wait_poll_interval`` (20 ms on the
        local stores, 2 s of conditional GETs on GitHub)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.store.get(int(job_id))
            if job.state in FINISHED:
                return job
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"job {job.id} is still {job.status or 'unlabelled'} after {timeout} s")
            pause = (
                self.store.wait_poll_interval if remaining is None else min(remaining, self.store.wait_poll_interval)
            )
            with self._finished:
                self._finished.wait(pause)

    def result(self, job_id: int, timeout: float | None = 0) -> Any:
        """The result of a completed job (None when it returned none). With ``timeout`` (None: no limit) wait for
        it to finish first. Raise :class:`StateConflict` when it failed or was cancelled, or is not finished."""
        job = self.wait(job_id, timeout) if timeout != 0 else self.store.get(int(job_id))
        if job.state is not JobState.COMPLETED:
            why = f": {job.last_error}" if job.last_error and job.state is JobState.FAILED else ""
            raise StateConflict(job.id, f"it has no result, it is {job.status or 'unlabelled'}{why}")
        if isinstance(job.result, dict) and job.result.get("truncated") is True:
            # Only octoqueue's own comments: on GitHub anyone may comment a result block under a finished job.
            return _result_from_comments(job.id, self.authorship.own_comments(self.store.comments(job.id)))
        return job.result

    def counts(self) -> dict[JobState, int]:
        return self.store.count()

    def list_jobs(
        self,
        *,
        states: Collection[JobState | str] | None = None,
        labels: Collection[str] = (),
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """One page of jobs, oldest first."""
        wanted = [JobState(s) for s in states] if states is not None else None
        return self.store.list_jobs(states=wanted, labels=labels, cursor=cursor, limit=limit)

    def create_comment(self, job_id: int, comment: str | None = None) -> Comment | None:
        """Post ``comment`` on the job (defused: never a ChatOps command); None posts nothing and returns None."""
        if comment is None:
            return None
        self._check_comment(comment, "the comment")
        return self._say(int(job_id), comment)

    def _say(self, job_id: int, text: str) -> Comment:
        """Post ``text`` on the job, defused: no line of a comment octoqueue writes is ever a ChatOps command."""
        return self.store.comment(job_id, defuse(text))

    def _say_history(self, job_id: int, text: str, attempt: Attempt | None) -> None:
        """Post the comment of a move already made, which only records the attempt it ended: a store that refuses
        it now is logged, not raised (the move stands; the history then lacks that attempt's worker and times)."""
        try:
            self._say(job_id, with_note(text, attempt))
        except OctoqueueError as exc:
            number = attempt.attempt if attempt is not None else "?"
            log.warning("job %s: the history comment of attempt %s was not posted: %s", job_id, number, exc)

    def _check_comment(self, text: str | None, what: str, room: int = 0) -> None:
        """Raise :class:`JobTooLarge` when ``text``, as :meth:`_say` would post it with ``room`` characters more,
        does not fit a comment."""
        size = len(defuse(text)) if text else 0
        if size + room > self.store.max_comment_chars:
            raise JobTooLarge(
                f"{what} is {size:,} characters; a comment holds at most {self.store.max_comment_chars:,} "
                "(GitHub's limit, kept on every store); the job was not changed"
            )

    @staticmethod
    def _fit(text: str, limit: int) -> str:
        """``text``, cut (with a note saying how much) so that :meth:`_say` posts at most ``limit`` characters."""
        defused = defuse(text)
        if len(defused) <= limit:
            return text
        note = f"\n\n[… {len(text):,} characters in all; cut to fit]"
        return text[: max(0, limit - len(note) - (len(defused) - len(text)))] + note

    def comments(self, job_id: int) -> list[Comment]:
        return self.store.comments(int(job_id))

    def clear(self, older_than: float | timedelta = 7 * 86400, states: Collection[JobState] = FINISHED) -> int:
        """Delete finished jobs not updated for ``older_than`` (seconds or timedelta); return how many."""
        age = older_than if isinstance(older_than, timedelta) else timedelta(seconds=float(older_than))
        bad = set(states) - FINISHED
        if bad:
            raise ValueError(f"only finished jobs can be cleared, not {sorted(s.value for s in bad)}")
        return self.store.purge(states=states, older_than=self.store.now() - age)

    def add_arrival_listener(self, callback: Callable[..., None], *, with_job: bool = False) -> None:
        """Call ``callback()`` (from whichever thread) whenever a job may have become runnable through this
        Queue object (an enqueue, a retry, a requeue, a lease recovery) or, where the store reports them
        (:meth:`Store.watch_arrivals`), through another process. It must be quick and must not raise.

        With ``with_job=True`` it is called as ``callback(job)`` instead, once per job, with the job's record as
        the change left it (its state, its labels, its ``run_at`` when it may run only later; None when not
        known), so that a listener can wake only the claimers the job is for. A job from another process comes
        as an :class:`~octoqueue.stores.base.Arrival`, which has those three fields too."""
        self._listeners.append((callback, with_job))
        self._watch_store()

    def wake_claims(self) -> None:
        """End the waits of the claims waiting in this Queue object now: each tries once more and returns, so that
        its caller can claim again with new filters (a worker whose per-type limit freed up calls it)."""
        with self._arrivals:
            self._wakes += 1
            self._arrived += 1
            self._arrivals.notify_all()

    def remove_arrival_listener(self, callback: Callable[..., None]) -> None:
        entry = next((entry for entry in self._listeners if entry[0] == callback), None)
        if entry is None:
            raise ValueError(f"{callback!r} is not an arrival listener")
        self._listeners.remove(entry)

    # -- queue control (see octoqueue.pauses) -----------------------------------------------------------------
    def pause(self, label: str | None = None) -> Pauses:
        """Stop claims of every job, or (``label``) of the jobs carrying that label — a named queue ``q`` is the
        label ``queue:q``. Enqueues are still taken and jobs in hand finish. Every process sharing the store
        stops within its ``pause_check_interval``; this Queue at once. Returns the new state."""
        return self.pauses.pause(label)

    def resume(self, label: str | None = None) -> Pauses:
        """Undo :meth:`pause` of the whole queue (label pauses stay), or of ``label``; wakes waiting claims."""
        state = self.pauses.resume(label)
        self._notify()
        return state

    def paused(self) -> Pauses:
        """What is paused now, read from the store."""
        return self.pauses.read()

    # -- the original Octoqueue's names: the compatibility surface -------------------------------------------
    # Kept with the original's parameters and return shapes (tests/core/test_original_api.py holds them); new code
    # uses the primary names: enqueue_job, claim, counts, get, list_jobs.
    def enqueue(
        self,
        data: Any,
        title: str | None = None,
        additional_labels: Iterable[str] | None = None,
        **options: Any,
    ) -> int:
        """Add a job; return its id (the issue number). Options as :meth:`enqueue_job`.

        Compatibility surface (the original Octoqueue's name); primary: :meth:`enqueue_job`, which returns the Job.
        """
        return self.enqueue_job(data, title, additional_labels, **options).id

    def dequeue(self, wait_sec: float = 0) -> tuple[int, Any] | None:
        """Claim the next job; return ``(job_id, data)``, or None when none arrives within ``wait_sec`` (also while
        the store is rate limited: the original's loops never see a RateLimited).

        Compatibility surface; primary: :meth:`claim`, which returns the Job with its lease and attempt.
        """
        job = self.claim(wait=wait_sec)
        return (job.id, job.data) if job is not None else None

    def count_open(self, wait_sec: float = 0) -> int:
        """Jobs pending or processing, counted after waiting ``wait_sec`` seconds (as the original Octoqueue).

        Compatibility surface; primary: :meth:`counts`.
        """
        if wait_sec > 0:
            time.sleep(wait_sec)
        counts = self.store.count([JobState.PENDING, JobState.PROCESSING])
        return sum(counts.values())

    def get_job_status(self, job_id: int) -> str | None:
        """The job's status label text, or None when there is no such job (or it has no status label).

        Compatibility surface; primary: :meth:`get` (the Job, its ``state``).
        """
        try:
            return self.store.get(int(job_id)).status
        except JobNotFound:
            return None

    def get_jobs(self, labels: Iterable[str] = ("processing",), state: str = "open") -> list[tuple[int, datetime, Any]]:
        """``[(job_id, created_at, data)]`` for jobs carrying all ``labels`` (status labels included) in issue
        ``state`` open, closed or all — the original Octoqueue's shape.

        Compatibility surface; primary: :meth:`list_jobs` (pages of Jobs).
        """
        if state not in ("open", "closed", "all"):
            raise ValueError("state must be open, closed or all")
        wanted_states: set[JobState] = set()
        extras = []
        for label in labels:
            found = self.store.labels.state_of([label])
            if found is not None and self.store.labels.is_status(label):
                wanted_states.add(found)
            else:
                extras.append(label)
        if len(wanted_states) > 1:
            return []  # a job carries one status label: asking for two at once matches nothing
        is_open = {"open": True, "closed": False, "all": None}[state]
        jobs = self.store.iter_jobs(states=wanted_states or None, labels=extras, open=is_open)
        return [(job.id, job.created_at, job.data) for job in jobs]

    # -- schedules (see octoqueue.schedules; oq's method names) -----------------------------------------------
    @property
    def schedules(self) -> Schedules:
        """This queue's cron schedules."""
        from octoqueue.schedules import Schedules

        return Schedules(self)

    def create_schedule(self, schedule_id: str, data: Any, cron: str, **options: Any) -> Schedule:
        """Enqueue ``data`` on the cron timetable ``cron``; options as :meth:`Schedules.create` (``title``,
        ``type``, ``labels``, ``priority``, ``max_attempts``, ``timeout``, ``timezone``, ``catchup``)."""
        return self.schedules.create(schedule_id, data, cron, **options)

    def get_schedule(self, schedule_id: str) -> Schedule:
        return self.schedules.get(schedule_id)

    def list_schedules(self) -> list[Schedule]:
        return self.schedules.all()

    def enable_schedule(self, schedule_id: str) -> Schedule:
        return self.schedules.enable(schedule_id)

    def disable_schedule(self, schedule_id: str) -> Schedule:
        return self.schedules.disable(schedule_id)

    def delete_schedule(self, schedule_id: str) -> None:
        self.schedules.delete(schedule_id)

    def trigger_schedule(self, schedule_id: str) -> Job:
        """Enqueue the schedule's job now, outside its timetable."""
        return self.schedules.trigger(schedule_id)

    def run_schedules(self) -> list[Job]:
        """Fire every due tick of every enabled schedule (each tick once, however many processes call this)."""
        return self.schedules.run_due()

    # -- internals ---------------------------------------------------------------------------------------------
    def _remember(self, *jobs: Job) -> None:
        with self._claims_lock:
            for job in jobs:
                self._claims[job.id] = job
                self._claims.move_to_end(job.id)
            while len(self._claims) > CLAIMS_REMEMBERED:
                self._claims.popitem(last=False)

    def _forget(self, job_id: int) -> None:
        with self._claims_lock:
            self._claims.pop(job_id, None)

    def _lease_end(self, job: JobRef) -> datetime | None:
        """When the lease this queue holds on ``job`` ends (a Job from :meth:`claim`, or the id of one it claimed;
        the latest renewal counts), else None."""
        with self._claims_lock:
            known = self._claims.get(_job_id(job))
        ends = [
            held.lease_expires_at
            for held in (job, known)
            if isinstance(held, Job)
            and held.lease_expires_at is not None
            and (not isinstance(job, Job) or held.attempt == job.attempt)
        ]
        return max(ends, default=None)

    def _patiently(self, move: Callable[[], T], until: datetime | None) -> T:
        """``move()``, tried again while GitHub's rate limit refuses it and ``until`` (the end of the lease the
        queue holds, on the store's clock) leaves time to wait the limit out: a holder's finish is not lost to a
        rate limit. Otherwise the :class:`RateLimited` is raised (DeadlinePassed: the lease would be outrun)."""
        if until is not None and self.rate_limit_patience is not None:
            until = min(until, self.store.now() + timedelta(seconds=self.rate_limit_patience))
        while True:
            try:
                return move()
            except RateLimited as exc:
                pause = max(exc.retry_after, MIN_PAUSE)
                if until is None or self.store.now() + timedelta(seconds=pause) >= until:
                    raise
                log.info("rate limited; trying again in %.1f s, within the lease: %s", pause, exc)
                self._pause(pause)

    def _pause(self, seconds: float) -> None:
        """Let ``seconds`` pass before a store call is tried again (on an event loop, :mod:`octoqueue.aio` awaits)."""
        time.sleep(seconds)

    def _say_patiently(self, job_id: int, text: str) -> Comment:
        """:meth:`_say` for the comment that follows a move: the move is done, so a rate limit is waited out for up
        to one lease length rather than reported as if the move had failed."""
        return self._patiently(lambda: self._say(job_id, text), self.store.now() + timedelta(seconds=self.lease))

    def _holder(self, job: JobRef) -> dict[str, Any]:
        """``{"worker": name}`` for the worker holding ``job`` when this queue knows it (a Job from a claim, or one it
        claimed), else {}: a finishing move keeps it in the record, for the job's history."""
        with self._claims_lock:
            known = self._claims.get(_job_id(job))
        worker = (job.worker if isinstance(job, Job) else None) or (known.worker if known is not None else None)
        return {"worker": worker} if worker else {}

    def _ref(self, job: JobRef) -> tuple[int, int | None]:
        if isinstance(job, Job):
            return job.id, job.attempt
        return int(job), None

    async def watch_store_on_loop(self) -> Callable[[], Awaitable[None]] | None:
        """Hear other processes' arrivals on the running event loop, where the store can (PostgreSQL, Redis: a task
        reads the notifications and calls this Queue's arrival listeners on the loop's thread): an asyncio server's
        waiting claims then wake without a hand-off from the store's watch thread. Call it before anything waits
        (else the thread already listens, and this returns None). Returns the coroutine function that stops it, to
        await on the same loop before :meth:`close`; None when the store watches in a thread (or not at all)."""
        if self._watching:
            return None
        stop = await self.store.watch_arrivals_on_loop(self._arrived_elsewhere)
        if stop is None:
            return None
        with self._watch_lock:
            started = not self._watching
            if started:
                self._watching = self._watched_on_loop = True
        if not started:  # a thread began listening meanwhile
            await stop()
            return None
        return stop

    def _watch_store(self) -> None:
        """Have the store report jobs made runnable by other processes, from the first time anyone waits."""
        if self._watching:
            return
        with self._watch_lock:
            if not self._watching:
                self._unwatch = self.store.watch_arrivals(self._arrived_elsewhere)
                self._watching = True

    def _arrived_elsewhere(self, arrival: Arrival) -> None:
        wakes = 1 if arrival.labels is None else min(arrival.count, MAX_WAKES_PER_ARRIVAL)
        self._notify(*[arrival] * wakes)

    def _settle_dependents(self, *jobs: Job) -> None:
        """Release or fail the jobs waiting for ``jobs``, which just finished. The finish stands whatever happens
        here: a store error is logged, and :meth:`settle_waiting` (which workers run now and then) catches up."""
        if not jobs:
            return
        try:
            self.dependencies.finished(jobs)
        except Exception as exc:  # the jobs are finished whatever happens: their dependents are settled later
            log.warning("the jobs waiting for %s are settled later: %s", ", ".join(str(j.id) for j in jobs), exc)

    def settle_waiting(self) -> int:
        """Settle the jobs waiting for parents that finished without settling them (a finisher that stopped
        half-way, an issue closed by hand); return how many parents were looked at. Workers run it every minute."""
        return self.dependencies.catch_up()

    def _notify_finished(self) -> None:
        with self._finished:
            self._finished.notify_all()

    def _notify(self, *jobs: Job | Arrival) -> None:
        with self._arrivals:
            self._arrived += 1
            # an arrival may come several times (wakes); one job (an enqueue) needs no sorting out
            for heard in jobs if len(jobs) == 1 else {id(job): job for job in jobs}.values():
                due = heard.run_at
                if due is not None and due < WAITING_UNTIL:
                    heapq.heappush(self._due, due)
            if len(self._due) > DUE_KEPT:  # keep the earliest half; the others are found by a recheck
                self._due = heapq.nsmallest(DUE_KEPT // 2, self._due)
            self._arrivals.notify_all()
        for callback, with_job in list(self._listeners):
            if with_job:
                for job in jobs or (None,):
                    callback(job)
            else:
                callback()


def check_data_size(data: Any) -> None:
    """Raise :class:`InvalidJobData` unless ``data`` is JSON, :class:`JobTooLarge` unless it fits a job body."""
    checked_data_json(data)


#: The checks' encoders, each made once (``json.dumps`` with options builds a new one each call).
_COMPACT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_INDENTED = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=2).encode


def checked_data_json(data: Any) -> str:
    """``data`` as the stores write it (:data:`octoqueue.job.encode_data`: compact JSON), once it is checked as
    :func:`check_data_size` checks it: the queue hands the text on with the job, so the data is encoded once."""
    try:
        # Compact first (C encoder; indenting runs Python's): n characters compact are at most n + n * (n + 1)
        # indented (a line break and at most n spaces per token), under the limit for n <= 250.
        compact = _COMPACT(data)
        if len(compact) <= 250:
            return compact
        text = _INDENTED(data)
    except (TypeError, ValueError) as exc:
        raise InvalidJobData(f"job data must be JSON (objects, arrays, strings, numbers): {exc}") from exc
    # The rendered body adds the fence and up to ~1 KB of metadata; keep the same limit on every store so a
    # queue can move to GitHub.
    if len(text) > MAX_BODY_CHARS - 1_024:
        raise JobTooLarge(
            f"the job data is {len(text):,} characters as JSON; a job body holds at most "
            f"{MAX_BODY_CHARS - 1_024:,} (GitHub's issue body limit less octoqueue's metadata)"
        )
    return compact


#: The default title of the jobs enqueued within one second: ``(the second, "Job <its ISO time>")``.
_titled: tuple[int, str] = (0, "")


def default_title() -> str:
    """``Job <the time, to the second, UTC>``: made once a second, not once a job."""
    global _titled
    second = int(time.time())
    if _titled[0] != second:
        _titled = (second, f"Job {datetime.fromtimestamp(second, UTC).isoformat(timespec='seconds')}")
    return _titled[1]


def _result_for_meta(result: Any) -> Any:
    text = json.dumps(result, ensure_ascii=False, default=str)
    if len(text) <= RESULT_META_LIMIT:
        return json.loads(text)
    return {"truncated": True, "size": len(text), "see": "the result comment"}


_RESULT_BLOCK = re.compile(r"\*\*Result\*\* \(attempt \d+\):\n\n(`{3,})json\n(.*)\n\1", re.S)


def _result_from_comments(job_id: int, comments: list[Comment]) -> Any:
    """The full result of a job whose metadata holds only its size: the newest result comment's JSON."""
    for comment in reversed(comments):
        # The last block: the text a completion was given comes before its result, and may quote anything.
        starts = [found.start() for found in re.finditer(r"\*\*Result\*\* \(attempt ", comment.body)]
        for start in reversed(starts):
            match = _RESULT_BLOCK.match(comment.body, start)
            if match is not None:
                return json.loads(match.group(2))
    raise StateConflict(job_id, "its result was too large for its record and no result comment holds it")


def _result_comment(comment: str | None, result: Any, attempt: int) -> str | None:
    parts = []
    if comment:
        parts.append(comment)
    if result is not None:
        text = json.dumps(result, ensure_ascii=False, indent=2, default=str)
        fence = "```"
        while fence in text:
            fence += "`"
        parts.append(f"**Result** (attempt {attempt}):\n\n{fence}json\n{text}\n{fence}")
    note = "\n\n".join(parts)
    return note or None
