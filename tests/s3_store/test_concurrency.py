"""Many claimers on one S3 queue: each job is claimed once; a killed worker loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from octoqueue.job import NewJob
from octoqueue.states import JobState
from octoqueue.stores.s3 import S3Store
from octoqueue.testing.s3_server import TEST_CREDENTIALS
from tests.s3_store.conftest import open_s3

ROOT = Path(__file__).resolve().parents[2]


def _enqueue(store: S3Store, n: int) -> set[int]:
    with ThreadPoolExecutor(8) as pool:
        jobs = list(pool.map(lambda i: store.create(NewJob(data={"i": i}, title=f"job {i}")), range(n)))
    ids = {j.id for j in jobs}
    assert len(ids) == n
    return ids


def _worker(url: str, name: str, ledger: Path, *hang: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **TEST_CREDENTIALS, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.s3_store.worker_proc", url, name, str(ledger), *hang], cwd=ROOT, env=env
    )


def _ledger(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


def test_threads_on_two_processes_views_claim_each_job_once(loopback_s3: Any, bucket: str) -> None:
    stores = [open_s3(loopback_s3, bucket) for _ in range(2)]
    ids = _enqueue(stores[0], 150)
    seen: list[int] = []
    lock = threading.Lock()

    def grab(store: S3Store) -> None:
        while jobs := store.claim(worker=threading.current_thread().name, lease=60, limit=3):
            with lock:
                seen.extend(j.id for j in jobs)

    threads = [threading.Thread(target=grab, args=(stores[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(ids)
    assert stores[1].count([JobState.PENDING, JobState.PROCESSING]) == {JobState.PENDING: 0, JobState.PROCESSING: 150}


def test_job_numbers_from_many_processes_are_unique_and_never_reused(loopback_s3: Any, bucket: str) -> None:
    stores = [open_s3(loopback_s3, bucket, id_block=4) for _ in range(3)]
    with ThreadPoolExecutor(6) as pool:
        made = list(pool.map(lambda i: stores[i % 3].create(NewJob(data={}, title="t")).id, range(60)))
    assert len(set(made)) == 60
    for job_id in made:
        stores[0].transition(job_id, expected=JobState.PENDING, target=JobState.CANCELLED)
    assert stores[0].purge(states=[JobState.CANCELLED], older_than=stores[0].now() + timedelta(days=1)) == 60
    fresh = open_s3(loopback_s3, bucket).create(NewJob(data={}, title="after purge"))
    assert fresh.id > max(made)


def test_four_worker_processes_complete_each_job_exactly_once(loopback_s3: Any, bucket: str, tmp_path: Path) -> None:
    n = int(os.environ.get("OCTOQUEUE_S3_JOBS", "400"))
    ids = _enqueue(open_s3(loopback_s3, bucket), n)
    ledger = tmp_path / "ledger"
    url = loopback_s3.url(bucket, "q")
    started = time.monotonic()
    workers = [_worker(url, f"w{i}", ledger) for i in range(4)]
    for w in workers:
        assert w.wait(timeout=600) == 0
    elapsed = time.monotonic() - started
    lines = _ledger(ledger)
    completed = Counter(int(line[1]) for line in lines if line[0] == "completed")
    claimed = Counter(int(line[1]) for line in lines if line[0] == "claimed")
    assert set(completed) == ids and set(completed.values()) == {1}
    assert set(claimed.values()) == {1}  # no job handed out twice (no lease ran out on this run)
    by_worker = Counter(line[3] for line in lines if line[0] == "completed")
    assert len(by_worker) == 4
    print(f"{n} jobs by 4 processes in {elapsed:.1f}s ({n / elapsed:.0f} jobs/s); per worker {dict(by_worker)}")


def test_a_worker_killed_mid_job_loses_nothing(loopback_s3: Any, bucket: str, tmp_path: Path) -> None:
    store = open_s3(loopback_s3, bucket)
    ids = set()
    for i in range(20):
        ids.add(store.create(NewJob(data={"i": i}, title=f"job {i}", max_attempts=3)).id)
    ledger = tmp_path / "ledger"
    url = loopback_s3.url(bucket, "q")
    doomed = _worker(url, "doomed", ledger, "--hang")
    deadline = time.monotonic() + 60
    while "hanging" not in ledger.read_text() if ledger.exists() else True:
        assert time.monotonic() < deadline and doomed.poll() is None
        time.sleep(0.05)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    held = {int(line[1]) for line in _ledger(ledger) if line[0] == "claimed"}
    assert held and all(store.get(i).state is JobState.PROCESSING for i in held)
    survivor = _worker(url, "survivor", ledger)
    assert survivor.wait(timeout=300) == 0
    lines = _ledger(ledger)
    completed = Counter(int(line[1]) for line in lines if line[0] == "completed")
    assert set(completed) == ids and set(completed.values()) == {1}
    for job_id in held:  # the killed worker's jobs ran again, as attempt 2, after their leases ran out
        job = store.get(job_id)
        assert job.state is JobState.COMPLETED and job.attempt == 2 and job.worker is None
        assert "lease of attempt 1 expired on worker doomed" in (job.last_error or "")


@pytest.mark.parametrize("claimers", [6])
def test_racing_claimers_for_one_job_one_wins(loopback_s3: Any, bucket: str, claimers: int) -> None:
    stores = [open_s3(loopback_s3, bucket) for _ in range(claimers)]
    job = stores[0].create(NewJob(data={}, title="only one"))
    barrier = threading.Barrier(claimers)
    results: list[list[int]] = []

    def grab(store: S3Store) -> None:
        barrier.wait()
        results.append([j.id for j in store.claim(worker="w", lease=60)])

    threads = [threading.Thread(target=grab, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [[]] * (claimers - 1) + [[job.id]]
    assert stores[0].get(job.id).attempt == 1
