"""The Worker: claims jobs, runs handlers, keeps leases alive, and finishes jobs — fenced by their attempt.

::

    worker = Worker(queue, concurrency=4)

    @worker.handler("resize")
    def resize(data):
        ...
        return {"ok": True}

    worker.run()            # until SIGTERM/SIGINT; run(once=True) drains what is runnable now
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import Any, Generic, Literal, Protocol, TypeVar

from octoqueue.errors import (
    AccessDenied,
    ConfigurationError,
    JobTooLarge,
    LeaseLost,
    OctoqueueError,
    PermanentError,
    RetryableError,
    StateConflict,
)
from octoqueue.handlers import ChildRunner, CommandHandler, Handler, describe, wants_job
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.registry import REGISTER_EVERY, register, unregister
from octoqueue.states import JobState

log = logging.getLogger("octoqueue.worker")

#: How many of the oldest pending jobs a worker without a catch-all handler looks at for types it cannot run.
UNHANDLED_SAMPLE = 100
#: How often (seconds) a worker settles jobs left waiting for parents that finished (Queue.settle_waiting).
SETTLE_INTERVAL = 60.0

OnFailure = Literal["retry", "fail"]


@dataclass
class JobReport:
    """What became of one job a worker took; ``seconds``: how long its handler ran."""

    id: int
    title: str
    status: str
    attempt: int
    seconds: float
    result: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "attempt": self.attempt,
            "seconds": round(self.seconds, 3),
        }
        if self.result is not None:
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class WorkerStats:
    """What a worker did. ``lost``: jobs whose lease was taken back before they finished (their result was
    refused); ``released``: jobs given back unrun at shutdown; ``seconds``: how long :meth:`Worker.run` ran."""

    processed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    lost: int = 0
    released: int = 0
    seconds: float = 0.0
    reports: list[JobReport] = field(default_factory=list)

    @property
    def job_ids(self) -> list[int]:
        return [r.id for r in self.reports]

    def add(self, report: JobReport) -> None:
        """Count a job the worker is done with, by its report's status."""
        self.processed += 1
        self.reports.append(report)
        if report.status == "completed":
            self.completed += 1
        elif report.status == "failed":
            self.failed += 1
        elif report.status == "pending":
            self.retried += 1
        elif report.status == "lost":
            self.lost += 1

    @property
    def jobs_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def all_succeeded(self) -> bool:
        """No job failed, was left to retry, was lost or could not be recorded."""
        return self.completed == self.processed

    def summary(self) -> str:
        """One line: what was done, in how long, how fast."""
        return (
            f"processed {self.processed} in {self.seconds:.1f} s ({self.jobs_per_second:.1f} jobs/s): "
            f"{self.completed} completed, {self.failed} failed, {self.retried} to retry, {self.lost} lost, "
            f"{self.released} released"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "completed": self.completed,
            "failed": self.failed,
            "retried": self.retried,
            "lost": self.lost,
            "released": self.released,
            "seconds": round(self.seconds, 3),
            "jobs_per_second": round(self.jobs_per_second, 3),
            "job_ids": self.job_ids,
            "jobs": [r.as_dict() for r in self.reports],
        }


def parse_type_limits(items: Collection[str]) -> dict[str, int]:
    """``["email=2", ...]`` (the command line's ``--limit``) as ``{"email": 2}``; a bad item is a ConfigurationError."""
    limits: dict[str, int] = {}
    for item in items:
        name, sep, count = item.partition("=")
        if not sep or not name.strip() or not count.strip().isdigit() or int(count) < 1:
            raise ConfigurationError(f"--limit {item!r}: give TYPE=N, N a whole number of at least 1")
        limits[name.strip()] = int(count)
    return limits


