"""Fixtures for the GitHub emulator's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from octoqueue.testing.fake_github import FakeGitHub

REPO = "octo-org/jobs"
TOKEN = "t0k3n"
R = f"/repos/{REPO}"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    """An emulator that accepts only ``TOKEN``."""
    with FakeGitHub(repo=REPO, token=TOKEN) as fake:
        yield fake


@pytest.fixture
def client(gh: FakeGitHub) -> Iterator[httpx.Client]:
    """An authenticated client on the in-process transport."""
    with gh.client() as c:
        yield c


@pytest.fixture
def served(gh: FakeGitHub) -> Iterator[str]:
    """The emulator over real HTTP; yields its base URL."""
    with gh.serve() as url:
        yield url


def new_issue(client: httpx.Client, title: str = "job", **fields: object) -> dict:
    """Create an issue through the API and return its JSON (asserting the 201)."""
    response = client.post(f"{R}/issues", json={"title": title, **fields})
    assert response.status_code == 201, response.text
    return response.json()
