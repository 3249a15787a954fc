"""POST /webhooks/github: signatures over the raw body, ping, replays, and people driving jobs from issues.

The payloads under ``payloads/`` are shaped as GitHub sends them; each test points one at a job it made.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from octoqueue.api.webhooks import signature
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.memory import MemoryStore

from .conftest import WEBHOOK_SECRET, LiveServer, new_queue, payload, sign


def test_signature_matches_githubs_test_vector() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature("It's a Secret to Everybody", b"Hello, World!") == expected


def test_ping_is_answered(server: LiveServer) -> None:
    response = server.webhook("ping", payload("ping"))
    assert response.status_code == 200
    assert response.json()["status"] == "pong"


# -- verification ------------------------------------------------------------------------------------------------
def _post(server: LiveServer, body: bytes, signature_header: str | None, event: str = "ping") -> Any:
    hdrs = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4())}
    if signature_header is not None:
        hdrs["X-Hub-Signature-256"] = signature_header
    return server.post("/webhooks/github", data=body, headers=hdrs)


def test_a_missing_signature_is_401(server: LiveServer) -> None:
    response = _post(server, json.dumps(payload("ping")).encode(), None)
    assert response.status_code == 401
    assert "Missing" in response.json()["detail"]


def test_a_wrong_signature_is_401(server: LiveServer) -> None:
    body = json.dumps(payload("ping")).encode()
    assert _post(server, body, sign("another secret", body)).status_code == 401
    assert _post(server, body, "sha256=" + "0" * 64).status_code == 401
    assert _post(server, body, "sha1=" + "0" * 40).status_code == 401
    assert _post(server, body, sign(WEBHOOK_SECRET, body).upper()).status_code == 401


def test_a_forged_body_is_401(server: LiveServer) -> None:
    genuine = json.dumps(payload("issue_comment.created")).encode()
    forged = genuine.replace(b'"author_association": "NONE"', b'"author_association": "OWNER"')
    forged = forged.replace(b'"body": "/cancel"', b'"body": "/requeue"')
    assert forged != genuine
    assert _post(server, forged, sign(WEBHOOK_SECRET, genuine), "issue_comment").status_code == 401
    # the signature is over the raw bytes: the same JSON re-serialised differently fails too
    respaced = json.dumps(payload("ping"), indent=4).encode()
    assert _post(server, respaced, sign(WEBHOOK_SECRET, json.dumps(payload("ping")).encode())).status_code == 401


def test_without_a_secret_every_delivery_is_refused(make_server: Any) -> None:
    live = make_server(webhook_secret=None)
    response = live.webhook("ping", payload("ping"))
    assert response.status_code == 503
    assert "GITHUB_WEBHOOK_SECRET" in response.json()["detail"]


def test_signed_garbage_is_400(server: LiveServer) -> None:
    assert _post(server, b"not json", sign(WEBHOOK_SECRET, b"not json")).status_code == 400
    assert _post(server, b"[1, 2]", sign(WEBHOOK_SECRET, b"[1, 2]")).status_code == 400
    body = b"{}"
    response = server.post(
        "/webhooks/github",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body)},
    )
    assert response.status_code == 400


# -- helpers -----------------------------------------------------------------------------------------------------
def _job(queue: Queue, state: JobState) -> Job:
    job_id = queue.enqueue({"image": "cat.png"}, max_attempts=1)
    if state is JobState.PENDING:
        return queue.get(job_id)
    claimed = queue.claim()
    assert claimed is not None and claimed.id == job_id
    if state is JobState.FAILED:
        return queue.fail(claimed, error="boom")
    if state is JobState.COMPLETED:
        return queue.complete(claimed)
    return claimed


def _pointed(name: str, job: Job, **changes: Any) -> dict[str, Any]:
    data = payload(name)
    data["issue"]["number"] = job.id
    status = {"name": job.status, "color": "ededed", "id": 1, "node_id": "LA_1", "url": "", "default": False}
    extra = [label for label in data["issue"]["labels"] if label["name"] == "requeue"]
    data["issue"]["labels"] = [status, *extra]
    for path, value in changes.items():
        target = data
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[part]
        target[leaf] = value
    return data


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _comments(queue: Queue, job: Job) -> list[str]:
    return [c.body for c in queue.comments(job.id)]


# -- the requeue label -------------------------------------------------------------------------------------------
def test_the_owner_adding_the_requeue_label_requeues_a_failed_job(server: LiveServer) -> None:
    job = _job(server.queue, JobState.FAILED)
    response = server.webhook("issues", _pointed("issues.labeled", job))
    assert response.status_code == 202
    assert response.json() == {
        "status": "accepted",
        "delivery": response.json()["delivery"],
        "action": "requeue",
        "job_id": job.id,
        "reason": None,
    }
    _wait_for(lambda: server.queue.get(job.id).state is JobState.PENDING)
    assert any("Requeued by @octo-owner (the `requeue` label)" in c for c in _comments(server.queue, job))
    assert server.queue.get(job.id).attempts_left == 1


def test_the_requeue_label_in_any_letter_case_requeues(server: LiveServer) -> None:
    job = _job(server.queue, JobState.FAILED)
    data = _pointed("issues.labeled", job)
    data["label"]["name"] = "Requeue"  # GitHub label names ignore case: this is the requeue label
    assert server.webhook("issues", data).status_code == 202
    _wait_for(lambda: server.queue.get(job.id).state is JobState.PENDING)


def test_a_label_added_by_someone_without_shown_write_access_is_ignored(server: LiveServer) -> None:
    job = _job(server.queue, JobState.FAILED)
    stranger = {"login": "drive-by", "id": 99, "type": "User"}
    response = server.webhook("issues", _pointed("issues.labeled", job, sender=stranger))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert "no write access" in response.json()["reason"]
    time.sleep(0.2)
    assert server.queue.get(job.id).state is JobState.FAILED


def test_trusted_users_may_requeue_by_label(make_server: Any) -> None:
    live = make_server(webhook_trusted_users="ops-alice, @Ops-Bob")
    job = _job(live.queue, JobState.FAILED)
    bob = {"login": "ops-bob", "id": 7, "type": "User"}
    assert live.webhook("issues", _pointed("issues.labeled", job, sender=bob)).status_code == 202
    _wait_for(lambda: live.queue.get(job.id).state is JobState.PENDING)


def test_the_issue_author_with_write_access_may_requeue_by_label(server: LiveServer) -> None:
    job = _job(server.queue, JobState.FAILED)
    member = {"login": "team-member", "id": 8, "type": "User"}
    data = _pointed("issues.labeled", job, sender=member, issue__user=member, issue__author_association="MEMBER")
    assert server.webhook("issues", data).status_code == 202
    data = _pointed("issues.labeled", job, sender=member, issue__user=member, issue__author_association="CONTRIBUTOR")
    assert server.webhook("issues", data).json()["status"] == "ignored"


def test_other_labels_are_ignored(server: LiveServer) -> None:
    job = _job(server.queue, JobState.FAILED)
    data = _pointed("issues.labeled", job, label={"name": "bug", "id": 3, "color": "d73a4a"})
    assert server.webhook("issues", data).json()["status"] == "ignored"


# -- comment commands --------------------------------------------------------------------------------------------
def test_an_owners_cancel_comment_cancels_the_job(server: LiveServer) -> None:
    job = _job(server.queue, JobState.PENDING)
    response = server.webhook("issue_comment", _pointed("issue_comment.created", job))
    assert response.status_code == 202 and response.json()["action"] == "cancel"
    _wait_for(lambda: server.queue.get(job.id).state is JobState.CANCELLED)
    assert any("Cancelled by @octo-owner (`/cancel`)" in c for c in _comments(server.queue, job))


@pytest.mark.parametrize("association", ["NONE", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", None])
def test_commands_from_people_without_write_access_are_ignored(server: LiveServer, association: str | None) -> None:
    job = _job(server.queue, JobState.PENDING)
    data = _pointed("issue_comment.created", job, comment__author_association=association)
    response = server.webhook("issue_comment", data)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    time.sleep(0.2)
    assert server.queue.get(job.id).state is JobState.PENDING
    assert _comments(server.queue, job) == []


@pytest.mark.parametrize("command", ["/retry", "/requeue", "  /RETRY please", "Looks flaky.\n/requeue\nthanks"])
@pytest.mark.parametrize("association", ["OWNER", "MEMBER", "COLLABORATOR"])
def test_retry_and_requeue_comments(server: LiveServer, command: str, association: str) -> None:
    job = _job(server.queue, JobState.FAILED)
    data = _pointed("issue_comment.created", job, comment__body=command, comment__author_association=association)
    response = server.webhook("issue_comment", data)
    assert response.status_code == 202 and response.json()["action"] == "requeue"
    _wait_for(lambda: server.queue.get(job.id).state is JobState.PENDING)


@pytest.mark.parametrize("body", ["please /cancel this", "`/cancel`", "/cancelled", "thanks!", ""])
def test_comments_without_a_command_are_ignored(server: LiveServer, body: str) -> None:
    job = _job(server.queue, JobState.PENDING)
    data = _pointed("issue_comment.created", job, comment__body=body)
    assert server.webhook("issue_comment", data).json()["status"] == "ignored"


def test_impossible_commands_are_answered_not_applied(server: LiveServer) -> None:
    done = _job(server.queue, JobState.COMPLETED)
    assert server.webhook("issue_comment", _pointed("issue_comment.created", done)).status_code == 202
    _wait_for(lambda: any("only pending or processing" in c for c in _comments(server.queue, done)))
    assert server.queue.get(done.id).state is JobState.COMPLETED
    waiting = _job(server.queue, JobState.PENDING)
    data = _pointed("issue_comment.created", waiting, comment__body="/requeue")
    assert server.webhook("issue_comment", data).status_code == 202
    _wait_for(lambda: any("already pending" in c for c in _comments(server.queue, waiting)))


def test_edited_comments_are_ignored(server: LiveServer) -> None:
    job = _job(server.queue, JobState.PENDING)
    data = _pointed("issue_comment.created", job, action="edited")
    assert server.webhook("issue_comment", data).json()["status"] == "ignored"


# -- what is not a job -------------------------------------------------------------------------------------------
def test_issues_without_a_status_label_are_ignored(server: LiveServer) -> None:
    job = _job(server.queue, JobState.PENDING)
    data = _pointed("issue_comment.created", job)
    data["issue"]["labels"] = [{"name": "question"}]
    response = server.webhook("issue_comment", data)
    assert response.json()["status"] == "ignored" and "not a job" in response.json()["reason"]


def test_pull_requests_are_ignored(server: LiveServer) -> None:
    job = _job(server.queue, JobState.PENDING)
    data = _pointed("issue_comment.created", job)
    data["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/8", "merged_at": None}
    response = server.webhook("issue_comment", data)
    assert response.json() == {**response.json(), "status": "ignored", "reason": "pull requests are not jobs"}
    assert server.queue.get(job.id).state is JobState.PENDING


def test_other_events_are_ignored(server: LiveServer) -> None:
    assert server.webhook("push", {"ref": "refs/heads/main"}).json()["status"] == "ignored"


# -- hand-made bodies --------------------------------------------------------------------------------------------
def test_a_broken_body_in_the_payload_is_checked_against_the_store(server: LiveServer) -> None:
    # The payload says the body is broken; the store (the job's truth) holds a readable one: nothing to explain.
    job = _job(server.queue, JobState.PENDING)
    response = server.webhook("issues", _pointed("issues.opened", job))
    assert response.status_code == 202 and response.json()["action"] == "explain"
    _wait_for(lambda: 'outcome="readable"' in server.get("/metrics").text)
    assert _comments(server.queue, job) == []


def test_a_readable_body_needs_no_comment(server: LiveServer) -> None:
    job = _job(server.queue, JobState.PENDING)
    data = _pointed("issues.opened", job, issue__body='```json\n{"image": "dog.png"}\n```')
    assert server.webhook("issues", data).json()["status"] == "ignored"


def test_edits_are_checked_only_when_the_body_changed(server: LiveServer) -> None:
    job = _job(server.queue, JobState.PENDING)
    title_only = _pointed("issues.opened", job, action="edited", changes={"title": {"from": "old"}})
    assert server.webhook("issues", title_only).json()["status"] == "ignored"
    body_edit = _pointed("issues.opened", job, action="edited", changes={"body": {"from": "```json\n{}\n```"}})
    assert server.webhook("issues", body_edit).json()["action"] == "explain"


# -- replays -----------------------------------------------------------------------------------------------------
def test_a_replayed_delivery_is_not_acted_on_twice(server: LiveServer) -> None:
    job = _job(server.queue, JobState.FAILED)
    data = _pointed("issue_comment.created", job, comment__body="/requeue")
    delivery = str(uuid.uuid4())
    assert server.webhook("issue_comment", data, delivery=delivery).status_code == 202
    _wait_for(lambda: server.queue.get(job.id).state is JobState.PENDING)
    claimed = server.queue.claim()
    assert claimed is not None
    server.queue.fail(claimed, error="again")
    replay = server.webhook("issue_comment", data, delivery=delivery)
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    time.sleep(0.2)
    assert server.queue.get(job.id).state is JobState.FAILED
    # an ignored delivery replayed is a duplicate as well
    ping_id = str(uuid.uuid4())
    server.webhook("issues", _pointed("issues.labeled", job, label={"name": "bug"}), delivery=ping_id)
    assert server.webhook("issues", _pointed("issues.labeled", job), delivery=ping_id).json()["status"] == "duplicate"


def test_replays_are_refused_after_a_restart(make_server: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    first = make_server(queue=new_queue(url))
    job = _job(first.queue, JobState.PENDING)
    data = _pointed("issue_comment.created", job)
    delivery = str(uuid.uuid4())
    assert first.webhook("issue_comment", data, delivery=delivery).status_code == 202
    _wait_for(lambda: first.queue.get(job.id).state is JobState.CANCELLED)
    first.queue.requeue(job.id)
    second = make_server(queue=new_queue(url))
    assert second.webhook("issue_comment", data, delivery=delivery).json()["status"] == "duplicate"
    time.sleep(0.2)
    assert second.queue.get(job.id).state is JobState.PENDING


# -- speed -------------------------------------------------------------------------------------------------------
class SlowStore(MemoryStore):
    """A store whose writes take as long as GitHub's on a bad day."""

    delay = 3.0

    def transition(self, job_id: int, **kwargs: Any) -> Job:
        time.sleep(self.delay)
        return super().transition(job_id, **kwargs)


def test_the_reply_does_not_wait_for_the_action(make_server: Any) -> None:
    store = SlowStore()
    queue = Queue(store)
    job_id = queue.enqueue({"x": 1})
    live = make_server(queue=queue)
    job = queue.get(job_id)
    started = time.monotonic()
    response = live.webhook("issue_comment", _pointed("issue_comment.created", job))
    assert response.status_code == 202
    assert time.monotonic() - started < 1.0
    _wait_for(lambda: queue.get(job_id).state is JobState.CANCELLED, timeout=10)
