"""octoqueue's SQLite store against GigQ and Huey's SQLite storage, doing the same work.

Every ``run_*`` function does one honest round on a fresh SQLite file in a fresh temporary folder:

1. **enqueue**: ``jobs`` no-op jobs, one call per job from one thread, the way a user adds work (no batch API:
   no system gets one);
2. **drain**: ``workers`` workers run them all, each job's handler recording the job's number.

Both phases are timed with :func:`time.perf_counter`. The drain is timed from the moment the workers start until
every job has run *and* its completion is written back (the workers are stopped and joined, so in-flight
completion writes are inside the measurement). Afterwards the harness checks that every job number was recorded
exactly once by the handler, and asks the database itself that every job is finished after exactly one attempt
(or, for Huey, that no task is left in its queue table).

Process model (the same for all three): **one process, ``workers`` worker threads** — GigQ's
``Worker(concurrency=W)`` runs W claiming threads, Huey's consumer runs W worker threads
(``worker_type="thread"``, its default), octoqueue's ``Worker(concurrency=W)`` runs W job threads with its default
``prefetch`` (16 on SQLite, recorded as ``prefetch`` in each round's settings and printed under the table): a
thread takes up to 16 jobs at once, runs them in turn and completes them together with taking its next ones, in one
transaction; each job keeps its own lease and fencing attempt. ``octoqueue-procs`` adds octoqueue with W worker
*processes* on the same file, each running ``Worker(...).run(once=True)``.

Durability: each system keeps its own defaults (see :func:`pragmas` and ``docs/benchmarks.md``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

#: How long a drain may take before the harness gives up on it (and reports the jobs that never ran).
DRAIN_TIMEOUT = 600.0

#: GigQ's worker sleeps ``polling_interval`` seconds whenever it finds no job (default 5 s; an int in its
#: signature, but any float works). Kept small so that idle sleeping at the end of a drain does not dominate.
GIGQ_POLLING_INTERVAL = 0.01

#: Huey's consumer sleeps ``initial_delay`` (growing by ``backoff``) when its queue is empty; its stop flag
#: interrupts that sleep, so this only matters if a worker ever saw an empty queue mid-drain. Same 10 ms.
HUEY_INITIAL_DELAY = 0.01


@dataclass
class RunResult:
    """One round of one system."""

    system: str
    model: str
    jobs: int
    workers: int
    enqueue_seconds: float
    drain_seconds: float
    ran: int  # handler calls
    distinct: int  # distinct job numbers seen by the handler
    duplicates: int  # job numbers seen more than once
    missing: int  # job numbers never seen
    store_ok: bool  # the database agrees: everything finished once
    store_detail: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def enqueue_rate(self) -> float:
        return self.jobs / self.enqueue_seconds if self.enqueue_seconds > 0 else float("inf")

    @property
    def drain_rate(self) -> float:
        return self.jobs / self.drain_seconds if self.drain_seconds > 0 else float("inf")

    @property
    def exactly_once(self) -> bool:
        return (
            self.ran == self.jobs
            and self.distinct == self.jobs
            and self.duplicates == 0
            and self.missing == 0
            and self.store_ok
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(enqueue_rate=self.enqueue_rate, drain_rate=self.drain_rate, exactly_once=self.exactly_once)
        return out


class Tally:
    """What the no-op handlers record: the number of every job they ran. Thread-safe."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen: list[int] = []
        self._lock = threading.Lock()
        self.done = threading.Event()
        if expected == 0:
            self.done.set()

    def hit(self, n: int) -> None:
        with self._lock:
            self.seen.append(n)
            if len(self.seen) >= self.expected:
                self.done.set()

    def extend(self, numbers: list[int]) -> None:
        for n in numbers:
            self.hit(n)

    def summary(self) -> dict[str, int]:
        counts = Counter(self.seen)
        return {
            "ran": len(self.seen),
            "distinct": len(counts),
            "duplicates": sum(1 for c in counts.values() if c > 1),
            "missing": sum(1 for n in range(self.expected) if n not in counts),
        }


@contextlib.contextmanager
def _workdir(base_dir: str | None) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="octoqueue-bench-", dir=base_dir) as folder:
        yield folder


def pragmas(conn: sqlite3.Connection) -> dict[str, Any]:
    """The durability settings a system's own connection runs with."""
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return {"journal_mode": str(journal).upper(), "synchronous": names.get(sync, sync)}


