"""octoqueue's PostgreSQL store against procrastinate and PGQueuer, on the same server, doing the same work.

Each system gets a fresh schema of the benchmark server (``OCTOQUEUE_BENCH_POSTGRES``, default the test server
127.0.0.1:5432 database ``test``), dropped afterwards, and runs three timed phases with ``jobs`` no-op jobs:

1. **enqueue, single**: one call per job from one client (octoqueue ``Queue.enqueue``, procrastinate
   ``defer_async``, PGQueuer ``Queries.enqueue`` with one job);
2. **enqueue, batch**: the same number of jobs in batches of ``batch`` (octoqueue ``Queue.enqueue_many``,
   procrastinate ``batch_defer_async``, PGQueuer ``Queries.enqueue`` with lists);
3. **drain**: ``workers`` consumers run every job of phase 2, each handler recording the job's number; timed
   until every job ran and its completion is written. octoqueue: ``workers`` threads, each acknowledging its
   ``batch`` jobs and claiming the next ``batch`` in one transaction (``complete_and_claim``), every job
   leased and fenced. procrastinate: its worker, ``concurrency=workers``. PGQueuer: ``workers`` queue managers
   in drain mode, ``batch_size=batch``, on asyncpg. Jobs of phase 1 are drained untimed first (octoqueue: by its
   ``Worker`` class at its default ``prefetch`` — each thread takes that many jobs at once and completes them
   together with taking its next ones in one transaction — timed and reported as a separate line).

Afterwards every job number must have been seen exactly once. Durability: the server's ``synchronous_commit``
(``on``, checked and reported) for all three; no system changes it.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

SERVER = os.environ.get("OCTOQUEUE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class PgResult:
    system: str
    jobs: int
    workers: int
    batch: int
    enqueue_single: float  # jobs/s
    enqueue_batch: float
    drain: float
    missing: int
    duplicates: int
    drain_note: str = ""
    worker_class_drain: float | None = None  # octoqueue's Worker, at its default prefetch (jobs/s)
    worker_prefetch: int | None = None  # that prefetch

    @property
    def exactly_once(self) -> bool:
        return self.missing == 0 and self.duplicates == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exactly_once": self.exactly_once}


def _check(seen: list[int], jobs: int) -> tuple[int, int]:
    counts = Counter(seen)
    return sum(1 for n in range(jobs) if n not in counts), sum(1 for c in counts.values() if c > 1)


class _Schema:
    """A fresh schema on the benchmark server, dropped on exit."""

    def __init__(self, prefix: str) -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> str:
        import psycopg

        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        return self.name

    def __exit__(self, *exc: object) -> None:
        import psycopg

        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


def synchronous_commit() -> str:
    import psycopg

    with psycopg.connect(SERVER) as conn:
        row = conn.execute("SHOW synchronous_commit").fetchone()
    return str(row[0]) if row else "?"


def run_octoqueue(jobs: int, workers: int, batch: int) -> PgResult:
    from octoqueue.queue import Queue
    from octoqueue.states import JobState
    from octoqueue.stores.postgres import PostgresStore
    from octoqueue.worker import Worker

    with _Schema("bench_oq") as schema:
        store = PostgresStore.from_url(f"{SERVER}?schema={schema}", pool_max=workers + 2)
        queue = Queue(store, lease=60)
        try:
            started = time.perf_counter()
            for n in range(jobs):
                queue.enqueue({"n": n}, "job")
            single = jobs / (time.perf_counter() - started)

            # The single-enqueued jobs, drained by the Worker class (its default prefetch), timed apart.
            ran: list[int] = []
            worker = Worker(queue, lambda data: ran.append(data["n"]), concurrency=workers, poll_interval=0.05)
            prefetch = worker.prefetch
            started = time.perf_counter()
            worker.run(once=True, install_signal_handlers=False)
            worker_rate = jobs / (time.perf_counter() - started)
            assert store.count([JobState.COMPLETED])[JobState.COMPLETED] == jobs, "the Worker left jobs behind"

            started = time.perf_counter()
            for start in range(0, jobs, batch):
                queue.enqueue_many([{"n": n} for n in range(start, min(jobs, start + batch))], "job")
            batched = jobs / (time.perf_counter() - started)

            seen: list[int] = []

            def consume() -> None:
                claimed = queue.claim_batch(batch, lease=60)
                while claimed:
                    seen.extend(job.data["n"] for job in claimed)
                    # this batch's acknowledgements and the next batch's claim: one transaction, one round trip
                    outcomes, claimed = queue.complete_and_claim(claimed, None, batch, lease=60)
                    for outcome in outcomes:
                        if isinstance(outcome, Exception):
                            raise outcome

            threads = [threading.Thread(target=consume) for _ in range(workers)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            drain = jobs / (time.perf_counter() - started)
            left = store.count([JobState.PENDING, JobState.PROCESSING])
            missing, duplicates = _check(seen, jobs)
            missing += sum(left.values())
        finally:
            queue.close()
    return PgResult(
        "octoqueue-pg",
        jobs,
        workers,
        batch,
        single,
        batched,
        drain,
        missing,
        duplicates,
        f"{workers} threads: complete_and_claim({batch}), a transaction a batch",
        worker_rate,
        prefetch,
    )


def _options(schema: str) -> str:
    return f"-c search_path={schema}"


def run_procrastinate(jobs: int, workers: int, batch: int) -> PgResult:
    import procrastinate

    seen: list[int] = []

    async def main(schema: str) -> tuple[float, float, float]:
        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=SERVER, kwargs={"options": _options(schema)})
        )

        @app.task(name="noop")
        async def noop(n: int) -> None:
            seen.append(n)

        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            started = time.perf_counter()
            for n in range(jobs):
                await noop.defer_async(n=-1 - n)  # phase 1's jobs: drained untimed, not counted
            single = jobs / (time.perf_counter() - started)
            await app.run_worker_async(concurrency=workers, wait=False, install_signal_handlers=False)
            seen.clear()
            started = time.perf_counter()
            for start in range(0, jobs, batch):
                await noop.batch_defer_async(*({"n": n} for n in range(start, min(jobs, start + batch))))
            batched = jobs / (time.perf_counter() - started)
            started = time.perf_counter()
            await app.run_worker_async(
                concurrency=workers, wait=False, install_signal_handlers=False, fetch_job_polling_interval=0.05
            )
            drain = jobs / (time.perf_counter() - started)
            return single, batched, drain

    with _Schema("bench_proc") as schema:
        single, batched, drain = asyncio.run(main(schema))
    missing, duplicates = _check(seen, jobs)
    return PgResult(
        "procrastinate",
        jobs,
        workers,
        batch,
        single,
        batched,
        drain,
        missing,
        duplicates,
        f"worker concurrency={workers}",
    )


def run_pgqueuer(jobs: int, workers: int, batch: int) -> PgResult:
    import asyncpg
    from pgqueuer import QueueManager
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    seen: list[int] = []

    async def connect(schema: str) -> Any:
        # asyncpg: PGQueuer's own first choice of driver, and its fastest.
        return AsyncpgDriver(await asyncpg.connect(SERVER, server_settings={"search_path": schema}))

    async def drain_all(schema: str) -> None:
        managers = []
        for _ in range(workers):
            manager = QueueManager(Queries(await connect(schema)))

            @manager.entrypoint("noop")
            async def noop(job: Any) -> None:
                seen.append(int(job.payload))

            managers.append(manager)
        await asyncio.gather(
            *(
                m.run(mode=QueueExecutionMode.drain, batch_size=batch, dequeue_timeout=timedelta(seconds=0.05))
                for m in managers
            )
        )

    async def main(schema: str) -> tuple[float, float, float]:
        queries = Queries(await connect(schema))
        await queries.install()
        started = time.perf_counter()
        for n in range(jobs):
            await queries.enqueue("noop", str(-1 - n).encode())
        single = jobs / (time.perf_counter() - started)
        await drain_all(schema)
        seen.clear()
        started = time.perf_counter()
        for start in range(0, jobs, batch):
            numbers = range(start, min(jobs, start + batch))
            await queries.enqueue(["noop"] * len(numbers), [str(n).encode() for n in numbers], [0] * len(numbers))
        batched = jobs / (time.perf_counter() - started)
        started = time.perf_counter()
        await drain_all(schema)
        drain = jobs / (time.perf_counter() - started)
        return single, batched, drain

    with _Schema("bench_pgq") as schema:
        single, batched, drain = asyncio.run(main(schema))
    missing, duplicates = _check(seen, jobs)
    return PgResult(
        "pgqueuer",
        jobs,
        workers,
        batch,
        single,
        batched,
        drain,
        missing,
        duplicates,
        f"{workers} queue managers, drain mode, batch_size={batch}",
    )


SYSTEMS: dict[str, Callable[[int, int, int], PgResult]] = {
    "octoqueue-pg": run_octoqueue,
    "procrastinate": run_procrastinate,
    "pgqueuer": run_pgqueuer,
}


def _median(results: list[PgResult]) -> PgResult:
    """The per-phase medians of one system's rounds (exactly once only if every round was)."""
    first = results[0]

    def mid(values: list[float]) -> float:
        return statistics.median(values)

    worker = [r.worker_class_drain for r in results if r.worker_class_drain is not None]
    return PgResult(
        first.system,
        first.jobs,
        first.workers,
        first.batch,
        mid([r.enqueue_single for r in results]),
        mid([r.enqueue_batch for r in results]),
        mid([r.drain for r in results]),
        sum(r.missing for r in results),
        sum(r.duplicates for r in results),
        first.drain_note,
        mid(worker) if worker else None,
        first.worker_prefetch,
    )