class _JobThreads:
    """Up to ``size`` threads running the calls handed to :meth:`submit`, in order. A ThreadPoolExecutor without
    its futures (nothing waits on one: :meth:`Worker._process` records every outcome itself), which keeps a job's
    hand-off to a thread down to one queue put."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._tasks: SimpleQueue[tuple[Callable[[Job], None], Job] | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[[Job], None], job: Job) -> None:
        self._tasks.put((fn, job))
        if len(self._threads) < self._size:
            thread = threading.Thread(target=self._loop, name=f"{self._name}_{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def _loop(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            fn, job = task
            try:
                fn(job)
            except BaseException:  # pragma: no cover - _process records every outcome itself
                log.exception("job %d: unexpected error in its thread", job.id)

    def shutdown(self, *, wait: bool) -> None:
        """Drop calls not started yet, let the threads end after their current call; ``wait`` for them."""
        while True:
            try:
                self._tasks.get_nowait()
            except Empty:
                break
        for _ in self._threads:
            self._tasks.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


class _Completions:
    """Completes the jobs the job threads hand it, several at once through :meth:`Queue.complete_many` when they
    finish together. A thread that finishes while no completion call runs makes one at once (no waiting for
    company) with every job then waiting, its own included; jobs that finish during that call wait for it to end,
    and the first of them makes the next call for all of them. So each thread makes at most one call, each
    completion stays fenced by its job's attempt, and each thread gets its own outcome.

    A thread may ask for its next job with its completion (``take_next``): the call then also claims one job per
    such thread (:meth:`Queue.complete_and_claim`, one round trip on PostgreSQL and Redis), with the worker's
    ``claim_filters``.
    """

    def __init__(self, queue: Queue, claim_filters: Callable[[], dict[str, Any]]) -> None:
        self._queue = queue
        self._claim_filters = claim_filters
        self._changed = threading.Condition()
        self._waiting: list[_Completion] = []
        self._calling = False

    def complete(self, held: Job, result: Any, *, take_next: bool = False) -> tuple[Job | Exception, Job | None]:
        """Complete ``held`` with ``result``: the new record or the exception :meth:`Queue.complete` raises, and
        with ``take_next`` the job this thread runs next (None when none was runnable or the completion failed)."""
        mine = _Completion(held, result, take_next)
        with self._changed:
            self._waiting.append(mine)
            while mine.outcome is None:
                if self._calling:
                    self._changed.wait()
                    continue
                self._calling = True
                batch, self._waiting = self._waiting, []
                self._changed.release()
                try:
                    self._complete(batch)
                finally:
                    self._changed.acquire()
                    self._calling = False
                    self._changed.notify_all()
        return mine.outcome, mine.next

    def _complete(self, batch: list[_Completion]) -> None:
        queue = self._queue
        wanting = [c for c in batch if c.take_next]
        try:
            if wanting:
                outcomes, taken = queue.complete_and_claim(
                    [c.held for c in batch], [c.result for c in batch], len(wanting), **self._claim_filters()
                )
                self._hand_out(batch, outcomes, taken)
                return
            if len(batch) > 1 and queue.store.batches_transitions:
                for completion, outcome in zip(
                    batch, queue.complete_many([c.held for c in batch], [c.result for c in batch]), strict=True
                ):
                    completion.outcome = outcome
                return
        except Exception as exc:  # the whole call failed: every job in it gets the error
            for completion in batch:
                completion.outcome = exc
            return
        # Alone, or a store without a batch verb (GitHub: one request a job anyway): each as Queue.complete does it,
        # patient with a busy store.
        for completion in batch:
            try:
                completion.outcome = queue.complete(completion.held, result=completion.result)
            except Exception as exc:
                completion.outcome = exc

    def _hand_out(self, batch: list[_Completion], outcomes: list[Job | Exception], taken: list[Job]) -> None:
        """Each completion its outcome; each thread that asked and completed its job one of the jobs claimed; a
        claimed job nobody can take (its thread's completion failed) is released at once."""
        spare = iter(taken)
        for completion, outcome in zip(batch, outcomes, strict=True):
            completion.outcome = outcome
            if completion.take_next and isinstance(outcome, Job):
                completion.next = next(spare, None)
        for job in spare:
            try:
                self._queue.release(job)
            except OctoqueueError as exc:
                log.warning("job %d could not be released (%s); its lease will expire", job.id, exc)


@dataclass
class _Completion:
    held: Job
    result: Any
    take_next: bool = False
    outcome: Job | Exception | None = None
    next: Job | None = None


class _HasLease(Protocol):
    @property
    def lease(self) -> float: ...

    @property
    def worker_name(self) -> str: ...

    @property
    def encrypted(self) -> bool: ...


Q = TypeVar("Q", bound=_HasLease)
H = TypeVar("H", bound=Callable[..., Any])


class WorkerBase(Generic[Q, H]):
    """What every worker has: its settings (checked here), its handlers by job type (``H``: a handler's type), the
    types it claims, its stats. :class:`Worker` runs jobs in threads, :class:`octoqueue.aio.AsyncWorker` in tasks."""

    def __init__(
        self,
        queue: Q,
        handler: H | CommandHandler | None = None,
        *,
        concurrency: int = 1,
        lease: float | None = None,
        timeout: float | None = None,
        poll_interval: float = 0.5,
        labels: Collection[str] = (),
        ids: Collection[int] | None = None,
        name: str | None = None,
        on_failure: OnFailure = "retry",
        recover_interval: float = 5.0,
        shutdown_grace: float = 30.0,
        on_report: Callable[[Job, JobReport], None] | None = None,
        register_every: float = REGISTER_EVERY,
        concurrency_per_type: Mapping[str, int] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        limits = dict(concurrency_per_type or {})
        bad = {name: n for name, n in limits.items() if not isinstance(n, int) or isinstance(n, bool) or n < 1}
        if bad:
            raise ConfigurationError(f"concurrency_per_type limits must be whole numbers of at least 1, not {bad}")
        if on_failure not in ("retry", "fail"):
            raise ConfigurationError("on_failure must be 'retry' or 'fail'")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError("timeout must be positive")
        self.queue = queue
        self.default_handler = handler
        self.handlers: dict[str, H | CommandHandler] = {}
        self.concurrency = concurrency
        self.type_limits: dict[str, int] = limits
        self.lease = queue.lease if lease is None else float(lease)
        if self.lease <= 0:
            raise ConfigurationError("lease must be positive")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.labels = tuple(labels)
        self.ids = None if ids is None else frozenset(ids)
        self.name = name or queue.worker_name
        self.on_failure: OnFailure = on_failure
        self.recover_interval = recover_interval
        self._next_settle = 0.0
        self.shutdown_grace = shutdown_grace
        self.on_report = on_report
        self.register_every = register_every
        self.stats = WorkerStats()
        self._signatures: dict[int, tuple[Any, bool]] = {}
        # On an encrypted queue results and errors are secrets: log lines say a job ended, not what it said.
        self._secret = queue.encrypted
        self._setup()

    def _setup(self) -> None:
        """Make the worker's running state (called last by ``__init__``)."""
        raise NotImplementedError

    # -- registration ------------------------------------------------------------------------------------------
    def handler(self, job_type: str | None = None) -> Callable[[H], H]:
        """Decorator: run the function for jobs of ``job_type`` (None: for every job without its own)."""

        def register(fn: H) -> H:
            self.register(job_type, fn)
            return fn

        return register

    def register(self, job_type: str | None, fn: H | CommandHandler) -> None:
        if job_type is None:
            self.default_handler = fn
        else:
            self.handlers[job_type] = fn

    def _claim_filters(self) -> dict[str, Any]:
        """What this worker's claims ask for: its name, lease, labels, ids and the types it has handlers for."""
        return {
            "worker": self.name,
            "lease": self.lease,
            "labels": self.labels,
            "types": self._types(),
            "ids": self.ids,
            "on_rejected": self._rejected,
        }

    def _type_room(self, running: Iterable[Job]) -> tuple[list[str], int]:
        """The types at their limit among the ``running`` jobs (claims skip their jobs for now), and how many jobs
        a claim may take so that no other limited type goes over its limit whatever types it brings."""
        if not self.type_limits:
            return [], self.concurrency
        counts = Counter(job.type for job in running)
        left = {name: limit - counts[name] for name, limit in self.type_limits.items()}
        full = sorted(name for name, n in left.items() if n <= 0)
        return full, min((n for n in left.values() if n > 0), default=self.concurrency)

    def _rejected(self, job: Job) -> None:
        """A job the claim failed unrun (a body that does not parse, data sealed with a key this worker lacks): a
        failure of this worker's, so ``--strict`` and the metrics see it."""
        report = JobReport(
            id=job.id, title=job.title, status="failed", attempt=job.attempt, seconds=0.0, error=job.last_error
        )
        self._tally(report)
        self._report(job, report)

    def _tally(self, report: JobReport) -> None:
        self.stats.add(report)

    def _report(self, job: Job, report: JobReport) -> None:
        if self.on_report is not None:
            try:
                self.on_report(job, report)
            except Exception:
                log.exception("job %d: on_report failed", job.id)

    def _arguments(self, fn: H, job: Job) -> tuple[Any, ...]:
        """What ``fn`` is called with: ``(data, job)`` or ``(data,)``, as its signature asks (looked up once)."""
        known = self._signatures.get(id(fn))
        if known is None or known[0] is not fn:
            known = self._signatures[id(fn)] = (fn, wants_job(fn))
        return (job.data, job) if known[1] else (job.data,)

    def _types(self) -> list[str] | None:
        # Without a catch-all handler, claim only the types this worker can run.
        return None if self.default_handler is not None else sorted(self.handlers)

    def _resolve(self, job: Job) -> H | CommandHandler:
        if job.type is not None and job.type in self.handlers:
            return self.handlers[job.type]
        if self.default_handler is not None:
            return self.default_handler
        raise PermanentError(f"no handler is registered for job type {job.type!r}")


class Worker(WorkerBase[Queue, Handler]):
    """Runs jobs from ``queue``.

    ``handler``: one callable for every job (called as ``fn(data)`` or ``fn(data, job)``), a
    :class:`CommandHandler`, or None when handlers are registered per job type with :meth:`handler`.
    ``concurrency``: jobs run at once (threads); jobs that finish together are completed in one
    :meth:`Queue.complete_many` call, each still fenced by its attempt; on a store that claims with its transitions
    in one round trip (``Store.batches_claims``: PostgreSQL, Redis) a thread that completed a job takes its next
    one in that same call (not with ``max_jobs``). Elsewhere a job's slot frees when its handler returns, so the next
    claim is made while that job's completion is written (at most ``2 * concurrency`` jobs are held, the others only
    for the moment their outcome takes to record). ``lease``: seconds a claim holds a job;
    renewed every ``lease / 3`` while the handler runs. ``timeout``: seconds a handler may run (a job's own
    ``timeout`` wins); with a timeout, Python handlers run in a child process so they can really be stopped.
    ``on_failure``: ``retry`` (retry with backoff while attempts remain) or ``fail`` (fail at once; a
    :class:`RetryableError` still retries). ``labels``/``ids``: only jobs carrying these labels / with these ids.
    ``concurrency_per_type``: at most this many jobs of a type running at once in this worker (``{"email": 2}``);
    while a type is at its limit, claims skip its jobs and the other types keep flowing.
    ``on_report``: called with each job taken and its :class:`JobReport` once it is finished (e.g. to count it in
    metrics); it must be quick and must not raise. ``register_every``: seconds between rewrites of the worker's record
    in the store's ``workers`` setting (:mod:`octoqueue.registry`, what ``octoqueue info`` shows; one settings update
    each, and one more to remove it at a clean stop); runs with ``once`` or ``ids`` do not register.
    """

    def _setup(self) -> None:
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._finished = threading.Event()
        self._inflight: dict[int, Job] = {}  # claimed and not yet recorded as finished
        # Handlers running: a job's slot frees when its handler returns, so the next claim is made while its
        # outcome is written (on SQLite the two share a commit: one fsync at synchronous=FULL).
        self._running = 0
        self._freed = 0  # slots freed and jobs finished so far: the claiming loop sleeps only if none since its claim
        self._lost: set[int] = set()
        self._lock = threading.Lock()
        self._slots = threading.Condition(self._lock)
        self._children = ChildRunner()
        self._completions = _Completions(self.queue, self._claim_filters)
        self._thread: threading.Thread | None = None
        self._warned_types: set[str | None] = set()
        self._take_next = False

    def accepts(self, job: Job) -> bool:
        """Whether this worker, started with :meth:`start` and not stopping, would claim ``job`` (its labels, id
        and type fit)."""
        if self._stop.is_set() or self._thread is None or not self._thread.is_alive():
            return False
        types = self._types()
        return (
            set(self.labels) <= set(job.labels)
            and (self.ids is None or job.id in self.ids)
            and (types is None or job.type in types)
        )

    # -- running -----------------------------------------------------------------------------------------------
    def run(
        self, *, once: bool = False, max_jobs: int | None = None, install_signal_handlers: bool | None = None
    ) -> WorkerStats:
        """Work until stopped (SIGTERM/SIGINT or :meth:`stop`), until ``max_jobs`` jobs were taken, or — with
        ``once`` — until no job is runnable. Returns the stats.

        Raises :class:`~octoqueue.errors.AccessDenied` (after giving back the jobs in hand) when the store
        refuses the worker's credentials: waiting would not fix them, so the worker does not poll on."""
        if self.default_handler is None and not self.handlers:
            raise ConfigurationError("the worker has no handler: pass one or register with @worker.handler()")
        if install_signal_handlers is None:
            install_signal_handlers = threading.current_thread() is threading.main_thread()
        previous = self._install_signals() if install_signal_handlers else {}
        self._stop.clear()
        self._abort.clear()
        self._finished.clear()
        taken = 0
        # Threads take their next job with their completion where that is one round trip; not when counting jobs.
        # With per-type limits each claim needs the limits of that moment: the claiming loop makes them all.
        self._take_next = max_jobs is None and self.queue.store.batches_claims and not self.type_limits
        next_recover = 0.0
        began = time.monotonic()
        self._warn_unhandled()
        pool = _JobThreads(self.concurrency, "octoqueue-job")
        beat = threading.Thread(target=self._heartbeat_loop, name="octoqueue-heartbeat", daemon=True)
        beat.start()
        registrar = None
        if not once and self.ids is None:  # a drain or a one-issue run is too short to be worth two settings writes
            registrar = threading.Thread(target=self._register_loop, name="octoqueue-register", daemon=True)
            registrar.start()
        log.info("worker %s started on %s", self.name, self.queue.store.url)
        try:
            while not self._stop.is_set():
                if max_jobs is not None and taken >= max_jobs:
                    break
                if time.monotonic() >= next_recover:
                    self._recover()
                    next_recover = time.monotonic() + self.recover_interval
                with self._slots:
                    while self._running >= self.concurrency and not self._stop.is_set():
                        self._slots.wait(self.poll_interval)
                    free = self.concurrency - self._running
                    busy = len(self._inflight)
                    full_types, room = self._type_room(self._inflight.values())
                    freed = self._freed
                if self._stop.is_set():
                    break
                want = min(free if max_jobs is None else min(free, max_jobs - taken), room)
                jobs = self._claim(want, wait=0 if once else self.poll_interval, exclude_types=full_types)
                if not jobs:
                    if once and not busy:
                        self._warn_unhandled()
                        break
                    if once:
                        with self._slots:
                            # wait for a job to finish, unless one finished during the claim (its notify is gone)
                            if self._freed == freed:
                                self._slots.wait(self.poll_interval)
                    continue
                for job in jobs:
                    taken += 1
                    with self._lock:
                        self._inflight[job.id] = job
                        self._running += 1
                    pool.submit(self._run_from, job)
        finally:
            self._shutdown(pool)
            beat.join(timeout=1)
            if registrar is not None:
                registrar.join(timeout=1)
                self._unregister()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stats.seconds = time.monotonic() - began
            counts = {k: v for k, v in self.stats.as_dict().items() if k not in ("job_ids", "jobs")}
            log.info("worker %s stopped: %s", self.name, self.stats.summary(), extra=counts)
        return self.stats

    def start(self, **run_options: Any) -> threading.Thread:
        """Run in a background thread (no signal handlers); :meth:`stop` ends it."""
        self._thread = threading.Thread(
            target=self.run,
            kwargs={**run_options, "install_signal_handlers": False},
            name="octoqueue-worker",
            daemon=True,
        )
        self._thread.start()
        return self._thread

    def stop(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Stop claiming; jobs in hand finish (or are released after ``shutdown_grace``)."""
        self._stop.set()
        with self._slots:
            self._slots.notify_all()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}

        def on_signal(signum: int, frame: object) -> None:
            if self._stop.is_set():
                log.warning("second signal: releasing jobs in hand now")
                self._abort.set()
            else:
                log.info("signal %d: finishing the jobs in hand, then stopping", signum)
            self.stop(wait=False)

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
        return previous

    def _warn_unhandled(self) -> None:
        """Warn about pending jobs this worker will never take because no handler fits their type (once a type).

        Looks at the oldest :data:`UNHANDLED_SAMPLE` pending jobs; only a worker without a catch-all handler
        can leave jobs behind."""
        types = self._types()
        if types is None:
            return
        try:
            page = self.queue.list_jobs(states=[JobState.PENDING], labels=self.labels, limit=UNHANDLED_SAMPLE)
        except OctoqueueError as exc:
            log.warning("could not look for jobs without a handler: %s", exc)
            return
        left: dict[str | None, list[int]] = {}
        for job in page.jobs:
            if job.type not in types and job.type not in self._warned_types:
                left.setdefault(job.type, []).append(job.id)
        for job_type, ids in left.items():
            self._warned_types.add(job_type)
            shown = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
            log.warning(
                "pending job(s) %s of type %r have no handler in this worker (it handles %s): it leaves them pending",
                shown,
                job_type,
                ", ".join(repr(t) for t in types) or "no type",
                extra={"job_type": job_type, "job_ids": ids},
            )

    def _claim(self, count: int, wait: float, exclude_types: Collection[str] = ()) -> list[Job]:
        try:
            return self.queue.claim_batch(count, wait=wait, exclude_types=exclude_types, **self._claim_filters())
        except AccessDenied:
            raise  # waiting cannot fix credentials: run() stops and raises it
        except OctoqueueError as exc:
            log.warning("claim failed, backing off: %s", exc)
            self._stop.wait(min(5.0, max(self.poll_interval, 1.0)))
            return []

    def _recover(self) -> None:
        try:
            for job in self.queue.recover_expired():
                log.warning("job %d: lease expired; now %s", job.id, job.status)
            if time.monotonic() >= self._next_settle:
                self._next_settle = time.monotonic() + SETTLE_INTERVAL
                self.queue.settle_waiting()
        except AccessDenied:
            raise
        except OctoqueueError as exc:
            log.warning("could not recover expired leases: %s", exc)

    def _shutdown(self, pool: _JobThreads) -> None:
        self._stop.set()
        deadline = time.monotonic() + self.shutdown_grace
        with self._slots:
            while self._inflight and time.monotonic() < deadline and not self._abort.is_set():
                self._slots.wait(0.1)
            leftover = list(self._inflight.values())
        for job in leftover:
            self._kill(job.id)
            with self._lock:
                self._lost.add(job.id)  # its thread's late result must not be reported
            try:
                self.queue.release(job)
                self.stats.released += 1
                log.info("job %d released unfinished at shutdown", job.id)
            except OctoqueueError as exc:
                log.warning("job %d could not be released (%s); its lease will expire", job.id, exc)
        self._finished.set()
        pool.shutdown(wait=not leftover)

    def _kill(self, job_id: int) -> None:
        self._children.kill(job_id)
        for fn in [self.default_handler, *self.handlers.values()]:
            if isinstance(fn, CommandHandler):
                fn.kill(job_id)

    # -- the workers setting (octoqueue.registry) ---------------------------------------------------------------
    def _register_loop(self) -> None:
        # Rewrites this worker's record until _shutdown has no job left in hand; run() then removes it.
        while True:
            with self._lock:
                held = [job_id for job_id in self._inflight if job_id not in self._lost]
            try:
                register(self.queue.store, self.name, socket.gethostname(), held)
            except OctoqueueError as exc:
                log.warning("worker %s: could not update its record in the workers setting: %s", self.name, exc)
            if self._finished.wait(self.register_every):
                return

    def _unregister(self) -> None:
        try:
            unregister(self.queue.store, self.name)
        except OctoqueueError as exc:
            log.warning("worker %s: could not remove its record from the workers setting: %s", self.name, exc)

    # -- leases ------------------------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        # Beats until _shutdown has no job left in hand (jobs finishing during the grace period keep their lease).
        interval = max(0.05, self.lease / 3)
        while not self._finished.wait(interval):
            self._heartbeat_once()

    def _heartbeat_once(self) -> None:
        with self._lock:
            jobs = [j for j in self._inflight.values() if j.id not in self._lost]
        for job in jobs:
            try:
                renewed = self.queue.heartbeat(job, self.lease)
            except (LeaseLost, StateConflict) as exc:
                log.warning("job %d: lease lost (%s); stopping its handler", job.id, exc)
                with self._lock:
                    self._lost.add(job.id)
                self._kill(job.id)
                continue
            except OctoqueueError as exc:
                log.warning("job %d: heartbeat failed, will retry: %s", job.id, exc)
                continue
            with self._lock:
                if job.id in self._inflight:
                    self._inflight[job.id] = renewed

    # -- one job -----------------------------------------------------------------------------------------------
    def _run_from(self, job: Job) -> None:
        """Run ``job`` in this thread, then each job its completion brought (see :class:`_Completions`)."""
        chained: Job | None = job
        while chained is not None:
            if self._stop.is_set() and chained is not job:
                self._give_back(chained)
                return
            chained = self._process(chained)

    def _give_back(self, job: Job) -> None:
        """Release a job taken but not started (the worker is stopping)."""
        try:
            self.queue.release(job)
            self.stats.released += 1
        except OctoqueueError as exc:
            log.warning("job %d could not be released (%s); its lease will expire", job.id, exc)
        with self._slots:
            self._inflight.pop(job.id, None)
            self._running -= 1
            self._freed += 1
            self._slots.notify_all()

    def _process(self, job: Job) -> Job | None:
        """Run one job and record its outcome; the next job for this thread, when its completion brought one."""
        chained: Job | None = None
        started = time.monotonic()
        report = JobReport(id=job.id, title=job.title, status="processing", attempt=job.attempt, seconds=0.0)
        try:
            try:
                try:
                    result = self._execute(job)
                finally:
                    report.seconds = time.monotonic() - started
                    if not self._take_next:  # a thread that takes its next job with its completion keeps its slot
                        self._free_slot()
            except Exception as exc:
                error, retry, delay = failure(exc, self.on_failure)
                self._finish_failed(job, report, error, retry=retry, delay=delay)
            else:
                chained = self._finish_completed(job, report, result)
        except Exception as exc:
            unrecorded(job, report, exc)
        finally:
            with self._slots:
                current = self._inflight.pop(job.id, None)
                if chained is not None:
                    self._inflight[chained.id] = chained  # in hand from now on: heartbeats, the same slot
                elif self._take_next:
                    self._running -= 1
                was_lost = job.id in self._lost
                self._lost.discard(job.id)
                counted = not was_lost or report.status != "lost"
                if counted:
                    self.stats.add(report)
                self._freed += 1
                self._slots.notify_all()
            if current is not None and current.type in self.type_limits:
                self.queue.wake_claims()  # a claim waiting with this type skipped may now take one
            del current
            if counted:
                self._report(job, report)
        return chained

    def _tally(self, report: JobReport) -> None:
        with self._slots:  # the job threads count theirs under it too
            self.stats.add(report)

    def _free_slot(self) -> None:
        """The handler returned: the claiming loop may take the next job while this one's outcome is written."""
        with self._slots:
            self._running -= 1
            self._freed += 1
            self._slots.notify_all()

    def _current(self, job: Job) -> Job:
        with self._lock:
            if job.id in self._lost:
                raise LeaseLost(job.id, "the lease was lost while the handler ran")
            return self._inflight.get(job.id, job)

    def _execute(self, job: Job) -> Any:
        fn = self._resolve(job)
        timeout = job.timeout or self.timeout
        if isinstance(fn, CommandHandler):
            return fn.run(job, timeout)
        if timeout is not None:
            return self._children.run(fn, job, timeout)
        return fn(*self._arguments(fn, job))

    def _finish_completed(self, job: Job, report: JobReport, result: Any) -> Job | None:
        held = self._current(job)
        take_next = self._take_next and not self._stop.is_set()
        done, chained = self._completions.complete(held, result, take_next=take_next)
        if isinstance(done, JobTooLarge):
            self._finish_failed(job, report, f"the result could not be stored: {done}", retry=False)
            return None
        if isinstance(done, Exception):
            raise done
        completed(job, report, done, result, secret=self._secret)
        return chained

    def _finish_failed(
        self, job: Job, report: JobReport, error: str, *, retry: bool, delay: float | None = None
    ) -> None:
        held = self._current(job)
        failed(job, report, self.queue.fail(held, error=error, retry=retry, delay=delay), error, secret=self._secret)


def failure(exc: Exception, on_failure: OnFailure) -> tuple[str, bool, float | None]:
    """What a handler's exception makes of its job: (the error to record, whether to retry, the delay before the
    retry, None: the retry policy's). A :class:`PermanentError` never retries, a :class:`RetryableError` always
    does (after its own ``delay``); any other error retries when ``on_failure`` is ``retry``."""
    if isinstance(exc, PermanentError):
        return describe(exc), False, None
    if isinstance(exc, RetryableError):
        return describe(exc), True, exc.delay
    return describe(exc, with_trace=True), on_failure == "retry", None


def unrecorded(job: Job, report: JobReport, exc: Exception) -> None:
    """Record on ``report`` (and log) why the outcome of ``job`` could not be recorded: ``lost`` when the job moved
    on (its lease was taken back: the result is refused), else ``unfinished`` (its lease will expire, it reruns)."""
    if isinstance(exc, LeaseLost | StateConflict):
        report.status = "lost"
        report.error = str(exc)
        log.warning("job %d: result refused, the job moved on: %s", job.id, exc)
    elif isinstance(exc, OctoqueueError):
        report.status = "unfinished"
        report.error = str(exc)
        log.error("job %d: could not record the outcome (%s); its lease will expire and it reruns", job.id, exc)
    else:
        report.status = "unfinished"
        log.error("job %d: unexpected error while recording its outcome", job.id, exc_info=exc)


def completed(job: Job, report: JobReport, done: Job, result: Any, *, secret: bool = False) -> None:
    """Record on ``report`` (and log) that ``job`` was completed as ``done`` with ``result`` (``secret``: an
    encrypted queue's, logged without the result)."""
    report.status = done.status or "completed"
    report.result = result
    if log.isEnabledFor(logging.INFO):  # the preview and the fields cost more than the rest of a no-op job's line
        log.info(
            "job %d completed in %.3f s (attempt %d): %s",
            job.id,
            report.seconds,
            job.attempt,
            "(encrypted)" if secret else _preview(result),
            extra=_fields(job, report, "completed"),
        )


def failed(job: Job, report: JobReport, new: Job, error: str, *, secret: bool = False) -> None:
    """Record on ``report`` (and log) that an attempt of ``job`` failed with ``error``, leaving it as ``new``
    (``secret``: an encrypted queue's, logged without the error)."""
    report.status = new.status or "failed"
    report.error = error
    outcome = "failed" if report.status == "failed" else "to retry"
    log.warning(
        "job %d attempt %d failed after %.3f s (%s): %s",
        job.id,
        job.attempt,
        report.seconds,
        outcome,
        "(encrypted)" if secret else error.splitlines()[0] if error else "",
        extra=_fields(job, report, outcome),
    )


def _fields(job: Job, report: JobReport, outcome: str) -> dict[str, Any]:
    """A job line's fields, for structured (JSON) logs."""
    return {"job_id": job.id, "attempt": job.attempt, "seconds": round(report.seconds, 6), "outcome": outcome}


def _preview(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