def _query(path: str, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _result(
    system: str,
    model: str,
    jobs: int,
    workers: int,
    times: tuple[float, float, float, float],
    tally: Tally,
    store_ok: bool,
    store_detail: str,
    settings: dict[str, Any],
) -> RunResult:
    t0, t1, t2, t3 = times
    return RunResult(
        system=system,
        model=model,
        jobs=jobs,
        workers=workers,
        enqueue_seconds=t1 - t0,
        drain_seconds=t3 - t2,
        store_ok=store_ok,
        store_detail=store_detail,
        settings=settings,
        **tally.summary(),
    )


# -- octoqueue ----------------------------------------------------------------------------------------------------
def _octoqueue_store_check(path: str, jobs: int) -> tuple[bool, str]:
    rows = _query(path, "SELECT state, attempt, COUNT(*) FROM jobs GROUP BY state, attempt")
    return rows == ([("completed", 1, jobs)] if jobs else []), f"(state, attempt, count): {rows}"


def _enqueue_timed(queue: Any, jobs: int) -> tuple[dict[str, Any], float, float]:
    """The store's durability pragmas, then ``jobs`` no-op jobs enqueued one call each: (pragmas, start, end)."""
    settings = pragmas(queue.store._conn())
    t0 = time.perf_counter()
    for i in range(jobs):
        queue.enqueue({"n": i})
    return settings, t0, time.perf_counter()


def run_octoqueue(
    jobs: int, workers: int, *, base_dir: str | None = None, synchronous: str = "NORMAL", system: str = "octoqueue"
) -> RunResult:
    """octoqueue: ``Queue.enqueue`` per job, then ``Worker(queue, noop, concurrency=workers).run(once=True)``."""
    from octoqueue.queue import Queue
    from octoqueue.stores.sqlite import SQLiteStore
    from octoqueue.worker import Worker

    with _workdir(base_dir) as folder:
        path = os.path.join(folder, "octoqueue.db")
        tally = Tally(jobs)
        queue = Queue(SQLiteStore(path, synchronous=synchronous))
        try:
            settings, t0, t1 = _enqueue_timed(queue, jobs)

            def noop(data: dict[str, int]) -> None:
                tally.hit(data["n"])

            worker = Worker(queue, noop, concurrency=workers)
            settings["prefetch"] = worker.prefetch  # the store's default (octoqueue.worker.default_prefetch)
            t2 = time.perf_counter()
            worker.run(once=True, install_signal_handlers=False)
            t3 = time.perf_counter()
        finally:
            queue.close()
        ok, detail = _octoqueue_store_check(path, jobs)
        return _result(system, "threads", jobs, workers, (t0, t1, t2, t3), tally, ok, detail, settings)


def run_octoqueue_full(jobs: int, workers: int, *, base_dir: str | None = None) -> RunResult:
    """octoqueue with ``synchronous=FULL`` (an fsync per commit, as GigQ and Huey run by default)."""
    return run_octoqueue(jobs, workers, base_dir=base_dir, synchronous="FULL", system="octoqueue-full")


def _octoqueue_process(path: str, synchronous: str, barrier: Any, out: Any) -> None:
    """One worker process: open the store, wait for the start line, drain until nothing is runnable."""
    from octoqueue.queue import Queue
    from octoqueue.stores.sqlite import SQLiteStore
    from octoqueue.worker import Worker

    seen: list[int] = []
    queue = Queue(SQLiteStore(path, synchronous=synchronous))
    try:
        worker = Worker(queue, lambda data: seen.append(data["n"]), concurrency=1)
        barrier.wait()
        worker.run(once=True, install_signal_handlers=False)
    finally:
        queue.close()
        out.put(seen)


def run_octoqueue_procs(
    jobs: int, workers: int, *, base_dir: str | None = None, synchronous: str = "NORMAL"
) -> RunResult:
    """octoqueue with ``workers`` processes, each ``Worker(queue, noop, concurrency=1).run(once=True)`` on the
    same file. The processes are started and have opened the store before the clock starts."""
    from octoqueue.queue import Queue
    from octoqueue.stores.sqlite import SQLiteStore
    from octoqueue.worker import default_prefetch

    ctx = multiprocessing.get_context("spawn")
    with _workdir(base_dir) as folder:
        path = os.path.join(folder, "octoqueue.db")
        tally = Tally(jobs)
        queue = Queue(SQLiteStore(path, synchronous=synchronous))
        try:
            settings, t0, t1 = _enqueue_timed(queue, jobs)
            settings["prefetch"] = default_prefetch(queue.store)  # what each process's Worker takes by default
        finally:
            queue.close()
        barrier = ctx.Barrier(workers + 1)
        out = ctx.Queue()
        procs = [
            ctx.Process(target=_octoqueue_process, args=(path, synchronous, barrier, out), daemon=True)
            for _ in range(workers)
        ]
        for proc in procs:
            proc.start()
        barrier.wait(timeout=120)
        t2 = time.perf_counter()
        for _ in procs:
            tally.extend(out.get(timeout=DRAIN_TIMEOUT))
        t3 = time.perf_counter()
        for proc in procs:
            proc.join(timeout=30)
        ok, detail = _octoqueue_store_check(path, jobs)
        return _result("octoqueue-procs", "processes", jobs, workers, (t0, t1, t2, t3), tally, ok, detail, settings)


# -- GigQ ---------------------------------------------------------------------------------------------------------
_GIGQ_TALLY: Tally | None = None


def gigq_noop(n: int) -> None:
    """GigQ imports a job's function by module and name, so it must live at module level."""
    assert _GIGQ_TALLY is not None
    _GIGQ_TALLY.hit(n)


def run_gigq(
    jobs: int, workers: int, *, base_dir: str | None = None, polling_interval: float = GIGQ_POLLING_INTERVAL
) -> RunResult:
    """GigQ: ``JobQueue.submit(Job(...))`` per job, then one ``Worker(concurrency=workers)`` (W claiming threads)
    until every job ran."""
    global _GIGQ_TALLY
    from gigq import Job, JobQueue, Worker
    from gigq.db_utils import close_connection, get_connection

    with _workdir(base_dir) as folder:
        path = os.path.join(folder, "gigq.db")
        tally = _GIGQ_TALLY = Tally(jobs)
        try:
            queue = JobQueue(path)
            settings = pragmas(get_connection(path))
            t0 = time.perf_counter()
            for i in range(jobs):
                queue.submit(Job(name="noop", function=gigq_noop, params={"n": i}))
            t1 = time.perf_counter()
            worker = Worker(path, polling_interval=polling_interval, concurrency=workers)  # type: ignore[arg-type]
            thread = threading.Thread(target=worker.start, name="gigq-worker", daemon=True)
            t2 = time.perf_counter()
            thread.start()
            tally.done.wait(DRAIN_TIMEOUT)
            worker.stop()
            thread.join()
            t3 = time.perf_counter()
        finally:
            close_connection(path)
            _GIGQ_TALLY = None
        rows = _query(path, "SELECT status, attempts, COUNT(*) FROM jobs GROUP BY status, attempts")
        executions = _query(path, "SELECT status, COUNT(*) FROM job_executions GROUP BY status")
        ok = rows == ([("completed", 1, jobs)] if jobs else []) and executions == (
            [("completed", jobs)] if jobs else []
        )
        detail = f"jobs (status, attempts, count): {rows}; executions: {executions}"
        return _result("gigq", "threads", jobs, workers, (t0, t1, t2, t3), tally, ok, detail, settings)


# -- Huey ---------------------------------------------------------------------------------------------------------
def run_huey(
    jobs: int, workers: int, *, base_dir: str | None = None, initial_delay: float = HUEY_INITIAL_DELAY
) -> RunResult:
    """Huey: ``SqliteHuey`` with its defaults (results stored, ``None`` results not stored); one task call per
    job, then Huey's own consumer with ``workers`` worker threads (``huey.dequeue()`` + ``huey.execute()`` in
    its worker loop) plus its scheduler thread, stopped gracefully once every job ran."""
    from huey import SqliteHuey

    with _workdir(base_dir) as folder:
        path = os.path.join(folder, "huey.db")
        tally = Tally(jobs)
        huey = SqliteHuey(name="bench", filename=path)
        try:
            settings = pragmas(huey.storage.conn)

            @huey.task()
            def noop(n: int) -> None:
                tally.hit(n)

            t0 = time.perf_counter()
            for i in range(jobs):
                noop(i)
            t1 = time.perf_counter()
            consumer = huey.create_consumer(
                workers=workers,
                worker_type="thread",
                periodic=False,
                initial_delay=initial_delay,
                check_worker_health=False,
            )
            # Consumer.start() without its signal handlers (they only work in the main thread, and a benchmark
            # has no business replacing the caller's SIGINT handler).
            t2 = time.perf_counter()
            consumer.scheduler.start()
            for _, thread in consumer.worker_threads:
                thread.start()
            tally.done.wait(DRAIN_TIMEOUT)
            consumer.stop(graceful=True)
            t3 = time.perf_counter()
        finally:
            huey.storage.close()
        left = _query(path, "SELECT COUNT(*) FROM task")[0][0]
        results = _query(path, "SELECT COUNT(*) FROM kv")[0][0]
        detail = f"tasks left in queue: {left}; kv rows (results, revoke flags): {results}"
        return _result("huey", "threads", jobs, workers, (t0, t1, t2, t3), tally, left == 0, detail, settings)


#: name -> runner(jobs, workers, base_dir=...)
SYSTEMS: dict[str, Callable[..., RunResult]] = {
    "octoqueue": run_octoqueue,
    "octoqueue-full": run_octoqueue_full,
    "octoqueue-procs": run_octoqueue_procs,
    "gigq": run_gigq,
    "huey": run_huey,
}

#: The systems octoqueue is compared against.
PEERS = ("gigq", "huey")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"sqlite": sqlite3.sqlite_version}
    for name in ("octoqueue", "gigq", "huey"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