def report(
    jobs: int, workers: int, batch: int, only: list[str] | None = None, repeat: int = 1
) -> tuple[dict[str, Any], bool]:
    """Run every system ``repeat`` times, the order rotated between rounds (a peer that is not installed is named
    and left out); print the medians."""
    sync = synchronous_commit()
    print(
        f"PostgreSQL: {jobs} no-op jobs, {workers} consumers, batches of {batch}, {repeat} round(s), medians; "
        f"synchronous_commit={sync}",
        flush=True,
    )
    names = only or list(SYSTEMS)
    rounds: dict[str, list[PgResult]] = {}
    skipped: dict[str, str] = {}
    for round_no in range(repeat):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            if name in skipped:
                continue
            try:
                rounds.setdefault(name, []).append(SYSTEMS[name](jobs, workers, batch))
            except ImportError as exc:
                skipped[name] = f"not installed: {exc}"
    results = {name: _median(found) for name, found in rounds.items() if found}
    head = f"{'system':<14} {'enqueue 1/call':>15} {'enqueue batch':>14} {'drain jobs/s':>13}  exactly once  drain by"
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        print(
            f"{name:<14} {r.enqueue_single:>15,.0f} {r.enqueue_batch:>14,.0f} {r.drain:>13,.0f}  "
            f"{'yes' if r.exactly_once else 'NO':<12}  {r.drain_note}"
        )
        if r.worker_class_drain is not None:
            print(
                f"{'':<14} {'':>15} {'':>14} {r.worker_class_drain:>13,.0f}  {'':<12}  "
                f"Worker class, {workers} threads, prefetch {r.worker_prefetch}"
            )
    for name, why in skipped.items():
        print(f"{name:<14} skipped ({why})")
    payload = {
        "synchronous_commit": sync,
        "medians": {name: r.as_dict() for name, r in results.items()},
        "rounds": {name: [r.as_dict() for r in found] for name, found in rounds.items()},
        "skipped": skipped,
        "load_average": os.getloadavg(),
    }
    return payload, all(r.exactly_once for r in results.values())
