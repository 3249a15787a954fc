"""Concurrency: git-ref creation is an atomic compare-and-swap; labels are not."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from octoqueue.testing.fake_github import INITIAL_COMMIT_SHA, FakeGitHub
from tests.fake_github.conftest import REPO, TOKEN, R, new_issue

THREADS = 20


def race(fn: object, n: int = THREADS) -> list:
    """Run ``fn(i)`` in ``n`` threads released at the same moment."""
    barrier = threading.Barrier(n)

    def run(i: int) -> object:
        barrier.wait()
        return fn(i)  # type: ignore[operator]

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture
def slow() -> Iterator[FakeGitHub]:
    # Latency widens every window a non-atomic implementation would have.
    with FakeGitHub(repo=REPO, token=TOKEN, latency=0.05, enforce_secondary=False) as gh:
        yield gh


def test_ref_create_is_atomic_over_the_sync_transport(slow: FakeGitHub) -> None:
    with slow.client() as client:
        statuses = race(
            lambda i: client.post(f"{R}/git/refs", json={"ref": "refs/claims/7", "sha": INITIAL_COMMIT_SHA})
        )
    counts = Counter(r.status_code for r in statuses)
    assert counts == {201: 1, 422: THREADS - 1}
    assert {r.json()["message"] for r in statuses if r.status_code == 422} == {"Reference already exists"}


def test_ref_create_is_atomic_across_event_loops(slow: FakeGitHub) -> None:
    # Each thread drives the app on its own event loop, so only the repository lock keeps this atomic.
    async def claim() -> int:
        transport = slow.async_transport()
        async with httpx.AsyncClient(
            transport=transport, base_url="http://x", headers={"Authorization": f"token {TOKEN}"}
        ) as c:
            response = await c.post(f"{R}/git/refs", json={"ref": "refs/claims/8", "sha": INITIAL_COMMIT_SHA})
            return response.status_code

    statuses = race(lambda i: asyncio.run(claim()))
    assert Counter(statuses) == {201: 1, 422: THREADS - 1}


def test_ref_create_is_atomic_over_http(slow: FakeGitHub) -> None:
    with slow.serve() as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        statuses = race(
            lambda i: client.post(f"{R}/git/refs", json={"ref": "refs/claims/9", "sha": INITIAL_COMMIT_SHA}).status_code
        )
    assert Counter(statuses) == {201: 1, 422: THREADS - 1}
    assert slow.refs["refs/claims/9"] == INITIAL_COMMIT_SHA


def test_label_removal_race_lets_both_clients_win(slow: FakeGitHub) -> None:
    """Two workers 'claim' the same job by swapping pending→processing: on GitHub both succeed."""
    slow.set_faults(latency=0.2)
    with slow.client() as client:
        number = new_issue(client, labels=["pending"])["number"]

        def claim(i: int) -> tuple[int, int]:
            removed = client.delete(f"{R}/issues/{number}/labels/pending")
            added = client.post(f"{R}/issues/{number}/labels", json={"labels": ["processing"]})
            return removed.status_code, added.status_code

        results = race(claim, 2)
        assert results == [(200, 200), (200, 200)]  # no compare-and-swap: nobody is told they lost
        assert slow.labels_of(number) == ["processing"]
        # Without the race, the check is honest: a later removal of an absent label is a 404.
        assert client.delete(f"{R}/issues/{number}/labels/pending").status_code == 404


def test_concurrent_adds_of_different_labels_are_not_lost(slow: FakeGitHub) -> None:
    with slow.client() as client:
        number = new_issue(client)["number"]
        race(lambda i: client.post(f"{R}/issues/{number}/labels", json={"labels": [f"l{i}"]}), 10)
    assert sorted(slow.labels_of(number)) == sorted(f"l{i}" for i in range(10))


def test_issue_numbers_stay_unique_under_threads(slow: FakeGitHub) -> None:
    with slow.client() as client:
        numbers = race(lambda i: new_issue(client, f"job {i}")["number"])
    assert sorted(numbers) == list(range(1, THREADS + 1))


def test_ref_lifecycle(client: httpx.Client, gh: FakeGitHub) -> None:
    assert client.get(f"{R}/git/ref/heads/main").json()["object"]["sha"] == INITIAL_COMMIT_SHA
    assert gh.initial_commit_sha == INITIAL_COMMIT_SHA
    created = client.post(f"{R}/git/refs", json={"ref": "refs/locks/a", "sha": INITIAL_COMMIT_SHA})
    assert created.status_code == 201 and created.json()["ref"] == "refs/locks/a"
    client.post(f"{R}/git/refs", json={"ref": "refs/locks/b", "sha": INITIAL_COMMIT_SHA})
    matching = client.get(f"{R}/git/matching-refs/locks/")
    assert [r["ref"] for r in matching.json()] == ["refs/locks/a", "refs/locks/b"]
    assert client.get(f"{R}/git/matching-refs/nothing").json() == []
    assert client.get(f"{R}/git/ref/locks/zzz").status_code == 404

    child = gh.add_commit(message="work")
    assert client.patch(f"{R}/git/refs/locks/a", json={"sha": child}).json()["object"]["sha"] == child
    back = client.patch(f"{R}/git/refs/locks/a", json={"sha": INITIAL_COMMIT_SHA})
    assert back.status_code == 422 and back.json()["message"] == "Update is not a fast forward"
    forced = client.patch(f"{R}/git/refs/locks/a", json={"sha": INITIAL_COMMIT_SHA, "force": True})
    assert forced.status_code == 200
    missing = client.patch(f"{R}/git/refs/locks/zzz", json={"sha": child})
    assert missing.status_code == 422 and missing.json()["message"] == "Reference does not exist"

    assert client.delete(f"{R}/git/refs/locks/a").status_code == 204
    again = client.delete(f"{R}/git/refs/locks/a")
    assert again.status_code == 422 and again.json()["message"] == "Reference does not exist"
    assert client.post(f"{R}/git/refs", json={"ref": "refs/locks/a", "sha": INITIAL_COMMIT_SHA}).status_code == 201


@pytest.mark.parametrize(
    ("ref", "sha", "message"),
    [
        ("refs/locks/x", "0" * 40, "Object does not exist"),
        ("refs/locks/x", "not-a-sha", "Object does not exist"),
        ("locks/x", INITIAL_COMMIT_SHA, "Reference name must contain at least three slash-separated components."),
        ("refs/x", INITIAL_COMMIT_SHA, "Reference name must contain at least three slash-separated components."),
        ("refs/locks/a b", INITIAL_COMMIT_SHA, "refs/locks/a b is not a valid ref name."),
        ("refs/heads/main/sub", INITIAL_COMMIT_SHA, "Reference update failed"),
    ],
)
def test_ref_create_validation(client: httpx.Client, ref: str, sha: str, message: str) -> None:
    response = client.post(f"{R}/git/refs", json={"ref": ref, "sha": sha})
    assert response.status_code == 422
    assert response.json()["message"] == message
