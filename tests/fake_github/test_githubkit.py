"""Every response validates against githubkit's models, and githubkit drives the emulator end to end."""

from __future__ import annotations

import asyncio
from typing import Any

import githubkit_schemas.latest.models as m
import httpx
import pytest
from githubkit import GitHub
from githubkit.exception import PrimaryRateLimitExceeded, RequestFailed, SecondaryRateLimitExceeded
from pydantic import TypeAdapter

from octoqueue.testing.fake_github import IN_PROCESS_URL, INITIAL_COMMIT_SHA, FakeGitHub
from tests.fake_github.conftest import REPO, TOKEN, R

OWNER, NAME = REPO.split("/")
LabelEvent = m.LabeledIssueEvent | m.UnlabeledIssueEvent

# Fields the models declare that GitHub leaves out of default (non-"full" media type) responses.
NOT_SENT = {
    "Issue": {
        "body_html",
        "body_text",
        "repository",
        "pinned_comment",
        "issue_field_values",
        "parent_issue_url",
        "draft",
        "pull_request",
    },
    "IssueComment": {"body_html", "body_text", "pin", "minimized"},
}


def check(model: Any, response: httpx.Response, status: int = 200) -> Any:
    """Assert the status, then validate the JSON with ``model`` (a pydantic type or annotation)."""
    assert response.status_code == status, response.text
    return TypeAdapter(model).validate_python(response.json())


def assert_complete(model: type, data: dict[str, Any]) -> None:
    """Every field the model knows (by its JSON name), except those GitHub omits, is present."""
    names = {field.alias or name for name, field in model.model_fields.items()}  # type: ignore[attr-defined]
    missing = names - data.keys() - NOT_SENT.get(model.__name__, set())
    assert not missing, f"{model.__name__} lacks {sorted(missing)}"


def test_every_endpoint_validates(client: httpx.Client, gh: FakeGitHub) -> None:
    check(m.Root, client.get("/"))
    check(m.RateLimitOverview, client.get("/rate_limit"))
    check(m.PrivateUser, client.get("/user"))
    check(m.FullRepository, client.get(R))

    created = check(m.Issue, client.post(f"{R}/issues", json={"title": "t", "body": "b", "labels": ["p"]}), 201)
    n = created.number
    assert_complete(m.Issue, client.get(f"{R}/issues/{n}").json())
    check(m.Issue, client.get(f"{R}/issues/{n}"))
    gh.create_pull_request("pr")
    issues = check(list[m.Issue], client.get(f"{R}/issues"))
    assert any(i.pull_request for i in issues)
    check(m.ReposOwnerRepoIssuesIssueNumberPatchResponse200, client.patch(f"{R}/issues/{n}", json={"title": "u"}))
    check(m.Issue, client.patch(f"{R}/issues/{n}", json={"labels": ["q"]}))

    label = check(m.Label, client.post(f"{R}/labels", json={"name": "new", "color": "abcdef"}), 201)
    assert_complete(m.Label, client.get(f"{R}/labels/new").json())
    check(m.Label, client.get(f"{R}/labels/{label.name}"))
    check(m.Label, client.patch(f"{R}/labels/new", json={"description": "d"}))
    check(list[m.Label], client.get(f"{R}/labels"))
    check(list[m.Label], client.get(f"{R}/issues/{n}/labels"))
    check(list[m.Label], client.post(f"{R}/issues/{n}/labels", json={"labels": ["new"]}))
    check(list[m.Label], client.put(f"{R}/issues/{n}/labels", json={"labels": ["new", "q"]}))
    check(list[m.Label], client.delete(f"{R}/issues/{n}/labels/q"))

    comment = check(m.IssueComment, client.post(f"{R}/issues/{n}/comments", json={"body": "c"}), 201)
    assert_complete(m.IssueComment, client.get(f"{R}/issues/comments/{comment.id}").json())
    check(m.IssueComment, client.get(f"{R}/issues/comments/{comment.id}"))
    check(m.IssueComment, client.patch(f"{R}/issues/comments/{comment.id}", json={"body": "d"}))
    check(list[m.IssueComment], client.get(f"{R}/issues/{n}/comments"))
    check(list[m.IssueComment], client.get(f"{R}/issues/comments"))

    client.patch(f"{R}/issues/{n}", json={"state": "closed"})
    client.patch(f"{R}/issues/{n}", json={"state": "open"})
    events = client.get(f"{R}/issues/{n}/events").json()
    assert {e["event"] for e in events} == {"labeled", "unlabeled", "closed", "reopened"}
    for event in events:
        if event["event"] in ("labeled", "unlabeled"):
            TypeAdapter(LabelEvent).validate_python(event)
        # githubkit's list_events union has no member for closed/reopened (a gap in GitHub's OpenAPI
        # description); the generic IssueEvent model covers every kind.
        TypeAdapter(m.IssueEvent).validate_python(event)

    ref = check(m.GitRef, client.post(f"{R}/git/refs", json={"ref": "refs/locks/1", "sha": INITIAL_COMMIT_SHA}), 201)
    assert ref.object_.sha == INITIAL_COMMIT_SHA
    check(m.GitRef, client.get(f"{R}/git/ref/heads/main"))
    check(list[m.GitRef], client.get(f"{R}/git/matching-refs/locks"))
    check(m.GitRef, client.patch(f"{R}/git/refs/locks/1", json={"sha": gh.add_commit()}))

    check(m.BasicError, client.get(f"{R}/issues/999"), 404)
    check(m.ValidationError, client.post(f"{R}/labels", json={"name": "new", "color": "abcdef"}), 422)
    check(m.ValidationError, client.post(f"{R}/issues", json={"title": "t", "body": "x" * 70_000}), 422)
    check(m.BasicError, client.post(f"{R}/git/refs", json={"ref": "refs/locks/1", "sha": INITIAL_COMMIT_SHA}), 422)


