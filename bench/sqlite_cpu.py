"""CPU per job of each layer of octoqueue on SQLite, in this process (``time.process_time``: the CPU this process
used, whatever share of the machine it got, so the figures travel better than jobs/s on a shared machine).

For each ``synchronous`` setting, on a fresh file: ``jobs`` jobs enqueued one ``Queue.enqueue`` each; claimed one
``Queue.claim`` each, then completed one ``Queue.complete`` each; then the same jobs again claimed four at a time
(``claim_batch(4)``) and completed four at a time (``complete_many``), as the Worker does with four threads. The
store's own part is also shown: ``SQLiteStore.create`` and the raw SQL statement alone (``INSERT``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

SETTINGS = ("NORMAL", "FULL")

#: Jobs a step at most (``python -m bench`` measures min(--jobs, this)).
JOBS = 2000


def _cpu(calls: int, fn: Callable[[], Any]) -> float:
    """CPU µs per call of ``fn`` made ``calls`` times."""
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def measure(jobs: int = JOBS, synchronous: str = "NORMAL") -> dict[str, float]:
    """CPU µs per job for each step (see the module's docstring)."""
    from octoqueue.job import NewJob
    from octoqueue.queue import Queue
    from octoqueue.states import JobState
    from octoqueue.stores._sqlite_columns import INSERT_SQL, insert_params
    from octoqueue.stores.sqlite import SQLiteStore

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="octoqueue-cpu-") as folder:
        store = SQLiteStore(os.path.join(folder, "cpu.db"), synchronous=synchronous)
        queue = Queue(store)
        try:
            numbers = iter(range(10 * jobs))
            out["enqueue"] = _cpu(jobs, lambda: queue.enqueue({"n": next(numbers)}))
            held: list[Any] = []
            out["claim"] = _cpu(jobs, lambda: held.extend(queue.claim_batch(1, worker="cpu", lease=300)))
            done = iter(held)
            out["complete"] = _cpu(jobs, lambda: queue.complete(next(done)))
            for _ in range(jobs):
                queue.enqueue({"n": next(numbers)})
            batches: list[list[Any]] = []
            out["claim, 4 a call"] = _cpu(jobs // 4, lambda: batches.append(queue.claim_batch(4, worker="cpu"))) / 4
            finished = iter(batches)
            out["complete, 4 a call"] = _cpu(jobs // 4, lambda: queue.complete_many(next(finished))) / 4
            new = NewJob(data={"n": 0}, title="cpu")
            out["SQLiteStore.create"] = _cpu(jobs, lambda: store.create(new))
            stamp = store.now()
            params = insert_params(new, state=JobState.PENDING, created_at=stamp, updated_at=stamp)
            writer = store._writer()
            out["INSERT alone"] = _cpu(jobs, lambda: writer.execute(INSERT_SQL, params).lastrowid)
        finally:
            queue.close()
    return out


def report(jobs: int = JOBS) -> dict[str, dict[str, float]]:
    """Measure each setting and print the table; returns the figures for ``--json``."""
    figures = {sync: measure(jobs, sync) for sync in SETTINGS}
    steps = list(next(iter(figures.values())))
    print(f"CPU µs per job, octoqueue on SQLite, in-process ({jobs} jobs a step):")
    print(f"{'step':<22}" + "".join(f"{sync:>10}" for sync in SETTINGS))
    for step in steps:
        print(f"{step:<22}" + "".join(f"{figures[sync][step]:>10.1f}" for sync in SETTINGS))
    return figures
