"""The GitHub store over real HTTP (the emulator served by uvicorn), as a deployed worker would talk to GitHub."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from octoqueue.github import GithubQueue
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores import open_store
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import FAST, REPO, TOKEN


@pytest.fixture
def served(fake: FakeGitHub) -> Iterator[str]:
    with fake.serve() as url:
        yield url


def test_lifecycle_over_http(fake: FakeGitHub, served: str) -> None:
    queue = Queue(open_store(f"github://{REPO}?base_url={served}", token=TOKEN, **FAST))
    try:
        job_id = queue.enqueue({"data": "example"}, additional_labels=["gpu"])
        job = queue.claim()
        assert job is not None and job.id == job_id and job.labels == ("gpu",)
        queue.complete(job, result={"ok": True})
        assert queue.get_job_status(job_id) == "completed"
        assert fake.get_issue(job_id)["state"] == "closed"
        assert queue.store.now().year >= 2024
    finally:
        queue.close()


def test_two_processes_over_http_share_the_work(fake: FakeGitHub, served: str) -> None:
    producer = GithubQueue(repo=REPO, token=TOKEN, base_url=served, **FAST)
    ids = [producer.enqueue({"i": i}) for i in range(30)]
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        queue = GithubQueue(repo=REPO, token=TOKEN, base_url=served, **FAST)
        try:
            while (job := queue.claim()) is not None:
                with lock:
                    seen.append(job.id)
                queue.complete(job)
        finally:
            queue.close()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(seen) == ids
    assert producer.store.count([JobState.COMPLETED]) == {JobState.COMPLETED: 30}
    producer.close()