def test_githubkit_end_to_end_in_process(gh: FakeGitHub) -> None:
    with GitHub(TOKEN, base_url=IN_PROCESS_URL, transport=gh.transport(), http_cache=False) as github:
        issues = github.rest.issues
        issue = issues.create(OWNER, NAME, title="job", body="{}", labels=["pending"]).parsed_data
        for i in range(4):
            issues.create(OWNER, NAME, title=f"more {i}", labels=["pending"])
        gh.reset_counters()
        pages = github.rest.paginate(issues.list_for_repo, owner=OWNER, repo=NAME, per_page=2)
        assert sorted(i.number for i in pages) == [1, 2, 3, 4, 5]
        assert gh.request_log == [("GET", f"{R}/issues", 200)] * 3  # followed rel="next" until it was absent
        assert issues.remove_label(OWNER, NAME, issue.number, "pending").parsed_data == []
        assert [x.name for x in issues.add_labels(OWNER, NAME, issue.number, labels=["processing"]).parsed_data] == [
            "processing"
        ]
        issues.create_comment(OWNER, NAME, issue.number, body="done")
        closed = issues.update(OWNER, NAME, issue.number, state="closed", labels=["completed"]).parsed_data
        assert closed.state == "closed" and [x.name for x in closed.labels] == ["completed"]
        assert issues.get(OWNER, NAME, issue.number).parsed_data.comments == 1
        git = github.rest.git
        sha = git.get_ref(OWNER, NAME, "heads/main").parsed_data.object_.sha
        assert git.create_ref(OWNER, NAME, ref="refs/claims/1", sha=sha).status_code == 201
        with pytest.raises(RequestFailed) as lost:
            git.create_ref(OWNER, NAME, ref="refs/claims/1", sha=sha)
        assert lost.value.response.status_code == 422
        assert github.rest.repos.create_dispatch_event(OWNER, NAME, event_type="wake").status_code == 204
        assert github.rest.rate_limit.get().parsed_data.resources.core.used > 10
        assert github.rest.users.get_authenticated().parsed_data.login == OWNER
        assert github.rest.repos.get(OWNER, NAME).parsed_data.default_branch == "main"
        with pytest.raises(RequestFailed) as missing:
            issues.get(OWNER, NAME, 999)
        assert missing.value.response.status_code == 404


def test_githubkit_async_in_process(gh: FakeGitHub) -> None:
    async def flow() -> list[str]:
        async with GitHub(TOKEN, base_url=IN_PROCESS_URL, async_transport=gh.async_transport(), http_cache=False) as g:
            issue = (await g.rest.issues.async_create(OWNER, NAME, title="a", labels=["x", "y"])).parsed_data
            labels = await g.rest.issues.async_list_labels_on_issue(OWNER, NAME, issue.number)
            return [label.name for label in labels.parsed_data]

    assert asyncio.run(flow()) == ["x", "y"]


def test_githubkit_over_http(gh: FakeGitHub, served: str) -> None:
    with GitHub(TOKEN, base_url=served, http_cache=False) as github:
        issue = github.rest.issues.create(OWNER, NAME, title="over http").parsed_data
        assert issue.url == f"{served}{R}/issues/{issue.number}"
        assert github.rest.issues.get(OWNER, NAME, issue.number).parsed_data.title == "over http"


def test_githubkit_http_cache_gets_304s(gh: FakeGitHub) -> None:
    with GitHub(TOKEN, base_url=IN_PROCESS_URL, transport=gh.transport()) as github:
        github.rest.issues.create(OWNER, NAME, title="cached")
        for _ in range(3):
            assert github.rest.issues.get(OWNER, NAME, 1).parsed_data.title == "cached"
    statuses = [status for method, path, status in gh.request_log if path == f"{R}/issues/1"]
    assert statuses[0] == 200 and 304 in statuses
    assert gh.backend.limits.core()["used"] == 1 + statuses.count(200)  # 304s were free


def test_githubkit_sees_rate_limits() -> None:
    gh = FakeGitHub(repo=REPO, token=TOKEN, rate_limit=1, secondary_writes_per_minute=1)
    with gh, GitHub(TOKEN, base_url=IN_PROCESS_URL, transport=gh.transport(), http_cache=False, auto_retry=False) as g:
        g.rest.issues.create(OWNER, NAME, title="one")
        gh.set_limits(rate_limit=100)
        with pytest.raises(SecondaryRateLimitExceeded) as secondary:
            g.rest.issues.create(OWNER, NAME, title="two")
        assert secondary.value.retry_after.total_seconds() > 0
        gh.set_limits(rate_limit=2)
        with pytest.raises(PrimaryRateLimitExceeded) as primary:
            g.rest.issues.get(OWNER, NAME, 1)
        assert primary.value.retry_after.total_seconds() > 0
