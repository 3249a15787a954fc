"""Issues, labels, comments and events: status codes, shapes and filters."""

from __future__ import annotations

import httpx
import pytest

from octoqueue.testing.fake_github import FakeGitHub, GitHubError
from tests.fake_github.conftest import REPO, R, new_issue

ERROR_KEYS = {"message", "documentation_url", "status"}


def assert_error(response: httpx.Response, status: int, message: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() >= ERROR_KEYS
    assert body["message"] == message
    assert body["status"] == str(status)
    assert body["documentation_url"].startswith("https://docs.github.com/")
    return body


def test_create_issue_returns_201_with_complete_object(client: httpx.Client) -> None:
    issue = new_issue(client, "first", body="payload", labels=["pending"], assignees=["alice"])
    assert issue["number"] == 1
    assert issue["state"] == "open" and issue["state_reason"] is None
    assert issue["user"]["login"] == "octo-org" and issue["author_association"] == "OWNER"
    assert [label["name"] for label in issue["labels"]] == ["pending"]
    assert issue["assignee"]["login"] == "alice" and [a["login"] for a in issue["assignees"]] == ["alice"]
    assert issue["url"] == f"http://fake-github.local{R}/issues/1"
    assert issue["comments"] == 0 and issue["closed_at"] is None and issue["locked"] is False


def test_an_existing_label_is_reused_whatever_the_case_it_is_named_in(client: httpx.Client) -> None:
    """GitHub's label names are unique regardless of case: ``pending`` on a new issue is the repo's ``Pending``."""
    assert client.post(f"{R}/labels", json={"name": "Pending", "color": "fbca04"}).status_code == 201
    assert client.post(f"{R}/labels", json={"name": "pending", "color": "fbca04"}).status_code == 422
    issue = new_issue(client, labels=["pending"])
    assert [label["name"] for label in issue["labels"]] == ["Pending"]
    edited = client.patch(f"{R}/issues/{issue['number']}", json={"labels": ["PENDING", "x"]}).json()
    assert [label["name"] for label in edited["labels"]] == ["Pending", "x"]
    assert [label["name"] for label in client.get(f"{R}/labels").json()] == ["Pending", "x"]


def test_unknown_labels_are_created_with_ededed(client: httpx.Client) -> None:
    new_issue(client, labels=["brand-new"])
    label = client.get(f"{R}/labels/brand-new").json()
    assert label["color"] == "ededed" and label["default"] is False


def test_missing_issue_is_404_with_github_error_shape(client: httpx.Client) -> None:
    assert_error(client.get(f"{R}/issues/99"), 404, "Not Found")


def test_unknown_endpoint_and_other_repo_are_404(client: httpx.Client) -> None:
    body = assert_error(client.get("/no/such/thing"), 404, "Not Found")
    assert body["documentation_url"] == "https://docs.github.com/rest"
    assert_error(client.get("/repos/someone/else/issues"), 404, "Not Found")
    assert_error(client.put(f"{R}/issues"), 404, "Not Found")  # unsupported method, as on GitHub


def test_missing_title_and_bad_json(client: httpx.Client) -> None:
    body = assert_error(
        client.post(f"{R}/issues", json={"body": "x"}), 422, 'Invalid request.\n\n"title" wasn\'t supplied.'
    )
    assert "errors" not in body
    assert_error(client.post(f"{R}/issues", content=b"{nope"), 400, "Problems parsing JSON")


@pytest.mark.parametrize("size", [65_536, 65_537])
def test_body_limit_is_65536_characters(client: httpx.Client, size: int) -> None:
    response = client.post(f"{R}/issues", json={"title": "t", "body": "x" * size})
    if size <= 65_536:
        assert response.status_code == 201
        return
    body = assert_error(response, 422, "Validation Failed")
    assert body["errors"] == [
        {
            "resource": "Issue",
            "code": "custom",
            "field": "body",
            "message": "body is too long (maximum is 65536 characters)",
        }
    ]


def test_body_limit_applies_to_patch_and_comments(client: httpx.Client) -> None:
    number = new_issue(client)["number"]
    assert_error(client.patch(f"{R}/issues/{number}", json={"body": "y" * 65_537}), 422, "Validation Failed")
    response = client.post(f"{R}/issues/{number}/comments", json={"body": "y" * 65_537})
    assert assert_error(response, 422, "Validation Failed")["errors"][0]["resource"] == "IssueComment"
    assert client.get(f"{R}/issues/{number}").json()["comments"] == 0


def test_patch_replaces_labels_and_closes(client: httpx.Client, gh: FakeGitHub) -> None:
    number = new_issue(client, labels=["pending", "urgent"])["number"]
    response = client.patch(
        f"{R}/issues/{number}",
        json={"labels": ["completed"], "state": "closed", "state_reason": "not_planned", "body": "done"},
    )
    assert response.status_code == 200
    issue = response.json()
    assert [label["name"] for label in issue["labels"]] == ["completed"]
    assert issue["state"] == "closed" and issue["state_reason"] == "not_planned"
    assert issue["closed_by"]["login"] == "octo-org" and issue["closed_at"] is not None
    assert issue["body"] == "done"
    events = [(e["event"], e.get("label", {}).get("name")) for e in client.get(f"{R}/issues/{number}/events").json()]
    assert events == [
        ("labeled", "pending"),
        ("labeled", "urgent"),
        ("unlabeled", "pending"),
        ("unlabeled", "urgent"),
        ("labeled", "completed"),
        ("closed", None),
    ]
    reopened = client.patch(f"{R}/issues/{number}", json={"state": "open"}).json()
    assert reopened["state"] == "open" and reopened["state_reason"] == "reopened" and reopened["closed_at"] is None
    assert gh.events_of(number)[-1]["event"] == "reopened"


def test_invalid_state_is_422(client: httpx.Client) -> None:
    number = new_issue(client)["number"]
    assert_error(client.patch(f"{R}/issues/{number}", json={"state": "done"}), 422, "Validation Failed")
    assert_error(client.get(f"{R}/issues", params={"state": "nope"}), 422, "Validation Failed")


def test_list_filters_labels_with_and_state_sort_since(client: httpx.Client, gh: FakeGitHub) -> None:
    a = new_issue(client, "a", labels=["pending", "x"])["number"]
    b = new_issue(client, "b", labels=["pending"])["number"]
    c = new_issue(client, "c", labels=["x"])["number"]
    client.patch(f"{R}/issues/{c}", json={"state": "closed"})

    def numbers(**params: str) -> list[int]:
        response = client.get(f"{R}/issues", params=params)
        assert response.status_code == 200
        return [i["number"] for i in response.json()]

    assert numbers() == [b, a]  # open only, newest first
    assert numbers(labels="pending,x") == [a]  # AND, not OR
    assert numbers(labels="PENDING") == [b, a]  # label names are case-insensitive
    assert numbers(state="closed") == [c]
    assert numbers(state="all", direction="asc") == [a, b, c]
    gh.advance_time(120)
    client.post(f"{R}/issues/{a}/comments", json={"body": "later"})
    since = client.get(f"{R}/issues/{a}").json()["updated_at"]
    assert numbers(state="all", since=since) == [a]
    assert numbers(state="all", sort="comments") == [a, c, b]
    assert numbers(state="all", sort="updated")[0] == a


def test_pull_requests_are_listed_among_issues(client: httpx.Client, gh: FakeGitHub) -> None:
    issue = new_issue(client)["number"]
    pull = gh.create_pull_request("a change")
    assert pull == issue + 1  # one number space
    listed = {i["number"]: i for i in client.get(f"{R}/issues").json()}
    assert set(listed) == {issue, pull}
    assert "pull_request" in listed[pull] and "pull_request" not in listed[issue]
    assert listed[pull]["pull_request"]["url"].endswith(f"/pulls/{pull}")


def test_pagination_follows_link_headers(client: httpx.Client) -> None:
    for i in range(7):
        new_issue(client, f"job {i}")
    first = client.get(f"{R}/issues", params={"per_page": 3, "direction": "asc"})
    assert first.links["next"]["url"].endswith("page=2") and first.links["last"]["url"].endswith("page=3")
    assert "prev" not in first.links
    seen: list[int] = []
    url: str | None = f"{R}/issues?per_page=3&direction=asc"
    while url:
        page = client.get(url)
        seen += [i["number"] for i in page.json()]
        url = page.links.get("next", {}).get("url")
    assert seen == list(range(1, 8))
    last = client.get(first.links["last"]["url"])
    assert set(last.links) == {"prev", "first"}
    assert "per_page=3" in last.links["prev"]["url"] and last.links["prev"]["url"].endswith("page=2")


def test_per_page_is_capped_at_100_and_defaults_to_30(client: httpx.Client, gh: FakeGitHub) -> None:
    for i in range(101):
        gh.create_issue(f"job {i}")
    assert len(client.get(f"{R}/issues").json()) == 30
    assert len(client.get(f"{R}/issues", params={"per_page": 500}).json()) == 100


def test_repo_labels_crud_and_duplicates(client: httpx.Client) -> None:
    created = client.post(f"{R}/labels", json={"name": "pending", "color": "FBCA04", "description": "waiting"})
    assert created.status_code == 201
    assert created.json()["color"] == "fbca04" and created.json()["description"] == "waiting"
    duplicate = client.post(f"{R}/labels", json={"name": "Pending", "color": "000000"})
    body = assert_error(duplicate, 422, "Validation Failed")
    assert body["errors"] == [{"resource": "Label", "code": "already_exists", "field": "name"}]
    assert_error(client.post(f"{R}/labels", json={"name": "bad", "color": "zzz"}), 422, "Validation Failed")
    renamed = client.patch(f"{R}/labels/pending", json={"new_name": "queued", "color": "00ff00"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "queued"
    assert_error(client.get(f"{R}/labels/pending"), 404, "Not Found")
    assert [label["name"] for label in client.get(f"{R}/labels").json()] == ["queued"]
    assert client.delete(f"{R}/labels/queued").status_code == 204
    assert_error(client.delete(f"{R}/labels/queued"), 404, "Not Found")


def test_label_names_with_spaces_and_slashes(client: httpx.Client) -> None:
    number = new_issue(client, labels=["needs review", "area/api"])["number"]
    assert client.get(f"{R}/labels/area%2Fapi").status_code == 200
    response = client.delete(f"{R}/issues/{number}/labels/needs%20review")
    assert [label["name"] for label in response.json()] == ["area/api"]


def test_issue_label_endpoints(client: httpx.Client, gh: FakeGitHub) -> None:
    number = new_issue(client)["number"]
    added = client.post(f"{R}/issues/{number}/labels", json={"labels": ["b", "a"]})
    assert added.status_code == 200 and [label["name"] for label in added.json()] == ["a", "b"]
    assert client.post(f"{R}/issues/{number}/labels", json=["c"]).status_code == 200  # bare array form
    assert gh.labels_of(number) == ["a", "b", "c"]
    assert [label["name"] for label in client.get(f"{R}/issues/{number}/labels").json()] == ["a", "b", "c"]
    put = client.put(f"{R}/issues/{number}/labels", json={"labels": [{"name": "z"}]})
    assert [label["name"] for label in put.json()] == ["z"]
    removed = client.delete(f"{R}/issues/{number}/labels/z")
    assert removed.status_code == 200 and removed.json() == []
    assert_error(client.delete(f"{R}/issues/{number}/labels/z"), 404, "Label does not exist")
    client.post(f"{R}/issues/{number}/labels", json={"labels": ["q"]})
    assert client.delete(f"{R}/issues/{number}/labels").status_code == 204
    assert gh.labels_of(number) == []
    assert_error(client.post(f"{R}/issues/999/labels", json={"labels": ["a"]}), 404, "Not Found")


def test_deleting_a_label_takes_it_off_issues(client: httpx.Client, gh: FakeGitHub) -> None:
    number = new_issue(client, labels=["gone", "kept"])["number"]
    client.delete(f"{R}/labels/gone")
    assert gh.labels_of(number) == ["kept"]


def test_comments_crud_and_counts(client: httpx.Client, gh: FakeGitHub) -> None:
    number = new_issue(client)["number"]
    created = client.post(f"{R}/issues/{number}/comments", json={"body": "hello"})
    assert created.status_code == 201
    comment = created.json()
    assert comment["issue_url"].endswith(f"/issues/{number}") and comment["author_association"] == "OWNER"
    gh.comment(number, "from a human", author="octocat", author_association="CONTRIBUTOR")
    assert client.get(f"{R}/issues/{number}").json()["comments"] == 2
    listed = client.get(f"{R}/issues/{number}/comments").json()
    assert [(c["body"], c["user"]["login"], c["author_association"]) for c in listed] == [
        ("hello", "octo-org", "OWNER"),
        ("from a human", "octocat", "CONTRIBUTOR"),
    ]
    url = f"{R}/issues/comments/{comment['id']}"
    assert client.patch(url, json={"body": "edited"}).json()["body"] == "edited"
    assert client.get(url).json()["body"] == "edited"
    assert [c["body"] for c in client.get(f"{R}/issues/comments").json()] == ["edited", "from a human"]
    assert client.delete(url).status_code == 204
    assert_error(client.get(url), 404, "Not Found")
    assert client.get(f"{R}/issues/{number}").json()["comments"] == 1
    assert_error(client.post(f"{R}/issues/999/comments", json={"body": "x"}), 404, "Not Found")


def test_repo_comments_since(client: httpx.Client, gh: FakeGitHub) -> None:
    number = new_issue(client)["number"]
    gh.comment(number, "old")
    gh.advance_time(60)
    new = gh.comment(number, "new")
    since = gh.comments_of(number)[-1]["created_at"]
    listed = client.get(f"{R}/issues/comments", params={"since": since}).json()
    assert [c["id"] for c in listed] == [new]
    assert_error(client.get(f"{R}/issues/comments", params={"since": "yesterday"}), 422, "Validation Failed")


def test_human_helpers_use_the_same_rules(gh: FakeGitHub) -> None:
    number = gh.create_issue("by hand", labels=["pending"])
    assert gh.get_issue(number)["user"]["login"] == "octocat"
    assert gh.get_issue(number)["author_association"] == "NONE"
    gh.add_label(number, "urgent", actor="someone")
    gh.remove_label(number, "pending")
    assert gh.labels_of(number) == ["urgent"]
    assert gh.events_of(number)[-2]["actor"]["login"] == "someone"
    closed = gh.edit_issue(number, state="closed")
    assert closed["state"] == "closed" and closed["closed_by"]["login"] == "octocat"
    assert gh.issues[number]["state"] == "closed"
    assert "urgent" in gh.labels


def test_dispatches_are_recorded(client: httpx.Client, gh: FakeGitHub) -> None:
    response = client.post(f"{R}/dispatches", json={"event_type": "octoqueue-job", "client_payload": {"job": 1}})
    assert response.status_code == 204 and response.content == b""
    assert gh.dispatches == [{"event_type": "octoqueue-job", "client_payload": {"job": 1}, "sender": "octo-org"}]
    assert_error(client.post(f"{R}/dispatches", json={}), 422, 'Invalid request.\n\n"event_type" wasn\'t supplied.')


def test_repository_user_root_and_rate_limit(client: httpx.Client) -> None:
    repo = client.get(R)
    assert repo.status_code == 200 and repo.json()["full_name"] == REPO
    assert repo.json()["default_branch"] == "main" and "last-modified" in repo.headers
    assert client.get("/user").json()["login"] == "octo-org"
    assert client.get("/").json()["rate_limit_url"] == "http://fake-github.local/rate_limit"
    assert client.get("/rate_limit").json()["resources"]["core"]["limit"] == 5000


def test_auth(gh: FakeGitHub) -> None:
    with gh.client(token="wrong") as bad:
        assert_error(bad.get(R), 401, "Bad credentials")
    with gh.client(token="", headers={"Authorization": "token t0k3n"}) as classic:
        assert classic.get(R).status_code == 200
    with httpx.Client(transport=gh.transport(), base_url="http://fake-github.local") as anonymous:
        assert anonymous.get(R).status_code == 200  # public repository: reads are open
        assert_error(anonymous.post(f"{R}/issues", json={"title": "x"}), 401, "Requires authentication")
        assert_error(anonymous.get("/user"), 401, "Requires authentication")
    assert gh.issues == {}


def test_open_emulator_accepts_any_token_and_anonymous() -> None:
    with FakeGitHub(repo=REPO) as gh:
        with gh.client(token="anything") as c:
            assert new_issue(c)["user"]["login"] == "octo-org"
        with httpx.Client(transport=gh.transport(), base_url="http://x") as anonymous:
            assert anonymous.post(f"{R}/issues", json={"title": "y"}).status_code == 201


def test_headers_on_every_response(client: httpx.Client) -> None:
    for response in (client.get(R), client.get("/missing"), client.post(f"{R}/issues", json={"title": "t"})):
        h = response.headers
        for name in ("limit", "remaining", "used", "reset", "resource"):
            assert f"x-ratelimit-{name}" in h
        assert h["x-ratelimit-resource"] == "core"
        assert h["x-github-request-id"] and h["date"].endswith("GMT")
        assert h["x-github-api-version-selected"] == "2022-11-28"
        assert h["content-type"] == "application/json; charset=utf-8"
    get = client.get(R, headers={"X-GitHub-Api-Version": "2026-03-10"})
    assert get.headers["x-github-api-version-selected"] == "2026-03-10"
    assert get.headers["etag"].startswith('W/"')
    assert "etag" not in client.post(f"{R}/issues", json={"title": "t"}).headers
    assert_error(client.get(R, headers={"X-GitHub-Api-Version": "latest"}), 400, "API version latest is not supported.")


def test_request_log_counts_calls(client: httpx.Client, gh: FakeGitHub) -> None:
    new_issue(client)
    client.get(f"{R}/issues/1")
    client.get(f"{R}/issues/2")
    assert gh.request_log == [
        ("POST", f"{R}/issues", 201),
        ("GET", f"{R}/issues/1", 200),
        ("GET", f"{R}/issues/2", 404),
    ]
    gh.reset_counters()
    assert gh.request_log == []
    assert client.get("/rate_limit").json()["resources"]["core"]["used"] == 0


def test_bad_label_name_changes_nothing(client: httpx.Client, gh: FakeGitHub) -> None:
    assert_error(client.post(f"{R}/issues", json={"title": "x", "labels": ["ok", "y" * 60]}), 422, "Validation Failed")
    assert gh.issues == {} and gh.labels == {}
    number = new_issue(client, labels=["ok"])["number"]
    assert_error(client.patch(f"{R}/issues/{number}", json={"labels": ["z" * 60]}), 422, "Validation Failed")
    assert gh.labels_of(number) == ["ok"]
    with pytest.raises(GitHubError) as raised:
        gh.add_label(number, "w" * 60)
    assert raised.value.status == 422
