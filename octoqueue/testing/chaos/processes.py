"""The processes a chaos run starts: ``python -m octoqueue.testing.chaos.processes worker|server``.

Both open the store the same way: the URL from ``--store`` and keyword options (JSON) from
``OCTOQUEUE_CHAOS_STORE_OPTIONS`` — for the GitHub store, the write pacing scaled like the emulator's limits.

``worker``: the library's :class:`~octoqueue.worker.Worker` with a handler that records its run, over a queue that
records each completion before asking for it and after the store accepted it (see :mod:`.ledger`).
``server``: the real app (:func:`octoqueue.api.create_app`) under uvicorn on ``--port``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import time
from collections.abc import Sequence
from typing import Any

from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy
from octoqueue.stores import open_store
from octoqueue.testing.chaos import ledger

STORE_OPTIONS_ENV = "OCTOQUEUE_CHAOS_STORE_OPTIONS"
LEDGER_ENV = "OCTOQUEUE_CHAOS_LEDGER"


def open_queue(store_url: str, lease: float) -> Queue:
    options: dict[str, Any] = json.loads(os.environ.get(STORE_OPTIONS_ENV) or "{}")
    return LedgerQueue(open_store(store_url, **options), retry=RetryPolicy(initial=0.2, jitter=0), lease=lease)


class LedgerQueue(Queue):
    """A queue that writes ``completing`` before a completion and ``completed`` once the store accepted it, on
    every path the Worker completes by: one at a time, in a batch, and in a batch that also claims."""

    def complete(self, job: Any, comment: str | None = None, result: Any = None) -> Job:
        path = os.environ[LEDGER_ENV]
        ledger.append(path, "completing", job.id, job.attempt)
        done = super().complete(job, comment, result)
        ledger.append(path, "completed", done.id, job.attempt)
        return done

    def complete_many(self, jobs: Sequence[Any], results: Sequence[Any] | None = None) -> list[Job | Exception]:
        _completing(jobs)
        return _completed(jobs, super().complete_many(jobs, results))

    def complete_and_claim(
        self, jobs: Sequence[Any], results: Sequence[Any] | None, count: int, **claim: Any
    ) -> tuple[list[Job | Exception], list[Job]]:
        _completing(jobs)
        outcomes, taken = super().complete_and_claim(jobs, results, count, **claim)
        return _completed(jobs, outcomes), taken


def _completing(jobs: Sequence[Any]) -> None:
    path = os.environ[LEDGER_ENV]
    for job in jobs:
        ledger.append(path, "completing", job.id, job.attempt)


def _completed(jobs: Sequence[Any], outcomes: list[Job | Exception]) -> list[Job | Exception]:
    path = os.environ[LEDGER_ENV]
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, Job):
            ledger.append(path, "completed", outcome.id, job.attempt)
    return outcomes


def record_run(data: Any, job: Job) -> dict[str, int]:
    """The handler: note the run, then work a little (so kills land mid-job)."""
    ledger.append(os.environ[LEDGER_ENV], "run", job.id, job.attempt)
    time.sleep(random.uniform(0, 0.02))
    return {"n": data.get("n", 0) if isinstance(data, dict) else 0}


def run_worker(args: argparse.Namespace) -> None:
    from octoqueue.worker import Worker

    with open_queue(args.store, args.lease) as queue:
        worker = Worker(
            queue,
            record_run,
            concurrency=args.concurrency,
            lease=args.lease,
            poll_interval=0.2,
            recover_interval=args.lease / 2,
            shutdown_grace=5,
        )
        worker.run()


def run_server(args: argparse.Namespace) -> None:
    import uvicorn

    from octoqueue.api import create_app
    from octoqueue.api.settings import Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        api_keys=os.environ["API_KEYS"],
        rate_limit_requests=0,
        webhook_secret=None,
    )
    queue = open_queue(args.store, args.lease)
    uvicorn.run(create_app(settings, queue), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m octoqueue.testing.chaos.processes")
    parser.add_argument("role", choices=("worker", "server"))
    parser.add_argument("--store", required=True)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(name)s: %(message)s")
    (run_worker if args.role == "worker" else run_server)(args)


if __name__ == "__main__":
    main()
