"""Many worker processes on one SQLite file: every job exactly once; a SIGKILLed worker loses nothing."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from octoqueue.queue import Queue
from octoqueue.states import JobState

ROOT = Path(__file__).resolve().parents[2]


def _worker(db: Path, record_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, RECORD_DIR=str(record_dir), PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "octoqueue.cli",
            "work",
            "--store",
            f"sqlite:///{db}",
            "--handler",
            "tests.core.handlers_for_tests:record",
            "--log-level",
            "warning",
            *extra,
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _executions(record_dir: Path) -> collections.Counter[int]:
    counts: collections.Counter[int] = collections.Counter()
    for log in record_dir.glob("*.log"):
        counts.update(int(line) for line in log.read_text().split())
    return counts


def test_eight_processes_two_thousand_jobs_each_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    records = tmp_path / "records"
    records.mkdir()
    with Queue(f"sqlite:///{db}") as queue:
        ids = [queue.enqueue({"i": i}) for i in range(2000)]
    workers = [_worker(db, records, "--once", "--concurrency", "2") for _ in range(8)]
    for proc in workers:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()
    executions = _executions(records)
    assert sorted(executions) == sorted(ids)
    assert set(executions.values()) == {1}, [i for i, n in executions.items() if n > 1][:10]
    assert len({log.name for log in records.glob("*.log")}) > 1  # the work really was shared
    with Queue(f"sqlite:///{db}") as queue:
        counts = queue.counts()
        assert counts[JobState.COMPLETED] == 2000 and sum(counts.values()) == 2000
        assert all(job.attempt == 1 for job in queue.store.iter_jobs())


def test_sigkilled_worker_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    records = tmp_path / "records"
    records.mkdir()
    with Queue(f"sqlite:///{db}", max_attempts=3) as queue:
        victim = queue.enqueue({"hang_on_first_attempt": True})
        others = [queue.enqueue({"i": i}) for i in range(20)]
    doomed = _worker(db, records, "--lease", "1", "--max-jobs", "1")
    deadline = time.monotonic() + 30
    while not (records / "hanging").exists():
        assert time.monotonic() < deadline, "the worker never took the job"
        time.sleep(0.05)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    with Queue(f"sqlite:///{db}") as queue:
        assert queue.get_job_status(victim) == "processing"  # held by a dead worker, until its lease expires
    survivor = _worker(db, records, "--lease", "5")
    try:
        deadline = time.monotonic() + 60
        with Queue(f"sqlite:///{db}") as queue:
            while queue.counts()[JobState.COMPLETED] < 21:
                assert time.monotonic() < deadline, queue.counts()
                time.sleep(0.2)
            job = queue.get(victim)
            assert job.state is JobState.COMPLETED and job.attempt == 2
            assert "expired" in (job.last_error or "")
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=30)
    assert survivor.returncode == 0
    executions = _executions(records)
    assert executions[victim] == 2  # once in the killed worker, once to completion
    assert all(executions[i] == 1 for i in others)
