"""The emulator's issue dependencies, as GitHub documents them, and the GitHub store's use of them."""

from __future__ import annotations

import githubkit_schemas.latest.models as m
import httpx

from octoqueue.queue import Queue
from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub
from tests.fake_github.conftest import REPO, TOKEN, R, new_issue
from tests.fake_github.test_githubkit import check


def test_blocked_by_add_list_remove_and_summary(client: httpx.Client) -> None:
    parent, child = new_issue(client, "parent"), new_issue(client, "child")
    url = f"{R}/issues/{child['number']}/dependencies/blocked_by"
    added = check(m.Issue, client.post(url, json={"issue_id": parent["id"]}), 201)
    assert added.number == parent["number"]
    assert [i.number for i in check(list[m.Issue], client.get(url))] == [parent["number"]]
    blocking = client.get(f"{R}/issues/{parent['number']}/dependencies/blocking")
    assert [i.number for i in check(list[m.Issue], blocking)] == [child["number"]]
    summary = client.get(f"{R}/issues/{child['number']}").json()["issue_dependencies_summary"]
    assert summary == {"blocked_by": 1, "total_blocked_by": 1, "blocking": 0, "total_blocking": 0}

    assert client.post(url, json={"issue_id": parent["id"]}).status_code == 422  # exists
    assert client.post(url, json={"issue_id": child["id"]}).status_code == 422  # itself
    assert client.post(url, json={}).status_code == 422
    assert client.post(url, json={"issue_id": 999}).status_code == 404
    assert client.get(f"{R}/issues/9999/dependencies/blocked_by").status_code == 404

    removed = check(m.Issue, client.delete(f"{url}/{parent['id']}"))
    assert removed.number == parent["number"]
    assert client.get(url).json() == []
    assert client.delete(f"{url}/{parent['id']}").status_code == 404


def test_a_github_job_shows_its_parents_as_blocked_by(gh: FakeGitHub) -> None:
    store = GitHubStore(
        REPO,
        token=TOKEN,
        base_url=IN_PROCESS_URL,
        transport=gh.transport(),
        writes_per_minute=None,
        writes_per_hour=None,
    )
    queue = Queue(store, max_attempts=1)
    first, second = queue.enqueue({"n": 1}), queue.enqueue({"n": 2})
    child = queue.enqueue({"n": 3}, depends_on=[first, second])
    with gh.client() as client:
        listed = client.get(f"{R}/issues/{child}/dependencies/blocked_by").json()
    assert [issue["number"] for issue in listed] == [first, second]
    queue.close()
