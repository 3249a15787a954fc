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

import itertools
import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
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
from octoqueue.stores.base import Store

log = logging.getLogger("octoqueue.worker")

#: How many of the oldest pending jobs a worker without a catch-all handler looks at for types it cannot run.
UNHANDLED_SAMPLE = 100
#: How often (seconds) a worker settles jobs left waiting for parents that finished (Queue.settle_waiting).
SETTLE_INTERVAL = 60.0

#: How many jobs a Worker's thread takes at once by default where the store completes and claims in one round trip
#: (see :class:`Worker`'s ``prefetch`` and docs/benchmarks.md for the figures that chose it).
DEFAULT_PREFETCH = 16
#: Seconds the results of a thread's finished jobs may wait for the rest of its batch before they are completed.
RESULTS_WAIT = 0.1

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
    its futures (nothing waits on one: :meth:`Worker._run_from` records every outcome itself), which keeps a batch's
    hand-off to a thread down to one queue put."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._tasks: SimpleQueue[tuple[Callable[[list[Job]], None], list[Job]] | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[[list[Job]], None], jobs: list[Job]) -> None:
        self._tasks.put((fn, jobs))
        if len(self._threads) < self._size:
            thread = threading.Thread(target=self._loop, name=f"{self._name}_{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def _loop(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            fn, jobs = task
            try:
                fn(jobs)
            except BaseException:  # pragma: no cover - _run_from records every outcome itself
                log.exception("jobs %s: unexpected error in their thread", ", ".join(str(j.id) for j in jobs))

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
    completion stays fenced by its job's attempt, and each thread gets its own outcomes.

    A thread hands in the jobs it ran (a batch of them when the worker prefetches) and may ask for its next jobs
    with them (``take``): the call then also claims that many jobs for it (:meth:`Queue.complete_and_claim`, one
    round trip on PostgreSQL and Redis, one transaction on SQLite), with the worker's ``claim_filters``.
    """

    def __init__(self, queue: Queue, claim_filters: Callable[[], dict[str, Any]]) -> None:
        self._queue = queue
        self._claim_filters = claim_filters
        self._changed = threading.Condition()
        self._waiting: list[_Completion] = []
        self._calling = False

    def complete(
        self, held: Sequence[Job], results: Sequence[Any], *, take: int = 0
    ) -> tuple[list[Job | Exception], list[Job]]:
        """Complete each of ``held`` with its result: one outcome per job, in order (the new record or the exception
        :meth:`Queue.complete` raises), and with ``take`` up to that many jobs this thread runs next."""
        mine = _Completion(list(held), list(results), take)
        with self._changed:
            self._waiting.append(mine)
            while mine.outcomes is None:
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
        return mine.outcomes, mine.next

    def _complete(self, batch: list[_Completion]) -> None:
        queue = self._queue
        held = [job for c in batch for job in c.held]
        results = [result for c in batch for result in c.results]
        wanted = sum(c.take for c in batch)
        try:
            if wanted:
                outcomes, taken = queue.complete_and_claim(held, results, wanted, **self._claim_filters())
                self._hand_out(batch, outcomes, taken)
                return
            if len(held) > 1 and queue.store.batches_transitions:
                self._hand_out(batch, queue.complete_many(held, results), [])
                return
        except Exception as exc:  # the whole call failed: every job in it gets the error
            for completion in batch:
                completion.outcomes = [exc] * len(completion.held)
            return
        # Alone, or a store without a batch verb (GitHub: one request a job anyway): each as Queue.complete does it,
        # patient with a busy store.
        for completion in batch:
            completion.outcomes = [self._complete_one(job, result) for job, result in completion]

    def _complete_one(self, job: Job, result: Any) -> Job | Exception:
        try:
            return self._queue.complete(job, result=result)
        except Exception as exc:
            return exc

    def _hand_out(self, batch: list[_Completion], outcomes: list[Job | Exception], taken: list[Job]) -> None:
        """Each completion its outcomes; each thread that asked up to its share of the jobs claimed; a claimed job
        nobody can take is released at once."""
        given = iter(outcomes)
        spare = iter(taken)
        for completion in batch:
            completion.outcomes = [next(given) for _ in completion.held]
            completion.next = list(itertools.islice(spare, completion.take))
        for job in spare:
            try:
                self._queue.release(job)
            except OctoqueueError as exc:
                log.warning("job %d could not be released (%s); its lease will expire", job.id, exc)


@dataclass
class _Completion:
    held: list[Job]
    results: list[Any]
    take: int = 0
    outcomes: list[Job | Exception] | None = None
    next: list[Job] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[Job, Any]]:
        return iter(zip(self.held, self.results, strict=True))


class _HasLease(Protocol):
    @property
    def lease(self) -> float: ...

    @property
    def worker_name(self) -> str: ...

    @property
    def encrypted(self) -> bool: ...

    @property
    def hears_other_processes(self) -> bool: ...


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

    def _claim_wait(self, next_recover: float, now: float) -> float:
        """How long the next claim may wait for a job: ``poll_interval``, or, where the store reports other
        processes' jobs (they wake the claim), until the next look for expired leases (``next_recover``; ``now`` on
        the same clock)."""
        if not self.queue.hears_other_processes:
            return self.poll_interval
        return max(self.poll_interval, next_recover - now)

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

    def _type_room(self, running: Iterable[Job], most: int) -> tuple[list[str], int]:
        """The types at their limit among the ``running`` jobs (claims skip their jobs for now), and how many jobs
        (``most`` at most) a claim may take so that no other limited type goes over its limit whatever types it
        brings."""
        if not self.type_limits:
            return [], most
        counts = Counter(job.type for job in running)
        left = {name: limit - counts[name] for name, limit in self.type_limits.items()}
        full = sorted(name for name, n in left.items() if n <= 0)
        return full, min([most, *(n for n in left.values() if n > 0)])

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
    ``concurrency``: jobs run at once (threads). ``prefetch``: how many jobs a thread takes at once; it runs them
    in turn and completes them together (each still fenced by its attempt), and — on a store that claims with its
    transitions in one round trip or transaction (``Store.batches_claims``: SQLite, PostgreSQL, Redis) — takes its
    next ones in that same call, without going through the claiming loop (not with ``max_jobs`` or
    ``concurrency_per_type``: there the loop claims, with the limits of that moment). Default:
    :data:`DEFAULT_PREFETCH` on such a store, 1 elsewhere (GitHub, S3). A job taken but not started yet holds its
    lease (renewed with the others), counts against ``concurrency_per_type``, and is given back unrun (pending,
    the attempt not counted) when the worker stops, when its lease is lost, or when the queue or one of its labels
    is paused before it starts. The cost of a large ``prefetch``: a job waits behind the ones taken before it in its
    thread (head-of-line blocking), so keep it at 1 for long jobs. Results wait for the batch to end at most
    :data:`RESULTS_WAIT` seconds (a worker that crashes re-runs the ones not acknowledged yet: at least once, as
    ever); those of jobs that finish together in several threads share a call too.
    Without take-along claims a thread's slot frees when its last handler returns, so the next claim is made while
    the outcomes are written (at most ``2 * concurrency * prefetch`` jobs are held). ``lease``: seconds a claim
    holds a job; renewed every ``lease / 3`` while the job is in hand. ``timeout``: seconds a handler may run (a
    job's own ``timeout`` wins); with a timeout, Python handlers run in a child process so they can really be
    stopped. ``on_failure``: ``retry`` (retry with backoff while attempts remain) or ``fail`` (fail at once; a
    :class:`RetryableError` still retries). ``labels``/``ids``: only jobs carrying these labels / with these ids.
    ``concurrency_per_type``: at most this many jobs of a type in hand at once in this worker (``{"email": 2}``);
    while a type is at its limit, claims skip its jobs and the other types keep flowing.
    ``poll_interval``: seconds between claims while idle, on a store that does not report other processes' jobs
    (SQLite, GitHub, S3); on one that does (PostgreSQL, Redis) an idle worker asks the store only when a job arrives
    or comes due, and once per ``recover_interval`` when it looks for expired leases.
    ``on_report``: called with each job taken and its :class:`JobReport` once it is finished (e.g. to count it in
    metrics); it must be quick and must not raise. ``register_every``: seconds between rewrites of the worker's record
    in the store's ``workers`` setting (:mod:`octoqueue.registry`, what ``octoqueue info`` shows; one settings update
    each, and one more to remove it at a clean stop); runs with ``once`` or ``ids`` do not register.
    """

    def __init__(
        self,
        queue: Queue,
        handler: Handler | CommandHandler | None = None,
        *,
        prefetch: int | None = None,
        **options: Any,
    ) -> None:
        if prefetch is not None and (not isinstance(prefetch, int) or isinstance(prefetch, bool) or prefetch < 1):
            raise ConfigurationError(f"prefetch must be a whole number of at least 1, not {prefetch!r}")
        #: Jobs a thread takes at once (see the class's docstring).
        self.prefetch = default_prefetch(queue.store) if prefetch is None else prefetch
        super().__init__(queue, handler, **options)

    def _setup(self) -> None:
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._finished = threading.Event()
        self._inflight: dict[int, Job] = {}  # claimed and not yet recorded as finished (started or not)
        # Threads busy with a batch of jobs. Without take-along claims a thread's slot frees when its last handler
        # returns, so the next claim is made while the outcomes are written (on SQLite the two share a commit).
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
        # Threads take their next jobs with their completions where that is one round trip; not when counting jobs.
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
                    full_types, room = self._type_room(self._inflight.values(), free * self.prefetch)
                    freed = self._freed
                if self._stop.is_set():
                    break
                want = room if max_jobs is None else min(room, max_jobs - taken)
                wait = 0 if once else self._claim_wait(next_recover, time.monotonic())
                jobs = self._claim(want, wait=wait, exclude_types=full_types)
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
                for share in shares(jobs, free):
                    taken += len(share)
                    with self._lock:
                        for job in share:
                            self._inflight[job.id] = job
                        self._running += 1
                    pool.submit(self._run_from, share)
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
        self.queue.wake_claims()  # a claim waiting for jobs returns now
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
            return self.queue.claim_batch(
                count, wait=wait, poll_interval=self.poll_interval, exclude_types=exclude_types, **self._claim_filters()
            )
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
        outcomes: list[Job | Exception]
        if len(jobs) > 1 and self.queue.store.batches_transitions:  # a thread's prefetched jobs: one round trip
            try:
                outcomes = self.queue.heartbeat_many(jobs, self.lease)
            except OctoqueueError as exc:
                outcomes = [exc] * len(jobs)
        else:
            outcomes = [self._heartbeat(job) for job in jobs]
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, LeaseLost | StateConflict):
                log.warning("job %d: lease lost (%s); stopping its handler", job.id, outcome)
                with self._lock:
                    self._lost.add(job.id)
                self._kill(job.id)
            elif isinstance(outcome, Exception):
                log.warning("job %d: heartbeat failed, will retry: %s", job.id, outcome)
            else:
                with self._lock:
                    if job.id in self._inflight:
                        self._inflight[job.id] = outcome

    def _heartbeat(self, job: Job) -> Job | Exception:
        try:
            return self.queue.heartbeat(job, self.lease)
        except OctoqueueError as exc:
            return exc

    # -- the jobs in a thread's hand ---------------------------------------------------------------------------
    def _run_from(self, jobs: list[Job]) -> None:
        """Run ``jobs`` (this thread's share of a claim) in this thread, then each batch their completion brought
        (see :class:`_Completions`)."""
        batch, from_loop = jobs, True
        while batch:
            batch = self._run_batch(batch, from_loop=from_loop)
            from_loop = False

    def _run_batch(self, batch: list[Job], *, from_loop: bool) -> list[Job]:
        """Run the jobs of ``batch`` in turn and complete them together; return the jobs that completion brought
        (the thread keeps its slot for them), or [] (the slot is freed). The jobs not started when the worker stops
        are given back, and so is one whose queue or label is paused when its turn comes (the first job of a batch
        the claiming loop just claimed runs: the claim saw the pauses)."""
        ran: list[_Ran] = []
        try:
            for index, job in enumerate(batch):
                if index or not from_loop:
                    if self._stop.is_set():
                        self._give_back(batch[index:])
                        break
                    if self._paused(job):
                        self._give_back([job])
                        continue
                if ran and time.monotonic() - ran[0].ended >= RESULTS_WAIT:
                    self._complete(ran, take=0)  # a slow job after quick ones: their results are not kept waiting
                    ran = []
                done = self._start(job)
                if done is not None:
                    ran.append(done)
        except BaseException:
            # A handler raised SystemExit or the like: what the batch still holds is left to its leases, the slot
            # is freed, and the error goes on up.
            with self._slots:
                for job in batch:
                    self._inflight.pop(job.id, None)
                self._running -= 1
                self._freed += 1
                self._slots.notify_all()
            raise
        if not self._take_next:
            self._free_slot()  # the claiming loop may take the next jobs while these outcomes are written
        take = self.prefetch if self._take_next and not self._stop.is_set() else 0
        following = self._complete(ran, take) if ran or take else []
        if self._take_next and not following:
            self._free_slot()
        return following

    def _paused(self, job: Job) -> bool:
        """Whether the queue or one of ``job``'s labels is paused now (as a claim would see it)."""
        try:
            return self.queue.pauses.current().stops(job.labels)
        except OctoqueueError:
            return False  # the pause state cannot be read: the job was claimed, it runs

    def _give_back(self, jobs: list[Job]) -> None:
        """Release jobs taken but not started (the worker is stopping, or they are paused)."""
        for job in jobs:
            with self._lock:
                gone = job.id in self._lost  # released by _shutdown already, or its lease was lost
            if not gone:
                try:
                    self.queue.release(job)
                    with self._lock:
                        self.stats.released += 1
                except OctoqueueError as exc:
                    log.warning("job %d could not be released (%s); its lease will expire", job.id, exc)
            self._drop(job)

    def _start(self, job: Job) -> _Ran | None:
        """Run ``job``'s handler: what it returned, to complete; None when the job failed (recorded here) or was
        no longer this worker's to run (its lease lost, or released at shutdown)."""
        with self._lock:
            gone = job.id in self._lost
        if gone:
            self._drop(job)
            return None
        started = time.monotonic()
        report = JobReport(id=job.id, title=job.title, status="processing", attempt=job.attempt, seconds=0.0)
        try:
            result = self._execute(job)
        except Exception as exc:
            report.seconds = time.monotonic() - started
            try:
                error, retry, delay = failure(exc, self.on_failure)
                self._finish_failed(job, report, error, retry=retry, delay=delay)
            except Exception as unrecordable:
                unrecorded(job, report, unrecordable)
            self._record(job, report)
            return None
        ended = time.monotonic()
        report.seconds = ended - started
        return _Ran(job, report, result, ended)

    def _complete(self, ran: list[_Ran], take: int) -> list[Job]:
        """Complete the jobs that ran, each fenced by its attempt, and record them; with ``take``, claim up to that
        many jobs in the same call and return them (in hand from then on)."""
        kept: list[_Ran] = []
        held: list[Job] = []
        for each in ran:
            try:
                held.append(self._current(each.job))
            except LeaseLost as exc:
                unrecorded(each.job, each.report, exc)
                self._record(each.job, each.report)
                continue
            kept.append(each)
        outcomes, following = self._completions.complete(held, [each.result for each in kept], take=take)
        if following:
            with self._lock:
                for job in following:
                    self._inflight[job.id] = job  # in hand from now on: heartbeats, this thread's slot
        for each, outcome in zip(kept, outcomes, strict=True):
            try:
                if isinstance(outcome, JobTooLarge):
                    error = f"the result could not be stored: {outcome}"
                    self._finish_failed(each.job, each.report, error, retry=False)
                elif isinstance(outcome, Exception):
                    raise outcome
                else:
                    completed(each.job, each.report, outcome, each.result, secret=self._secret)
            except Exception as exc:
                unrecorded(each.job, each.report, exc)
            self._record(each.job, each.report)
        return following

    def _record(self, job: Job, report: JobReport) -> None:
        """``job`` is done with: out of hand, counted and reported (unless this worker gave it up meanwhile)."""
        with self._slots:
            current = self._inflight.pop(job.id, None)
            was_lost = job.id in self._lost
            self._lost.discard(job.id)
            counted = not was_lost or report.status != "lost"
            if counted:
                self.stats.add(report)
            self._freed += 1
            self._slots.notify_all()
        if current is not None and current.type in self.type_limits:
            self.queue.wake_claims()  # a claim waiting with this type skipped may now take one
        if counted:
            self._report(job, report)

    def _drop(self, job: Job) -> None:
        """``job`` leaves this worker's hand unrun (given back, or no longer its own)."""
        with self._slots:
            current = self._inflight.pop(job.id, None)
            self._lost.discard(job.id)
            self._freed += 1
            self._slots.notify_all()
        if current is not None and current.type in self.type_limits:
            self.queue.wake_claims()

    def _tally(self, report: JobReport) -> None:
        with self._slots:  # the job threads count theirs under it too
            self.stats.add(report)

    def _free_slot(self) -> None:
        """This thread is done with its batch's handlers: the claiming loop may give it (or another) more jobs."""
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

    def _finish_failed(
        self, job: Job, report: JobReport, error: str, *, retry: bool, delay: float | None = None
    ) -> None:
        held = self._current(job)
        failed(job, report, self.queue.fail(held, error=error, retry=retry, delay=delay), error, secret=self._secret)


@dataclass(slots=True)
class _Ran:
    """A job whose handler returned, waiting for its completion."""

    job: Job
    report: JobReport
    result: Any
    ended: float  # time.monotonic() when its handler returned


def default_prefetch(store: Store) -> int:
    """How many jobs a Worker's thread takes at once unless told: :data:`DEFAULT_PREFETCH` on a store that completes
    and claims in one round trip or transaction (``batches_claims``), else 1 (each claim a call of its own)."""
    return DEFAULT_PREFETCH if store.batches_claims else 1


def shares(jobs: list[Job], threads: int) -> list[list[Job]]:
    """``jobs`` split in order among at most ``threads`` threads, as evenly as can be."""
    count = max(1, min(threads, len(jobs)))
    size, extra = divmod(len(jobs), count)
    out: list[list[Job]] = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(jobs[start:end])
        start = end
    return [share for share in out if share]


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
