"""GitHub's unkinder habits, switchable in the emulator: lagging reads, dropped labels, transient ref failures."""

from __future__ import annotations

import httpx
import pytest

from octoqueue.testing.fake_github import FakeGitHub

from .conftest import R, new_issue


def test_reads_show_the_state_as_of_read_lag_ago(gh: FakeGitHub, client: httpx.Client) -> None:
    first = new_issue(client, "before")
    gh.set_faults(read_lag=30.0)
    second = new_issue(client, "after", labels=["pending"])
    assert client.get(f"{R}/issues/{second['number']}").status_code == 404  # the replica has not seen it
    assert [i["title"] for i in client.get(f"{R}/issues").json()] == ["before"]
    patched = client.patch(f"{R}/issues/{first['number']}", json={"title": "renamed"})
    assert patched.json()["title"] == "renamed"  # a write's own answer comes from the primary
    assert client.get(f"{R}/issues/{first['number']}").json()["title"] == "before"
    gh.advance_time(31)  # the replica catches up
    assert client.get(f"{R}/issues/{first['number']}").json()["title"] == "renamed"
    assert [i["title"] for i in client.get(f"{R}/issues").json()] == ["after", "renamed"]


def test_a_replica_follows_writes_in_order(gh: FakeGitHub, client: httpx.Client) -> None:
    issue = new_issue(client)
    gh.set_faults(read_lag=10.0)
    client.patch(f"{R}/issues/{issue['number']}", json={"title": "one"})
    gh.advance_time(6)
    client.patch(f"{R}/issues/{issue['number']}", json={"title": "two"})
    gh.advance_time(6)  # 12 s after "one", 6 s after "two"
    assert client.get(f"{R}/issues/{issue['number']}").json()["title"] == "one"
    gh.advance_time(6)
    assert client.get(f"{R}/issues/{issue['number']}").json()["title"] == "two"


def test_comment_listings_lag(gh: FakeGitHub, client: httpx.Client) -> None:
    issue = new_issue(client)
    gh.set_faults(read_lag=5.0)
    assert client.post(f"{R}/issues/{issue['number']}/comments", json={"body": "hi"}).status_code == 201
    gh.comment(issue["number"], "from the UI")  # changes made outside the API lag as well
    assert client.get(f"{R}/issues/{issue['number']}/comments").json() == []
    gh.advance_time(6)
    assert [c["body"] for c in client.get(f"{R}/issues/{issue['number']}/comments").json()] == ["hi", "from the UI"]
    gh.set_faults(read_lag=0)
    assert len(client.get(f"{R}/issues/{issue['number']}/comments").json()) == 2


def test_without_push_access_labels_and_assignees_are_silently_dropped(gh: FakeGitHub, client: httpx.Client) -> None:
    gh.set_faults(push_access=False)
    created = client.post(f"{R}/issues", json={"title": "t", "labels": ["pending"], "assignees": ["octocat"]})
    assert created.status_code == 201 and created.json()["labels"] == [] and created.json()["assignees"] == []
    patched = client.patch(f"{R}/issues/{created.json()['number']}", json={"labels": ["x"], "body": "b"})
    assert patched.status_code == 200 and patched.json()["labels"] == [] and patched.json()["body"] == "b"
    gh.set_faults(push_access=True)
    assert new_issue(client, labels=["pending"])["labels"][0]["name"] == "pending"


def test_ref_creation_fails_transiently_before_or_after_making_the_ref(gh: FakeGitHub, client: httpx.Client) -> None:
    gh.set_faults(ref_failure_rate=1.0)
    outcomes = set()
    for n in range(20):
        response = client.post(f"{R}/git/refs", json={"ref": f"refs/t/{n}", "sha": gh.initial_commit_sha})
        assert response.status_code == 422 and response.json()["message"] == "Reference update failed"
        outcomes.add(f"refs/t/{n}" in gh.refs)
    assert outcomes == {True, False}  # it may or may not have made the ref
    gh.set_faults(ref_failure_rate=0.0)
    made = client.post(f"{R}/git/refs", json={"ref": "refs/t/ok", "sha": gh.initial_commit_sha})
    assert made.status_code == 201


def test_control_api_switches_faults_and_refuses_bad_ones(gh: FakeGitHub, client: httpx.Client) -> None:
    assert client.get("/_fake/faults").json()["read_lag"] == 0
    assert client.patch("/_fake/faults", json={"read_lag": 2, "ref_failure_rate": 0.1}).status_code == 200
    assert gh.fault_settings.read_lag == 2 and gh.fault_settings.ref_failure_rate == 0.1
    for bad in ({"read_lag": -1}, {"ref_failure_rate": 2}, {"push_access": "no"}, {"lag": 1}, [1]):
        refused = client.patch("/_fake/faults", json=bad)
        assert refused.status_code == 422 and refused.json()["message"]
    assert gh.fault_settings.read_lag == 2 and gh.fault_settings.push_access is True


def test_set_faults_checks_before_changing(gh: FakeGitHub) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        gh.set_faults(read_lag=1.0, nope=1)
    assert gh.fault_settings.read_lag == 0
    with pytest.raises(ValueError):
        FakeGitHub(read_lag=-1)


def test_the_replica_copies_only_what_changed(gh: FakeGitHub, client: httpx.Client) -> None:
    one, two = new_issue(client, "one"), new_issue(client, "two")
    gh.set_faults(read_lag=10.0)
    for title in ("a", "b", "c"):
        client.patch(f"{R}/issues/{one['number']}", json={"title": title})
    kept = list(gh.backend.replica._snapshots)
    assert len({id(s.issues[two["number"]]) for s in kept}) == 1  # the unchanged issue: one copy, shared
    assert len({id(s.issues[one["number"]]) for s in kept}) == 4  # before the first edit, and after each
