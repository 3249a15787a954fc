"""Rate limits (primary, secondary, concurrency), conditional requests, and injected faults."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from octoqueue.testing.fake_github import FakeGitHub
from tests.fake_github.conftest import REPO, TOKEN, R, new_issue


def remaining(response: httpx.Response) -> int:
    return int(response.headers["x-ratelimit-remaining"])


def test_etag_304_is_not_counted(client: httpx.Client, gh: FakeGitHub) -> None:
    number = new_issue(client)["number"]
    first = client.get(f"{R}/issues/{number}")
    etag = first.headers["etag"]
    again = client.get(f"{R}/issues/{number}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert remaining(again) == remaining(first)  # a 304 costs nothing
    assert client.get("/rate_limit").json()["resources"]["core"]["used"] == 2  # POST + first GET
    gh.add_label(number, "changed")
    changed = client.get(f"{R}/issues/{number}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert remaining(changed) == remaining(first) - 1


def test_etag_works_on_lists_and_without_weak_prefix(client: httpx.Client) -> None:
    new_issue(client)
    etag = client.get(f"{R}/issues").headers["etag"]
    assert client.get(f"{R}/issues", headers={"If-None-Match": etag.removeprefix("W/")}).status_code == 304
    assert client.get(f"{R}/issues", headers={"If-None-Match": '"other"'}).status_code == 200


def test_if_modified_since_uses_last_modified(client: httpx.Client) -> None:
    number = new_issue(client)["number"]
    last_modified = client.get(f"{R}/issues/{number}").headers["last-modified"]
    assert client.get(f"{R}/issues/{number}", headers={"If-Modified-Since": last_modified}).status_code == 304


def test_primary_limit_then_reset() -> None:
    with FakeGitHub(repo=REPO, token=TOKEN, rate_limit=3) as gh, gh.client() as client:
        statuses = [client.get(R).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = client.get(R)
        assert limited.status_code == 403
        assert limited.json()["message"].startswith("API rate limit exceeded for user ID")
        assert limited.headers["x-ratelimit-remaining"] == "0"
        reset = int(limited.headers["x-ratelimit-reset"])
        assert reset > time.time()
        assert client.get("/rate_limit").status_code == 200  # exempt, as on GitHub
        gh.advance_time(reset - time.time() + 1)
        fresh = client.get(R)
        assert fresh.status_code == 200 and fresh.headers["x-ratelimit-remaining"] == "2"
        assert int(fresh.headers["x-ratelimit-reset"]) > reset


def test_primary_window_length_is_configurable() -> None:
    with FakeGitHub(repo=REPO, rate_limit=1, rate_limit_window=0.2) as gh, gh.client() as client:
        assert client.get(R).status_code == 200
        assert client.get(R).status_code == 403
        time.sleep(0.25)
        assert client.get(R).status_code == 200


def test_secondary_limit_per_minute_with_retry_after() -> None:
    with FakeGitHub(repo=REPO, secondary_writes_per_minute=3) as gh, gh.client() as client:
        for i in range(3):
            assert new_issue(client, f"job {i}")
        limited = client.post(f"{R}/issues", json={"title": "one too many"})
        assert limited.status_code == 403
        assert limited.json()["message"].startswith("You have exceeded a secondary rate limit")
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert client.get(R).status_code == 200  # reads are not content-creating
        assert len(gh.issues) == 3  # the refused write did nothing
        gh.advance_time(retry_after)
        assert client.post(f"{R}/issues", json={"title": "later"}).status_code == 201


def test_secondary_limit_per_hour() -> None:
    with FakeGitHub(repo=REPO, secondary_writes_per_minute=100, secondary_writes_per_hour=4) as gh, gh.client() as c:
        for i in range(4):
            new_issue(c, f"job {i}")
            gh.advance_time(61)  # stay under the per-minute limit
        limited = c.post(f"{R}/issues", json={"title": "x"})
        assert limited.status_code == 403
        assert int(limited.headers["retry-after"]) > 60  # waits for the hour window, not the minute one


def test_secondary_limits_can_be_switched_off() -> None:
    with FakeGitHub(repo=REPO, secondary_writes_per_minute=1, enforce_secondary=False) as gh, gh.client() as c:
        assert all(c.post(f"{R}/issues", json={"title": "t"}).status_code == 201 for _ in range(5))


def test_concurrency_limit() -> None:
    with FakeGitHub(repo=REPO, latency=0.3, max_concurrency=2) as gh, gh.client() as client:
        with ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(lambda _: client.get(R), range(6)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(200) == 2 and statuses.count(403) == 4
        refused = next(r for r in responses if r.status_code == 403)
        assert "secondary rate limit" in refused.json()["message"] and "retry-after" in refused.headers


def test_latency_overlaps_between_concurrent_requests() -> None:
    with FakeGitHub(repo=REPO, latency=0.5) as gh, gh.client() as client:
        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(lambda _: client.get(R).status_code, range(10)))
        elapsed = time.monotonic() - started
        assert statuses == [200] * 10
        assert 0.5 <= elapsed < 3.0  # ten requests in parallel, not 5 s in a row


def test_async_transport_overlaps_latency_too() -> None:
    async def burst(gh: FakeGitHub) -> list[int]:
        async with httpx.AsyncClient(transport=gh.async_transport(), base_url="http://fake-github.local") as client:
            responses = await asyncio.gather(*(client.get(R) for _ in range(10)))
        return [r.status_code for r in responses]

    with FakeGitHub(repo=REPO, latency=0.5) as gh:
        started = time.monotonic()
        assert asyncio.run(burst(gh)) == [200] * 10
        assert time.monotonic() - started < 3.0  # not 5 s in a row


def test_error_rate_fails_before_the_work() -> None:
    with FakeGitHub(repo=REPO, error_rate=0.5, seed=7) as gh, gh.client() as client:
        responses = [client.post(f"{R}/issues", json={"title": f"t{i}"}) for i in range(40)]
        failed = [r for r in responses if r.status_code >= 500]
        ok = [r for r in responses if r.status_code == 201]
        assert 5 < len(failed) < 35 and len(failed) + len(ok) == 40
        assert {r.status_code for r in failed} <= {500, 502, 503}
        assert all({"message", "documentation_url", "status"} <= r.json().keys() for r in failed)
        assert len(gh.issues) == len(ok)  # a failed request did nothing: retrying it is safe


def test_error_rate_is_seeded() -> None:
    def run() -> list[int]:
        with FakeGitHub(repo=REPO, error_rate=0.3, seed=42) as gh, gh.client() as client:
            return [client.get(R).status_code for _ in range(30)]

    assert run() == run()


def test_error_after_rate_fails_after_the_write() -> None:
    with FakeGitHub(repo=REPO) as gh, gh.client() as client:
        gh.set_faults(error_after_rate=1.0)
        response = client.post(f"{R}/issues", json={"title": "did it happen?"})
        assert response.status_code >= 500
        assert [i["title"] for i in gh.issues.values()] == ["did it happen?"]  # it did
        assert client.get(R).status_code == 200  # reads are unaffected
        gh.set_faults(error_after_rate=0.0)
        assert client.post(f"{R}/issues", json={"title": "again"}).status_code == 201
