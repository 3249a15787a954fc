"""ChatOps that strangers and octoqueue itself cannot abuse, end to end: the emulator acts and delivers real
signed webhooks, the server answers them.

- octoqueue's own comments (failure texts, a worker's error) are never commands;
- deliveries from another repository never touch local jobs (GitHub and SQLite stores);
- on an organisation's repository, GitHub's permission decides, not ``author_association``;
- events out of order and delivered twice are handled once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from octoqueue.api import create_app
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import WEBHOOK_SECRET, free_port, headers, serve, test_settings
from .github_stack import BOT, OWNER, REPO, Stack, github_stack, wait_for

Q = "/api/v1/queues"
ORG_REPO = "acme-org/jobs"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with github_stack(monkeypatch) as made:
        yield made


@pytest.fixture
def org(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with github_stack(monkeypatch, ORG_REPO, organization=True) as made:
        made.github.add_member("private-maintainer", "maintain", public=False)
        made.github.add_member("public-reader", "read", public=True)
        made.github.add_contributor("stranger")
        yield made


# -- octoqueue's own comments --------------------------------------------------------------------------------------
def test_a_failure_text_holding_requeue_does_not_requeue_the_job(stack: Stack) -> None:
    job_id = stack.failed_job(error="x\n/requeue")
    (failure,) = [c for c in stack.github.comments_of(job_id) if "has failed" in c["body"]]
    assert failure["user"]["login"] == BOT
    # Every delivery was answered; none was acted on (202), so no requeue can be under way.
    assert stack.statuses("issue_comment", "created") == [200]
    assert stack.queue.get(job_id).state is JobState.FAILED
    assert stack.queue.get(job_id).attempts_used == 1


def test_the_token_users_own_command_is_ignored(stack: Stack) -> None:
    job_id = stack.failed_job()
    stack.github.comment(job_id, "/requeue", author=BOT)
    assert stack.statuses("issue_comment", "created") == [200, 200]
    assert stack.queue.get(job_id).state is JobState.FAILED


def test_a_bot_never_runs_a_command(stack: Stack) -> None:
    job_id = stack.failed_job()
    stack.github.state.user("ci[bot]").type = "Bot"
    stack.github.add_collaborator("ci[bot]", "admin")
    stack.github.comment(job_id, "/requeue", author="ci[bot]")
    assert stack.statuses("issue_comment", "created")[-1] == 200
    assert stack.queue.get(job_id).state is JobState.FAILED


def test_an_http_workers_fail_error_holding_cancel_does_not_cancel(stack: Stack) -> None:
    made = requests.post(stack.url + Q, json={"name": "work", "max_retries": 2}, headers=headers("admin"), timeout=30)
    assert made.status_code == 201, made.text
    submitted = requests.post(
        stack.url + f"{Q}/work/jobs", json={"payload": {}}, headers=headers("producer"), timeout=30
    )
    assert submitted.status_code in (200, 201), submitted.text
    claimed = requests.post(
        stack.url + f"{Q}/work/jobs/claim", json={"count": 1, "block_ms": 0}, headers=headers("worker"), timeout=30
    )
    (job,) = claimed.json()["jobs"]
    failed = requests.put(
        stack.url + f"{Q}/work/jobs/{job['id']}/fail",
        json={"error": "boom\n/cancel"},
        headers=headers("worker"),
        timeout=30,
    )
    assert failed.json()["status"] == "pending"
    assert 202 not in stack.statuses("issue_comment", "created")
    assert stack.queue.get(job["job_id"]).state is JobState.PENDING
    (note,) = [c["body"] for c in stack.github.comments_of(job["job_id"]) if "Attempt 1 failed" in c["body"]]
    assert "boom\n\\/cancel" in note  # escaped in Markdown: shown as "/cancel", never read as a command


# -- deliveries from another repository --------------------------------------------------------------------------
@contextlib.contextmanager
def foreign_github(server_url: str) -> Iterator[FakeGitHub]:
    """``someone/else``, whose owner comments on its own issues; its webhook (same secret) points at our server."""
    with FakeGitHub(
        repo="someone/else", webhook_url=server_url + "/webhooks/github", webhook_secret=WEBHOOK_SECRET
    ) as github:
        yield github


def _foreign_cancel(server_url: str, job_id: int) -> list[int | None]:
    with foreign_github(server_url) as foreign:
        while (
            number := foreign.create_issue("a job", "```json\n{}\n```", labels=["pending"], author="someone")
        ) < job_id:
            pass
        assert number == job_id
        foreign.comment(job_id, "/cancel", author="someone")
        foreign.flush_webhooks()
        return [d.status_code for d in foreign.deliveries if d.event == "issue_comment"]


def test_a_foreign_repositorys_delivery_leaves_github_jobs_alone(stack: Stack) -> None:
    job_id = stack.create_job({"n": 1})
    assert _foreign_cancel(stack.url, job_id) == [200]
    assert stack.queue.get(job_id).state is JobState.PENDING


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[tuple[str, Queue]]:
    settings = test_settings(store=f"sqlite:///{tmp_path / 'jobs.db'}", webhook_repo=REPO)
    app = create_app(settings)
    with serve(app, port=free_port()) as url:
        yield url, app.state.runtime.queue


def test_a_foreign_repositorys_delivery_leaves_sqlite_jobs_alone(sqlite_server: tuple[str, Queue]) -> None:
    url, queue = sqlite_server
    job_id = queue.enqueue({"n": 1})
    assert _foreign_cancel(url, job_id) == [200]
    assert queue.get(job_id).state is JobState.PENDING


def test_the_configured_repository_may_drive_sqlite_jobs(sqlite_server: tuple[str, Queue]) -> None:
    url, queue = sqlite_server
    job_id = queue.enqueue({"n": 1})
    with FakeGitHub(repo=REPO, webhook_url=url + "/webhooks/github", webhook_secret=WEBHOOK_SECRET) as github:
        assert github.create_issue("a job", "```json\n{}\n```", labels=["pending"], author=OWNER) == job_id
        github.comment(job_id, "/cancel", author=OWNER)
        wait_for(lambda: queue.get(job_id).state is JobState.CANCELLED)


def test_without_a_configured_repository_a_sqlite_server_takes_no_commands(tmp_path: Path) -> None:
    app = create_app(test_settings(store=f"sqlite:///{tmp_path / 'jobs.db'}", webhook_repo=None))
    with serve(app, port=free_port()) as url:
        queue = app.state.runtime.queue
        job_id = queue.enqueue({"n": 1})
        with FakeGitHub(repo=REPO, webhook_url=url + "/webhooks/github", webhook_secret=WEBHOOK_SECRET) as github:
            github.create_issue("a job", "```json\n{}\n```", labels=["pending"], author=OWNER)
            github.comment(job_id, "/cancel", author=OWNER)
            github.flush_webhooks()
            assert [d.status_code for d in github.deliveries if d.event == "issue_comment"] == [200]
        assert queue.get(job_id).state is JobState.PENDING


# -- an organisation's repository ----------------------------------------------------------------------------------
def test_a_private_member_with_write_access_may_requeue(org: Stack) -> None:
    job_id = org.failed_job()
    org.github.comment(job_id, "/requeue", author="private-maintainer")
    (comment,) = [c for c in org.github.comments_of(job_id) if c["body"] == "/requeue"]
    assert comment["author_association"] == "CONTRIBUTOR"  # GitHub hides the private membership
    wait_for(lambda: org.queue.get(job_id).state is JobState.PENDING)


def test_a_private_member_may_requeue_by_label(org: Stack) -> None:
    job_id = org.failed_job()
    org.github.add_label(job_id, "requeue", actor="private-maintainer")
    wait_for(lambda: org.queue.get(job_id).state is JobState.PENDING)


@pytest.mark.parametrize(("login", "association"), [("stranger", "CONTRIBUTOR"), ("public-reader", "MEMBER")])
def test_people_without_write_permission_may_not(org: Stack, login: str, association: str) -> None:
    job_id = org.failed_job()
    org.github.comment(job_id, "/requeue", author=login)
    org.github.add_label(job_id, "requeue", actor=login)
    (comment,) = [c for c in org.github.comments_of(job_id) if c["body"] == "/requeue"]
    assert comment["author_association"] == association
    assert 202 not in org.statuses("issue_comment", "created") + org.statuses("issues", "labeled")
    assert org.queue.get(job_id).state is JobState.FAILED


def test_the_organisation_shows_in_payloads(org: Stack) -> None:
    org.create_job({"n": 1})
    org.github.flush_webhooks()
    opened = next(d for d in org.github.deliveries if d.action == "opened")
    assert opened.payload["repository"]["owner"]["type"] == "Organization"
    assert opened.payload["organization"]["login"] == "acme-org"


# -- order and duplicates --------------------------------------------------------------------------------------------
def test_labeled_before_opened_and_twice_explains_a_broken_body_once(stack: Stack) -> None:
    stack.github.set_webhook_faults(reorder=True, opened_without_labels=True, duplicate=True)
    number = stack.github.create_issue(
        "typed by hand", body='```json\n{"a": 1,}\n```', labels=["pending"], author=OWNER
    )
    stack.github.flush_webhooks()
    mine = [d for d in stack.github.deliveries if d.event == "issues" and d.payload["issue"]["number"] == number]
    sent = [(d.action, d.status_code) for d in sorted(mine, key=lambda d: d.sent or 0)]
    assert next(d for d in mine if d.action == "opened").payload["issue"]["labels"] == []
    assert [action for action, _ in sent] == ["labeled", "labeled", "opened", "opened"]
    assert sorted(status or 0 for _, status in sent) == [200, 200, 202, 202]  # each GUID acted on once
    wait_for(lambda: stack.metric("explained") + stack.metric("already-explained") == 2)
    (note,) = [c["body"] for c in stack.github.comments_of(number)]
    assert "cannot read this job's data" in note


def test_a_command_delivered_twice_is_applied_once(stack: Stack) -> None:
    job_id = stack.failed_job()
    stack.github.set_webhook_faults(duplicate=True)
    stack.github.comment(job_id, "/requeue", author=OWNER)
    wait_for(lambda: stack.queue.get(job_id).state is JobState.PENDING)
    stack.github.flush_webhooks()
    commands = [
        d for d in stack.github.deliveries if d.event == "issue_comment" and d.payload["comment"]["body"] == "/requeue"
    ]
    assert len({d.guid for d in commands}) == 1
    assert sorted(d.status_code or 0 for d in commands) == [200, 202]  # acted on once, then a duplicate
    wait_for(lambda: stack.metric("requeued") == 1)
    bodies = [c["body"] for c in stack.github.comments_of(job_id)]
    assert sum(f"Requeued by @{OWNER}" in b for b in bodies) == 1 and not any("already" in b for b in bodies)
