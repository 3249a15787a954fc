"""The plumbing under the GitHub store: rate-limit answers, retries, pacing, the server clock, error mapping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from octoqueue.errors import AccessDenied, JobNotFound, RateLimited, StoreUnavailable
from octoqueue.job import NewJob
from octoqueue.stores.github import GitHubStore
from octoqueue.stores.github.client import Pacer, ServerClock, _Window, parse_links
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

from .conftest import FAST, REPO, TOKEN

Answer = Callable[[httpx.Request], httpx.Response | None]


class Scripted(httpx.BaseTransport):
    """Answers requests from ``script`` (first matching answer wins, None = pass on) before the emulator."""

    def __init__(self, inner: httpx.BaseTransport, *script: Answer) -> None:
        self.inner, self.script, self.seen = inner, list(script), 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        for answer in self.script:
            response = answer(request)
            if response is not None:
                response.request = request
                return response
        return self.inner.handle_request(request)


def times(n: int, status: int, headers: dict[str, str], message: str, method: str = "POST") -> Answer:
    left = [n]

    def answer(request: httpx.Request) -> httpx.Response | None:
        if request.method != method or left[0] <= 0:
            return None
        left[0] -= 1
        return httpx.Response(status, headers=headers, json={"message": message})

    return answer


def store_on(transport: httpx.BaseTransport, **options: object) -> GitHubStore:
    return GitHubStore(REPO, token=TOKEN, base_url=IN_PROCESS_URL, transport=transport, **{**FAST, **options})


def job() -> NewJob:
    return NewJob(data={"a": 1}, title="t")


SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."


def test_secondary_limit_retry_after_is_honoured(fake: FakeGitHub) -> None:
    transport = Scripted(fake.transport(), times(1, 403, {"retry-after": "1"}, SECONDARY))
    store = store_on(transport)
    started = time.monotonic()
    created = store.create(job())
    assert time.monotonic() - started >= 1.0
    assert created.id == 1 and len(fake.issues) == 1  # retried once, created once
    store.close()


def test_secondary_limit_without_headers_backs_off_exponentially(fake: FakeGitHub) -> None:
    transport = Scripted(fake.transport(), times(3, 403, {}, SECONDARY))
    store = store_on(transport, rate_limit_backoff=0.05)
    started = time.monotonic()
    store.create(job())
    assert time.monotonic() - started >= 0.05 + 0.1 + 0.2
    store.close()


def test_429_and_primary_reset_are_honoured(fake: FakeGitHub) -> None:
    reset = str(int(time.time()) + 1)
    transport = Scripted(
        fake.transport(),
        times(1, 429, {}, "Too many requests"),
        times(1, 403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}, "API rate limit exceeded"),
    )
    store = store_on(transport, rate_limit_backoff=0.05)
    store.create(job())
    assert len(fake.issues) == 1
    store.close()


def test_long_waits_are_raised_not_slept(fake: FakeGitHub) -> None:
    store = store_on(fake.transport(), max_rate_limit_wait=5)
    store.create(job())
    fake.set_limits(rate_limit=1)
    fake.reset_counters()
    store.get(1)  # uses the single request of the window
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        store.get(1)
    assert time.monotonic() - started < 1
    assert 3000 < caught.value.retry_after <= 3603
    fake.reset_counters()
    with pytest.raises(RateLimited):
        store.get(1)  # refused without knocking on GitHub's door again
    assert fake.request_log == []
    fake.advance_time(3601)  # the window passes
    store._client.pacer.clear()
    assert store.get(1).id == 1
    store.close()


def test_all_threads_wait_during_a_rate_limit_hold() -> None:
    pacer = Pacer(per_minute=None, per_hour=None)
    pacer.hold(0.3)
    request = httpx.Request("GET", "http://x/")
    finished: list[float] = []
    started = time.monotonic()

    def go() -> None:
        with pacer.acquire(request):
            finished.append(time.monotonic() - started)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(finished) == 3 and min(finished) >= 0.29


def test_pacer_is_a_sliding_window() -> None:
    window = _Window(3, 60.0)
    for t in (0.0, 1.0, 2.0):
        assert window.wait_time(t) == 0.0
        window.sent.append(t)
    assert window.wait_time(30.0) == pytest.approx(30.0)  # the 4th write waits for the 1st to leave the window
    assert window.wait_time(60.5) == 0.0


def test_pacer_paces_only_writes() -> None:
    pacer = Pacer(per_minute=3, per_hour=None)  # a write without a deadline leaves one place free: 2 go now
    assert pacer._delay("POST") == 0 and pacer._delay("PATCH") == 0
    assert pacer._delay("DELETE") > 50
    assert pacer._delay("GET") == 0


def test_5xx_on_reads_and_idempotent_writes_are_retried(fake: FakeGitHub) -> None:
    transport = Scripted(
        fake.transport(),
        times(2, 502, {}, "Server Error", method="GET"),
        times(2, 503, {}, "Service Unavailable", method="PATCH"),
    )
    store = store_on(transport)
    created = store.create(job())
    assert store.get(created.id).id == created.id
    (claimed,) = store.claim(worker="w", lease=60)
    assert claimed.id == created.id
    store.close()


def test_creation_that_failed_after_the_write_is_not_repeated(fake: FakeGitHub) -> None:
    store = store_on(fake.transport())
    store.ensure_ready()
    fake.set_faults(error_after_rate=1.0)  # every write happens, then answers 5xx
    created = store.create(job())
    assert len([i for i in fake.issues.values() if i["title"] == "t"]) == 1
    note = store.comment(created.id, "once")
    assert [c["body"] for c in fake.comments_of(created.id)] == ["once"] and note.body == "once"
    store.close()


class ClaimedThenFailed(httpx.BaseTransport):
    """The first issue POST is made, a worker claims the job at once (rewriting its body), then GitHub says 502."""

    def __init__(self, inner: httpx.BaseTransport, worker: GitHubStore) -> None:
        self.inner, self.worker, self.done = inner, worker, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/issues") and not self.done:
            self.done = True
            assert [j.id for j in self.worker.claim(worker="quick", lease=60)] == [1]
            return httpx.Response(502, json={"message": "Server Error"}, request=request)
        return response


def test_ambiguous_create_finds_a_job_already_claimed(fake: FakeGitHub) -> None:
    worker = store_on(fake.transport())
    producer = store_on(ClaimedThenFailed(fake.transport(), worker))
    created = producer.create(job())
    assert created.id == 1 and len(fake.issues) == 1  # found by its create token, not posted again
    assert '"create_token"' in fake.get_issue(1)["body"]
    worker.close()
    producer.close()


def test_5xx_everywhere_becomes_store_unavailable(fake: FakeGitHub) -> None:
    store = store_on(fake.transport(), retries=2)
    fake.set_faults(error_rate=1.0)
    with pytest.raises(StoreUnavailable, match="after 3 tries"):
        store.get(1)
    store.close()


def test_errors_are_mapped_once(fake: FakeGitHub) -> None:
    store = store_on(fake.transport())
    with pytest.raises(JobNotFound):
        store.get(5)
    with pytest.raises(JobNotFound):
        store.comments(5)
    bad = GitHubStore(REPO, token="nope", base_url=IN_PROCESS_URL, transport=fake.transport(), **FAST)
    with pytest.raises(AccessDenied, match=r"401 Bad credentials.*missing, wrong or expired") as refused:
        bad.get(1)
    assert refused.value.status == 401
    assert not isinstance(refused.value, StoreUnavailable)  # nothing to wait for: callers must not retry it
    store.close()
    bad.close()


def test_a_token_without_write_permission_is_access_denied(fake: FakeGitHub) -> None:
    store = store_on(fake.transport())
    job = store.create(NewJob(data={"n": 1}, title="t"))
    fake.backend.token_read_only = True
    with pytest.raises(AccessDenied, match=r"403 Resource not accessible by integration.*issues: write") as refused:
        store.comment(job.id, "hello")
    assert refused.value.status == 403
    assert store.get(job.id).id == job.id  # reads still work
    store.close()


def test_connection_errors_are_store_unavailable() -> None:
    store = GitHubStore(REPO, token=TOKEN, base_url="http://127.0.0.1:9", retries=1, retry_backoff=0.01, timeout=1)
    with pytest.raises(StoreUnavailable, match="could not be reached"):
        store.get(1)
    store.close()


# -- the server's clock --------------------------------------------------------------------------------------------
def http_date(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def test_server_clock_trusts_an_agreeing_local_clock() -> None:
    clock = ServerClock()
    now = time.time()
    clock.observe(http_date(now), now - 0.01, now + 0.01)
    assert clock.offset() == 0.0


def test_server_clock_corrects_a_skewed_local_clock() -> None:
    clock = ServerClock()
    base = 1_700_000_000.25
    for i in range(20):  # GitHub is 42.5 s ahead; samples every 0.1 s narrow it down to the sub-second
        local = base + i * 0.1
        clock.observe(http_date(local + 42.5), local - 0.005, local + 0.005)
    assert 42.0 <= clock.offset() <= 43.0
    assert abs(clock.offset() - 42.5) < 0.15


def test_server_clock_follows_a_step() -> None:
    clock = ServerClock()
    now = time.time()
    clock.observe(http_date(now), now, now)
    clock.observe(http_date(now + 3600), now, now)  # contradicts the first: start again
    assert 3599 <= clock.offset() <= 3601
    clock.observe("not a date", now, now)
    assert 3599 <= clock.offset() <= 3601


def test_link_header_parsing() -> None:
    header = '<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last"'
    assert parse_links(header) == {"next": "https://api.github.com/x?page=2", "last": "https://api.github.com/x?page=5"}
    assert parse_links(None) == {}


def test_one_http_client_per_store(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_on(fake.transport())
    made: list[object] = []
    original = type(store._client.gh)._create_sync_client

    def counting(self: object) -> httpx.Client:
        client = original(self)  # type: ignore[arg-type]
        made.append(client)
        return client

    monkeypatch.setattr(type(store._client.gh), "_create_sync_client", counting)
    threads = [threading.Thread(target=lambda: store.create(job())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.claim(worker="w", lease=60)
    assert len(fake.request_log) > 10 and len(made) == 1  # every request, every thread: one client
    store.close()
