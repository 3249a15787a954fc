"""GitHub write pacing per token (issue 8, item 9): every store of a process on one token and API root shares one
pacer; a claim that meets a rate limit finds no job instead of raising; a holder's finish waits a limit out within
its lease instead of raising, and is never sent after it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from acceptance.test_seed_quickstart import QUICK_START  # tests/ is on the path: its packages are top-level

from octoqueue.errors import DeadlinePassed, RateLimited
from octoqueue.github import GithubQueue
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.github import claims, client, posts, refs, settings
from octoqueue.stores.github import store as github_store
from octoqueue.stores.github.client import PACING_MARGIN, Pacer, credential_key, shared_pacer
from octoqueue.stores.memory import MemoryStore
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

from .conftest import REPO, TOKEN

_real_time = time


class VirtualTime:
    """``time`` for the modules of the GitHub store and the queue: a sleep moves this clock and the emulator's
    forward instead of waiting (the two stay equal, so GitHub's ``Date`` headers agree with it)."""

    def __init__(self, fake: FakeGitHub) -> None:
        self._fake = fake
        self._offset = 0.0
        self._lock = threading.Lock()
        self.slept = 0.0

    def monotonic(self) -> float:
        return _real_time.monotonic() + self._offset

    def time(self) -> float:
        return _real_time.time() + self._offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._offset += seconds
                self.slept += seconds
                self._fake.advance_time(seconds)
        _real_time.sleep(0)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(repo=REPO, token=TOKEN, enforce_secondary=False) as emulator:
        yield emulator


@pytest.fixture
def virtual_time(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> VirtualTime:
    clock = VirtualTime(fake)
    for module in (client, github_store, refs, claims, posts, settings):
        monkeypatch.setattr(module, "time", clock)
    import octoqueue.queue

    monkeypatch.setattr(octoqueue.queue, "time", clock)
    return clock


# -- the registry ---------------------------------------------------------------------------------------------
def test_one_pacer_per_token_and_api_root() -> None:
    root = "https://ghe.example/api/v3"
    a = shared_pacer(credential_key("tok-a"), root, per_minute=80, per_hour=500)
    assert shared_pacer(credential_key("tok-a"), root + "/", per_minute=80, per_hour=500) is a
    assert shared_pacer(credential_key("tok-b"), root, per_minute=80, per_hour=500) is not a
    assert shared_pacer(credential_key("tok-a"), "https://other.example/api/v3") is not a
    assert "tok-a" not in credential_key("tok-a")  # the registry keeps no secret


def test_the_shared_pacer_keeps_a_margin_and_the_strictest_limit() -> None:
    root = "https://margin.example"
    pacer = shared_pacer(credential_key("tok-m"), root, per_minute=80, per_hour=None)
    assert [w.limit for w in pacer._windows] == [int(80 * (1 - PACING_MARGIN))]
    shared_pacer(credential_key("tok-m"), root, per_minute=20, per_hour=500)
    assert sorted(w.limit for w in pacer._windows) == [19, 475]


def test_stores_on_one_token_share_their_pacer_and_its_holds(fake: FakeGitHub) -> None:
    transport = fake.transport()
    one, two = (GithubQueue(REPO, TOKEN, base_url=IN_PROCESS_URL, transport=transport) for _ in range(2))
    other = GithubQueue(REPO, "another-token", base_url=IN_PROCESS_URL, transport=transport)
    try:
        assert one.store._client.pacer is two.store._client.pacer
        assert other.store._client.pacer is not one.store._client.pacer
    finally:
        for queue in (one, two, other):
            queue.close()


def test_a_write_with_a_deadline_takes_the_last_free_place() -> None:
    pacer = Pacer(per_minute=3, per_hour=None)
    assert pacer._delay("POST") == 0 and pacer._delay("POST") == 0
    assert pacer._delay("POST") > 50  # a write without a deadline leaves the last place free ...
    assert pacer._delay("PATCH", urgent=True) == 0  # ... for the write that must follow a claim ref
    assert pacer._delay("PATCH", urgent=True) > 50


def test_the_pacer_refuses_a_wait_past_the_requests_deadline() -> None:
    pacer = Pacer(per_minute=None, per_hour=None)
    pacer.hold(30)
    token = client._DEADLINE.set(time.monotonic() + 5)
    try:
        started = time.monotonic()
        with pytest.raises(DeadlinePassed) as refused, pacer.acquire(httpx.Request("PATCH", "http://x/")):
            pass
        assert time.monotonic() - started < 1 and refused.value.retry_after > 25
    finally:
        client._DEADLINE.reset(token)


# -- the queue waits limits out ------------------------------------------------------------------------------------
class _Limited(MemoryStore):
    """A memory store whose next ``refusals`` claims or transitions are refused as GitHub's rate limit would."""

    def __init__(self, refusals: int, retry_after: float, error: type[RateLimited] = RateLimited) -> None:
        super().__init__()
        self.refusals, self.retry_after, self.error = refusals, retry_after, error

    def _refuse(self) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise self.error("rate limited", self.retry_after)

    def claim(self, **options: Any) -> list[Job]:
        self._refuse()
        return super().claim(**options)

    def transition(self, job_id: int, **options: Any) -> Job:  # type: ignore[override]
        self._refuse()
        return super().transition(job_id, **options)


def test_dequeue_finds_no_job_while_rate_limited_instead_of_raising() -> None:
    queue = Queue(_Limited(refusals=1, retry_after=60))
    queue.enqueue({"n": 1})
    assert queue.dequeue() is None
    assert queue.claim_batch(5) != []  # the limit is over: the job is there


def test_a_claim_that_may_wait_waits_a_short_limit_out() -> None:
    queue = Queue(_Limited(refusals=2, retry_after=0.05))
    job_id = queue.enqueue({"n": 1})
    assert queue.dequeue(wait_sec=5) == (job_id, {"n": 1})


@pytest.mark.parametrize("by_id", [False, True], ids=["job", "bare-id"])
def test_a_holders_finish_waits_a_limit_out_within_its_lease(by_id: bool) -> None:
    store = _Limited(refusals=0, retry_after=0.05)
    queue = Queue(store, lease=60)
    queue.enqueue({"n": 1})
    job = queue.claim()
    assert job is not None
    store.refusals = 3
    done = queue.complete(job.id if by_id else job)
    assert done.state is JobState.COMPLETED and store.refusals == 0


def test_a_finish_that_would_outrun_the_lease_is_refused_and_nothing_moves() -> None:
    store = _Limited(refusals=0, retry_after=120, error=DeadlinePassed)
    queue = Queue(store, lease=60)
    queue.enqueue({"n": 1})
    job = queue.claim()
    assert job is not None
    store.refusals = 1
    started = time.monotonic()
    with pytest.raises(DeadlinePassed):
        queue.fail(job.id, "broke")
    assert time.monotonic() - started < 1
    assert queue.get(job.id).state is JobState.PROCESSING


# -- the original's quick start, six queues on one token ---------------------------------------------------------
@pytest.mark.timeout(120)
def test_six_queues_on_one_token_run_the_quick_start_without_a_refusal(
    fake: FakeGitHub, virtual_time: VirtualTime
) -> None:
    limit = 20  # GitHub's 80 writes a minute, scaled down: the same contest in a quarter of the writes
    options: dict[str, Any] = {"base_url": IN_PROCESS_URL, "transport": fake.transport(), "writes_per_minute": limit}
    GithubQueue(REPO, TOKEN, **options).store.ensure_ready()  # the labels, before the limits count
    fake.set_limits(enforce_secondary=True, secondary_writes_per_minute=limit)
    fake.reset_counters()
    queues = [GithubQueue(owner="octo-org", repo="jobs", token=TOKEN, **options) for _ in range(6)]
    processed: list[Any] = []
    loop = QUICK_START[QUICK_START.index("# Dequeue and process jobs") :]  # the seed README's loop, verbatim
    made = []
    for round_ in range(3):
        for n, queue in enumerate(queues):
            made.append(queue.enqueue({"data": f"example {round_}.{n}"}))
        for queue in queues:
            exec(loop, {"queue": queue, "process_data": processed.append})  # its except fails the job
    for queue in queues:
        while (job := queue.dequeue()) is not None:  # what a rate limit left for later
            processed.append(job[1])
            queue.complete(job[0])
    assert len(processed) == len(made) == 18
    assert all(fake.labels_of(number) == ["completed"] for number in made)  # none failed by the except
    statuses = [status for _, _, status in fake.request_log]
    assert 403 not in statuses and 429 not in statuses  # the shared pacer kept every store under the limit
    writes = sum(1 for method, _, _ in fake.request_log if method != "GET")
    assert writes >= 4 * len(made)  # create, claim ref, claim, complete: well past one minute's limit ...
    assert virtual_time.slept >= 60 * (writes / limit - 1)  # ... so they were spread over the minutes it takes
    for queue in queues:
        queue.close()


def test_lease_end_is_the_claims(fake: FakeGitHub) -> None:
    queue = GithubQueue(REPO, TOKEN, base_url=IN_PROCESS_URL, transport=fake.transport(), writes_per_minute=None)
    try:
        queue.enqueue({"n": 1})
        job = queue.claim(lease=120)
        assert job is not None and job.lease_expires_at is not None
        assert queue._lease_end(job.id) == job.lease_expires_at
        assert job.lease_expires_at - queue.store.now() <= timedelta(seconds=121)
        queue.complete(job.id)
        assert queue._lease_end(job.id) is None  # finished: forgotten
    finally:
        queue.close()
