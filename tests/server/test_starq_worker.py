"""Starq's "Writing a Worker" loop, copied verbatim from its README, runs unchanged against octoqueue.

Only the three configuration constants are pointed at the test server. The loop never ends by itself; the test
ends it the way a real deployment would: when every job is done, the queue is deleted, the loop's next claim
gets 404, ``raise_for_status()`` raises outside its ``try``, and the thread exits with that exception.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from octoqueue.states import JobState

from .conftest import KEYS, LiveServer, headers

STARQ_WORKER = """\
import requests

API = "https://queue.korroni.cloud"
API_KEY = "your-api-key"
QUEUE = "my-queue"
HEADERS = {"X-API-Key": API_KEY, "Content-Type": "application/json"}


def claim_jobs(count=1, block_ms=5000):
    r = requests.post(
        f"{API}/api/v1/queues/{QUEUE}/jobs/claim",
        json={"count": count, "block_ms": block_ms},
        headers=HEADERS,
    )
    r.raise_for_status()
    return r.json()["jobs"]


def complete_job(job_id, result=None):
    requests.put(
        f"{API}/api/v1/queues/{QUEUE}/jobs/{job_id}/complete",
        json={"result": result or {}},
        headers=HEADERS,
    ).raise_for_status()


def fail_job(job_id, error=""):
    requests.put(
        f"{API}/api/v1/queues/{QUEUE}/jobs/{job_id}/fail",
        json={"error": error},
        headers=HEADERS,
    ).raise_for_status()


while True:
    jobs = claim_jobs(count=5, block_ms=5000)
    if not jobs:
        continue
    for job in jobs:
        try:
            # --- your work here ---
            payload = job["payload"]
            result = {"processed": True}
            # ----------------------
            complete_job(job["id"], result)
        except Exception as e:
            fail_job(job["id"], str(e))
"""


def configured(api: str, key: str, queue: str = "my-queue") -> str:
    source = STARQ_WORKER.replace('"https://queue.korroni.cloud"', repr(api), 1)
    source = source.replace('"your-api-key"', repr(key), 1)
    return source.replace('"my-queue"', repr(queue), 1)


def start_worker(source: str) -> tuple[threading.Thread, list[BaseException]]:
    ended: list[BaseException] = []

    def run() -> None:
        try:
            exec(compile(source, "starq_worker.py", "exec"), {"__name__": "starq_worker"})
        except BaseException as exc:
            ended.append(exc)

    thread = threading.Thread(target=run, name="starq-worker", daemon=True)
    thread.start()
    return thread, ended


def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_verbatim_loop_parses_as_the_readme_has_it() -> None:
    assert "while True:" in STARQ_WORKER and STARQ_WORKER.count("requests.") == 3
    compile(STARQ_WORKER, "starq_worker.py", "exec")


def test_the_starq_worker_loop_drains_a_queue(make_server: Any) -> None:
    live: LiveServer = make_server(max_block_ms=500)
    assert live.post("/api/v1/queues", json={"name": "my-queue"}, headers=headers("admin")).status_code == 201
    submitted = live.post(
        "/api/v1/queues/my-queue/jobs",
        json={"jobs": [{"payload": {"n": i}, "priority": 0} for i in range(12)]},
        headers=headers("producer"),
    ).json()
    ids = [job["job_id"] for job in submitted["jobs"]]
    assert len(ids) == 12

    thread, ended = start_worker(configured(live.url, KEYS["worker"]))
    wait_until(lambda: live.queue.counts()[JobState.COMPLETED] == 12)
    # More work arrives while the loop long-polls: it is picked up at once.
    live.post("/api/v1/queues/my-queue/jobs", json={"payload": {"late": True}}, headers=headers("producer"))
    wait_until(lambda: live.queue.counts()[JobState.COMPLETED] == 13)

    assert live.delete("/api/v1/queues/my-queue", headers=headers("admin")).status_code == 200
    thread.join(timeout=10)
    assert not thread.is_alive()
    (exc,) = ended
    assert isinstance(exc, requests.HTTPError) and exc.response is not None
    assert exc.response.status_code == 404  # the queue is gone: the loop's claim raised

    for job_id in ids:
        job = live.queue.get(job_id)
        assert job.state is JobState.COMPLETED
        assert job.result == {"processed": True}
        assert job.attempt == 1


def test_two_starq_workers_share_a_queue_without_doing_a_job_twice(make_server: Any) -> None:
    live: LiveServer = make_server(max_block_ms=500)
    live.post("/api/v1/queues", json={"name": "shared"}, headers=headers("admin"))
    live.post(
        "/api/v1/queues/shared/jobs",
        json={"jobs": [{"payload": {"n": i}} for i in range(40)]},
        headers=headers("producer"),
    )
    workers = [start_worker(configured(live.url, KEYS["worker"], "shared")) for _ in range(2)]
    wait_until(lambda: live.queue.counts()[JobState.COMPLETED] == 40)
    live.delete("/api/v1/queues/shared", headers=headers("admin"))
    for thread, _ in workers:
        thread.join(timeout=10)
    jobs = live.queue.list_jobs(labels=["queue:shared"], limit=100).jobs
    assert len(jobs) == 40
    assert all(job.attempt == 1 and job.state is JobState.COMPLETED for job in jobs)
    assert sum(len(c) for c in (live.queue.comments(j.id) for j in jobs)) == 40  # one result comment each
