"""Fixtures for the mirror's tests: GitHub emulators, and stores of every kind on the real test servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from octoqueue.mirror import job_fields
from octoqueue.stores.base import Store
from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

TOKEN = "t0k3n"

#: GitHub store options for tests: fast retries; unpaced unless a test paces it.
FAST: dict[str, Any] = {
    "writes_per_minute": None,
    "writes_per_hour": None,
    "retry_backoff": 0.01,
    "rate_limit_backoff": 0.05,
    "read_lag": 0.2,
}

MakeGitHub = Callable[..., tuple[FakeGitHub, GitHubStore]]


@pytest.fixture
def make_github() -> Iterator[MakeGitHub]:
    """``make_github(repo, fake_options=..., **store_options)``: a new emulator and a store on it."""
    made: list[tuple[FakeGitHub, GitHubStore]] = []

    def make(repo: str, fake_options: dict[str, Any] | None = None, **options: Any) -> tuple[FakeGitHub, GitHubStore]:
        fake = FakeGitHub(repo=repo, token=TOKEN, **{"enforce_secondary": False, **(fake_options or {})})
        store = GitHubStore(
            repo, token=TOKEN, base_url=IN_PROCESS_URL, transport=fake.transport(), **{**FAST, **options}
        )
        made.append((fake, store))
        return fake, store

    yield make
    for fake, store in made:
        store.close()
        fake.close()


def snapshot(store: Store) -> list[tuple[dict[str, Any], int, list[tuple[str, str | None, Any]]]]:
    """Every job of ``store`` field by field, with its comments (body, author, time), in id order."""
    return [
        (
            job_fields(job),
            job.comments,
            [(note.body, note.author, note.created_at) for note in store.comments(job.id)],
        )
        for job in store.iter_jobs()
    ]


def assert_same_queue(expected: Store, got: Store) -> None:
    """Compare two queues job by job and field by field, naming the first difference."""
    want, have = snapshot(expected), snapshot(got)
    assert [fields["id"] for fields, _, _ in have] == [fields["id"] for fields, _, _ in want], got.url
    for (a, count_a, notes_a), (b, count_b, notes_b) in zip(want, have, strict=True):
        for name in a:
            assert b[name] == a[name], f"{got.url}: job {a['id']} field {name}: {b[name]!r} != {a[name]!r}"
        assert (count_b, notes_b) == (count_a, notes_a), f"{got.url}: job {a['id']} comments"
