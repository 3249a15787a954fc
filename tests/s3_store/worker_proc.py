"""A worker process for the S3 concurrency tests: claims, records, completes, until the queue is drained.

``python -m tests.s3_store.worker_proc URL NAME LEDGER [--hang]``: each claim and each completion is appended to
LEDGER as one line (``claimed <id> <attempt> <name>`` / ``completed <id> <attempt> <name>``) before the next step,
so a test reads exactly what happened even after a SIGKILL. ``--hang``: stop forever after the first claim (holding
the jobs), for the test to kill it mid-job.
"""

from __future__ import annotations

import os
import sys
import time

from octoqueue.errors import LeaseLost
from octoqueue.states import JobState
from octoqueue.stores import open_store

LEASE = 2.0


def main(url: str, name: str, ledger: str, hang: bool) -> None:
    store = open_store(url)
    out = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    idle = 0
    while True:
        jobs = store.claim(worker=name, lease=LEASE, limit=4)
        for job in jobs:
            os.write(out, f"claimed {job.id} {job.attempt} {name}\n".encode())
        if jobs and hang:
            os.write(out, f"hanging {name}\n".encode())
            time.sleep(3600)
        for job in jobs:
            try:
                store.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=job.attempt)
            except LeaseLost:
                continue
            os.write(out, f"completed {job.id} {job.attempt} {name}\n".encode())
        if jobs:
            idle = 0
            continue
        store.recover_expired()
        counts = store.count([JobState.PENDING, JobState.PROCESSING])
        if not any(counts.values()):
            idle += 1
            if idle >= 3:
                requests = getattr(getattr(store, "s3", None), "requests", {})
                print(f"{name}: requests {dict(sorted(requests.items()))}", flush=True)
                return
        time.sleep(0.2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], "--hang" in sys.argv[4:])
