"""repository_dispatch after enqueue (GITHUB_TOKEN-created issues start no workflow run)."""

from __future__ import annotations

import pytest

from octoqueue.github import GithubQueue
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub


def _queue(gh: FakeGitHub, **options: object) -> GithubQueue:
    return GithubQueue("octo/jobs", token="t", base_url=IN_PROCESS_URL, transport=gh.transport(), **options)  # type: ignore[arg-type]


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCTOQUEUE_DISPATCH", raising=False)
    with FakeGitHub(repo="octo/jobs") as gh:
        queue = _queue(gh)
        queue.enqueue({"a": 1})
        assert gh.dispatches == []
        queue.close()


def test_wakes_the_workflow_for_runnable_jobs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTOQUEUE_DISPATCH", "1")
    with FakeGitHub(repo="octo/jobs") as gh:
        queue = _queue(gh)
        now = queue.enqueue({"a": 1})
        queue.enqueue({"b": 2}, delay=3600)
        assert len(gh.dispatches) == 1
        dispatch = gh.dispatches[0]
        text = repr(dispatch)
        assert "octoqueue-job" in text and str(now) in text
        queue.close()


def test_explicit_option_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTOQUEUE_DISPATCH", "1")
    with FakeGitHub(repo="octo/jobs") as gh:
        queue = _queue(gh, wake_workflow=False)
        queue.enqueue({"a": 1})
        assert gh.dispatches == []
        queue.close()
