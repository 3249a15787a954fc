"""End to end on GitHub (the emulator): people act in the issue UI, GitHub sends webhooks, the server acts.

FakeGitHub serves over HTTP and delivers signed webhooks to the server; the server runs on the GitHub store
(``github://owner/repo?base_url=<emulator>``, token from ``GH_TOKEN``), exactly as configured in production.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from octoqueue.states import JobState

from .conftest import headers
from .github_stack import OWNER, REPO, Stack, github_stack, wait_for


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with github_stack(monkeypatch) as made:
        yield made


def test_the_server_runs_on_the_github_store(stack: Stack) -> None:
    assert stack.queue.store.url.startswith(f"github://{REPO}")
    job_id = stack.create_job({"hello": "world"})
    issue = stack.github.get_issue(job_id)
    assert issue["state"] == "open" and "pending" in stack.github.labels_of(job_id)
    assert '"hello": "world"' in issue["body"]
    ready = requests.get(stack.url + "/ready", timeout=30)
    assert ready.status_code == 200
    metrics = requests.get(stack.url + "/metrics", timeout=30).text
    assert "octoqueue_github_rate_limit_remaining" in metrics
    # every delivery the emulator sent (issues.opened, labeled...) was accepted
    stack.github.flush_webhooks()
    assert stack.github.deliveries and all(d.status_code in (200, 202) for d in stack.github.deliveries)


def test_the_owner_adding_the_requeue_label_puts_the_job_back(stack: Stack) -> None:
    job_id = stack.failed_job()
    stack.github.add_label(job_id, "requeue", actor=OWNER)
    wait_for(lambda: stack.queue.get(job_id).state is JobState.PENDING)
    assert stack.github.get_issue(job_id)["state"] == "open"
    assert "pending" in stack.github.labels_of(job_id) and "failed" not in stack.github.labels_of(job_id)
    wait_for(lambda: any(f"Requeued by @{OWNER}" in c["body"] for c in stack.github.comments_of(job_id)))
    assert 202 in stack.statuses("issues", "labeled")
    again = stack.queue.claim()
    assert again is not None and again.id == job_id
    # The label was taken off (before the requeue's own write), so adding it again works again.
    assert "requeue" not in stack.github.labels_of(job_id)
    stack.queue.fail(again, error="boom again")
    stack.github.add_label(job_id, "requeue", actor=OWNER)
    wait_for(lambda: stack.queue.get(job_id).state is JobState.PENDING)
    wait_for(lambda: sum(f"Requeued by @{OWNER}" in c["body"] for c in stack.github.comments_of(job_id)) == 2)
    assert "requeue" not in stack.github.labels_of(job_id)


def test_a_comment_requeue_removes_no_label(stack: Stack) -> None:
    job_id = stack.failed_job()
    stack.github.comment(job_id, "/requeue", author=OWNER, author_association="OWNER")
    wait_for(lambda: stack.queue.get(job_id).state is JobState.PENDING)
    assert not [path for method, path, _ in stack.github.request_log if method == "DELETE" and "/labels/" in path]


def test_a_label_from_someone_without_write_access_changes_nothing(stack: Stack) -> None:
    job_id = stack.failed_job()
    stack.github.add_label(job_id, "requeue", actor="drive-by")
    stack.github.flush_webhooks()
    time.sleep(0.3)
    assert stack.queue.get(job_id).state is JobState.FAILED


def test_an_owners_cancel_comment_cancels(stack: Stack) -> None:
    job_id = stack.create_job({"n": 1})
    stack.github.comment(job_id, "/cancel", author=OWNER)
    wait_for(lambda: stack.queue.get(job_id).state is JobState.CANCELLED)
    issue = stack.github.get_issue(job_id)
    assert issue["state"] == "closed" and "cancelled" in stack.github.labels_of(job_id)
    wait_for(lambda: any(f"Cancelled by @{OWNER}" in c["body"] for c in stack.github.comments_of(job_id)))


def test_a_cancel_comment_without_write_access_is_ignored(stack: Stack) -> None:
    job_id = stack.create_job({"n": 2})
    stack.github.comment(job_id, "/cancel", author="stranger", author_association="NONE")
    stack.github.flush_webhooks()
    (delivery,) = [d for d in stack.github.deliveries if d.event == "issue_comment" and d.action == "created"]
    assert delivery.status_code == 200
    time.sleep(0.3)
    assert stack.queue.get(job_id).state is JobState.PENDING
    assert stack.github.get_issue(job_id)["state"] == "open"


def test_a_redelivered_command_is_not_applied_twice(stack: Stack) -> None:
    job_id = stack.failed_job()
    stack.github.comment(job_id, "/retry", author=OWNER)
    wait_for(lambda: stack.queue.get(job_id).state is JobState.PENDING)
    (delivery,) = [
        d for d in stack.github.deliveries if d.event == "issue_comment" and d.payload["comment"]["body"] == "/retry"
    ]
    job = stack.queue.claim()
    assert job is not None
    stack.queue.fail(job, error="boom again")
    stack.github.redeliver(delivery.guid)
    stack.github.flush_webhooks()
    assert stack.github.deliveries[-1].redelivery and stack.github.deliveries[-1].status_code == 200
    time.sleep(0.3)
    assert stack.queue.get(job_id).state is JobState.FAILED


def test_a_job_opened_by_hand_with_a_broken_body_is_explained(stack: Stack) -> None:
    number = stack.github.create_issue(
        "A job typed by hand", body='```json\n{"image": "dog.png",}\n```', labels=["pending"], author=OWNER
    )
    wait_for(lambda: bool(stack.github.comments_of(number)))
    (comment,) = stack.github.comments_of(number)
    assert "cannot read this job's data" in comment["body"]


def test_a_queue_whose_label_github_spells_in_capitals_works(stack: Stack) -> None:
    """Issue 9 item 5: the repository already has `Queue:Work`, so every job of queue `work` carries that spelling."""
    stack.github.tracker.create_label("Queue:Work", "ededed", None)
    api = stack.url + "/api/v1/queues"
    assert requests.post(api, json={"name": "work"}, headers=headers("admin"), timeout=30).status_code == 201
    submitted = requests.post(api + "/work/jobs", json={"payload": {"n": 1}}, headers=headers("producer"), timeout=30)
    assert submitted.status_code == 200, submitted.text
    (job,) = submitted.json()["jobs"]
    assert "Queue:Work" in stack.github.labels_of(job["job_id"])
    info = requests.get(api + "/work", headers=headers("reader"), timeout=30).json()
    assert info["pending"] == 1, info
    claimed = requests.post(api + "/work/jobs/claim", json={"count": 1}, headers=headers("worker"), timeout=30)
    (held,) = claimed.json()["jobs"]
    done = requests.put(f"{api}/work/jobs/{held['id']}/complete", json={}, headers=headers("worker"), timeout=30)
    assert done.status_code == 200, done.text
