"""``--read-mirror``: the server answers reads for a GitHub queue from a local mirror, so reading costs no GitHub
request; writes still go to GitHub, and what others change there reaches the mirror."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from octoqueue.mirror_reads import ReadFromMirror
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.github import GitHubStore
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub
from tests.server.conftest import LiveServer, headers, test_settings


@pytest.fixture
def mirrored(tmp_path: Path) -> Iterator[tuple[FakeGitHub, ReadFromMirror, int]]:
    """A GitHub queue read through a SQLite mirror, with one job made before the mirror started. Ask for it before
    ``make_server`` so that the server stops before the queue and the emulator do."""
    with FakeGitHub(repo="octo/jobs") as gh:
        github = GitHubStore("octo/jobs", token="t", base_url=IN_PROCESS_URL, transport=gh.transport())
        early = Queue(github).enqueue({"made": "before the server started"})
        store = ReadFromMirror(github, SQLiteStore(tmp_path / "mirror.db"), interval=3600)
        try:
            yield gh, store, early
        finally:
            store.close()


def test_reads_come_from_the_mirror_and_cost_no_github_request(
    mirrored: tuple[FakeGitHub, ReadFromMirror, int], make_server: Callable[..., LiveServer]
) -> None:
    gh, store, early = mirrored
    queue = Queue(store)
    assert store.wait_ready(30)
    server = make_server(queue)
    made = server.post("/create-job", json={"data": {"n": 1}}, headers=headers("producer")).json()["job_id"]
    job = queue.claim()
    assert job is not None and job.id == early
    queue.complete(job, result={"ok": True})
    gh.reset_counters()
    for _ in range(3):
        assert server.get(f"/jobs/{early}").json()["status"] == "completed"
        assert server.get(f"/jobs/{made}").json()["status"] == "pending"
        assert store.count([JobState.PENDING])[JobState.PENDING] == 1
    assert gh.request_log == []  # every read answered locally

    # Another process moves a job on GitHub: the next poll brings it into the mirror.
    other = GitHubStore("octo/jobs", token="t", base_url=IN_PROCESS_URL, transport=gh.transport())
    Queue(other).cancel(made)
    assert server.get(f"/jobs/{made}").json()["status"] == "pending"  # not polled yet
    store.refresh()
    assert server.get(f"/jobs/{made}").json()["status"] == "cancelled"
    other.close()


def test_the_setting_wraps_the_store() -> None:
    from octoqueue.api.server import open_queue

    queue = open_queue(test_settings(store="memory://", read_mirror="memory://", read_mirror_interval=3600))
    try:
        assert isinstance(queue.store, ReadFromMirror)
        assert queue.store.wait_ready(30)
        job = queue.enqueue({"n": 1})
        assert queue.store.mirror.get(job).state is JobState.PENDING
    finally:
        queue.close()
