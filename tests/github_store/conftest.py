"""Fixtures for the GitHub store's tests: the emulator (in-process) and stores talking to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

REPO = "octo-org/jobs"
TOKEN = "t0k3n"
R = f"/repos/{REPO}"

#: Store options for tests: no pacing, fast retries (the emulator's own limits are off unless a test turns them on).
FAST: dict[str, Any] = {
    "writes_per_minute": None,
    "writes_per_hour": None,
    "retry_backoff": 0.01,
    "rate_limit_backoff": 0.05,
    "read_lag": 0.2,
}

MakeStore = Callable[..., GitHubStore]


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(repo=REPO, token=TOKEN, enforce_secondary=False) as emulator:
        yield emulator


@pytest.fixture
def make_store(fake: FakeGitHub) -> Iterator[MakeStore]:
    """``make_store(**options)``: a new store on the emulator (its own client, like another process)."""
    made: list[GitHubStore] = []

    def make(**options: Any) -> GitHubStore:
        store = GitHubStore(
            REPO, token=TOKEN, base_url=IN_PROCESS_URL, transport=fake.transport(), **{**FAST, **options}
        )
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> GitHubStore:
    return make_store()


def writes(log: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return [entry for entry in log if entry[0] != "GET"]
