"""Label names compare as GitHub compares them (issue 9 item 5): a repository that already has ``Pending``."""

from __future__ import annotations

from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import MakeStore, R


def test_a_repository_with_capitalised_status_labels_runs_jobs(fake: FakeGitHub, make_store: MakeStore) -> None:
    with fake.client() as client:
        for name in ("Pending", "Processing", "Completed", "Archived"):
            assert client.post(f"{R}/labels", json={"name": name, "color": "ededed"}).status_code == 201
    queue = Queue(make_store())
    job = queue.enqueue_job({"n": 1}, additional_labels=["GPU"])
    assert fake.labels_of(job.id) == ["GPU", "Pending"]  # GitHub keeps the repository's spelling
    assert queue.get(job.id).state is JobState.PENDING
    assert queue.get(job.id).labels == ("GPU",)
    claimed = queue.claim(labels=["gpu"])
    assert claimed is not None and claimed.id == job.id
    assert fake.labels_of(job.id) == ["GPU", "Processing"]
    queue.complete(claimed, result={"ok": True})
    assert queue.get(job.id).state is JobState.COMPLETED
    assert [j.id for j in queue.list_jobs(states=[JobState.COMPLETED], labels=["gpu"]).jobs] == [job.id]
    assert sorted(name.lower() for name in fake.labels) == sorted(
        ["archived", "completed", "gpu", "pending", "processing", "failed", "cancelled", "octoqueue-settings"]
    )  # octoqueue made no second `pending` (GitHub would refuse it anyway)
