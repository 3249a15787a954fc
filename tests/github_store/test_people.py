"""The GitHub store's answers for the webhook's ChatOps: its own login and people's permission, from GitHub."""

from __future__ import annotations

from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import REPO


def test_the_repository_and_the_own_login_asked_once(store: GitHubStore, fake: FakeGitHub) -> None:
    assert store.full_name == REPO
    fake.reset_counters()
    assert store.own_login() == "octo-org"  # the emulator's token acts as the owner unless told otherwise
    assert store.own_login() == "octo-org"
    assert [path for _, path, _ in fake.request_log] == ["/user"]


def test_permission_of_follows_github(store: GitHubStore, fake: FakeGitHub) -> None:
    fake.add_collaborator("helper", "maintain")
    fake.add_collaborator("triager", "triage")
    assert store.permission_of("octo-org") == "admin"
    assert store.permission_of("helper") == "write"  # maintain counts as write
    assert store.permission_of("triager") == "read"
    assert store.permission_of("passer-by") == "read"
    assert ("GET", f"/repos/{REPO}/collaborators/helper/permission", 200) in fake.request_log
