"""A second, independent client: PyGitHub against the emulator over real HTTP."""

from __future__ import annotations

import github
import pytest

from octoqueue.testing.fake_github import FakeGitHub
from tests.fake_github.conftest import REPO, TOKEN


def test_pygithub_issue_flow(gh: FakeGitHub, served: str) -> None:
    # PyGitHub spaces writes 1 s apart by default (GitHub's advice); the emulator does not need it.
    client = github.Github(
        base_url=served, auth=github.Auth.Token(TOKEN), seconds_between_requests=0, seconds_between_writes=0
    )
    try:
        repo = client.get_repo(REPO)
        assert repo.full_name == REPO and repo.default_branch == "main"
        issue = repo.create_issue(title="job", body='{"n": 1}', labels=["pending"])
        assert [label.name for label in issue.labels] == ["pending"]
        for i in range(34):
            gh.create_issue(f"filler {i}", labels=["pending"])
        pending = list(repo.get_issues(state="open", labels=[repo.get_label("pending")]))
        assert len(pending) == 35  # two pages, followed through the link header
        issue.create_comment("working on it")
        issue.remove_from_labels("pending")
        issue.add_to_labels("completed")
        issue.edit(state="closed")
        again = repo.get_issue(issue.number)
        assert again.state == "closed" and again.comments == 1
        assert [label.name for label in again.labels] == ["completed"]
        assert [c.body for c in again.get_comments()] == ["working on it"]
        assert repo.get_git_ref("heads/main").object.sha == gh.initial_commit_sha
        with pytest.raises(github.GithubException) as missing:
            repo.get_issue(9999)
        assert missing.value.status == 404
    finally:
        client.close()
    assert gh.get_issue(1)["state"] == "closed"


def test_pygithub_bad_token(gh: FakeGitHub, served: str) -> None:
    client = github.Github(base_url=served, auth=github.Auth.Token("wrong"), retry=None)
    try:
        with pytest.raises(github.BadCredentialsException):
            client.get_repo(REPO)
    finally:
        client.close()
