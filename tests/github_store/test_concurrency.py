"""Many workers, injected latency and faults: every job is claimed and completed once, none lost or doubled."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from octoqueue.errors import LeaseLost, RateLimited, StateConflict, StoreUnavailable
from octoqueue.job import NewJob
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

from .conftest import FAST, REPO, TOKEN, MakeStore

WORKERS = 8
JOBS_PER_WORKER = 200


def _drain(
    queue: Queue, name: str, claimed: list[tuple[int, int, str]], lock: threading.Lock, stop: threading.Event
) -> None:
    idle_since: float | None = None
    while True:
        job = queue.claim(worker=name)
        if job is None:
            if stop.is_set():
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 0.3:
                    return
            time.sleep(0.005)
            continue
        idle_since = None
        with lock:
            claimed.append((job.id, job.attempt, name))
        queue.complete(job)


def _run_workers(queues: list[Queue], stop: threading.Event) -> tuple[list[threading.Thread], list[Any]]:
    """Start one draining thread per queue; they return once ``stop`` is set and they found nothing for 0.3 s."""
    claimed: list[tuple[int, int, str]] = []
    lock = threading.Lock()
    threads = [threading.Thread(target=_drain, args=(q, q.worker_name, claimed, lock, stop)) for q in queues]
    for t in threads:
        t.start()
    return threads, claimed


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)


def _report(label: str, log: list[tuple[str, str, int]], jobs: int) -> str:
    lost = sum(1 for m, p, s in log if m == "POST" and p.endswith("/git/refs") and s == 422)
    writes = sum(1 for e in log if e[0] != "GET")
    return (
        f"{label}: {len(log) / jobs:.2f} requests/job, {writes / jobs:.2f} writes/job, "
        f"{lost / jobs:.2f} lost claim races/job, {sum(1 for e in log if e[2] == 304)} not-modified"
    )


@pytest.fixture
def busy_gil() -> Iterator[None]:
    """Many client threads and the emulator's event loop share one GIL: hand it over more often than 5 ms."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    yield
    sys.setswitchinterval(previous)


@pytest.mark.usefixtures("busy_gil")
def test_eight_workers_each_job_claimed_and_completed_once(fake: FakeGitHub, make_store: MakeStore) -> None:
    fake.set_faults(latency=0.001)
    fake.set_limits(rate_limit=10**6)  # 1,600 jobs are more than an hour of one token's budget
    producer = Queue(make_store())
    total = WORKERS * JOBS_PER_WORKER
    ids = [producer.enqueue({"i": i}) for i in range(total)]
    workers = [Queue(make_store(), worker_name=f"w{i}") for i in range(WORKERS)]  # one client each: processes
    fake.reset_counters()
    stop = threading.Event()
    stop.set()
    threads, claimed = _run_workers(workers, stop)
    _join(threads)
    print("\n" + _report(f"backlog of {total}, {WORKERS} worker processes", fake.request_log, total))
    per_job = Counter(job_id for job_id, _, _ in claimed)
    assert sorted(per_job) == sorted(ids)
    assert set(per_job.values()) == {1}  # exactly once
    assert {attempt for _, attempt, _ in claimed} == {1}
    assert producer.store.count() == {
        JobState.PENDING: 0,
        JobState.PROCESSING: 0,
        JobState.COMPLETED: total,
        JobState.FAILED: 0,
        JobState.CANCELLED: 0,
    }
    assert len(fake.issues) == total
    assert len({name for _, _, name in claimed}) == WORKERS  # they all took part
    assert len(fake.request_log) / total < 5.5


def test_workers_waiting_for_a_trickle_of_jobs(fake: FakeGitHub, make_store: MakeStore) -> None:
    """The worst case for polling: idle workers all see each new job at once and race for it."""
    fake.set_faults(latency=0.001)
    producer = Queue(make_store())
    producer.enqueue({"warm": True})
    workers = [Queue(make_store(), worker_name=f"w{i}") for i in range(4)]
    fake.reset_counters()
    stop = threading.Event()
    threads, claimed = _run_workers(workers, stop)
    total = 60
    ids = []
    for i in range(total):
        ids.append(producer.enqueue({"i": i}))
        time.sleep(0.01)
    stop.set()
    _join(threads)
    print("\n" + _report(f"trickle of {total}, 4 polling workers", fake.request_log, total))
    assert sorted(j for j, _, _ in claimed if j in ids) == ids
    assert len(claimed) == total + 1


def test_threads_sharing_one_store(fake: FakeGitHub, store: GitHubStore) -> None:
    fake.set_faults(latency=0.001)
    queue = Queue(store)
    ids = [queue.enqueue({"i": i}) for i in range(120)]
    claimed: list[tuple[int, int, str]] = []
    lock, stop = threading.Lock(), threading.Event()
    stop.set()
    threads = [threading.Thread(target=_drain, args=(queue, f"t{i}", claimed, lock, stop)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(job_id for job_id, _, _ in claimed) == ids
    # Threads of one store split the cached listing between them instead of racing for the same refs.
    losses = [e for e in fake.request_log if e[0] == "POST" and e[1].endswith("/git/refs") and e[2] == 422]
    assert len(losses) <= 6


class SecondaryLimits(httpx.BaseTransport):
    """Answers a share of writes with GitHub's secondary-limit 403 (``retry-after: 0``) before they arrive."""

    def __init__(self, inner: httpx.BaseTransport, rate: float, seed: int = 7) -> None:
        self.inner, self.rate, self.rng, self.lock = inner, rate, random.Random(seed), threading.Lock()
        self.tripped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            with self.lock:
                trip = self.rng.random() < self.rate
                self.tripped += trip
            if trip:
                return httpx.Response(
                    403,
                    headers={"retry-after": "0", "x-ratelimit-remaining": "4000", "content-type": "application/json"},
                    json={"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
                    request=request,
                )
        return self.inner.handle_request(request)


def _resilient(action: Any) -> Any:
    """Run ``action`` until GitHub lets it through (what a worker's loop does on transient errors)."""
    for _ in range(50):
        try:
            return action()
        except (RateLimited, StoreUnavailable):
            time.sleep(0.01)
    raise AssertionError("never got through")


@pytest.mark.parametrize("unkind", [False, True], ids=["faults", "faults-lagging-reads-and-ref-failures"])
def test_faults_and_secondary_limits_lose_and_double_nothing(fake: FakeGitHub, unkind: bool) -> None:
    fake.set_faults(latency=0.001, error_rate=0.10, error_after_rate=0.03)
    options = {**FAST, "orphan_grace": 2.0, "retries": 4, "lease_margin": 5.0}
    if unkind:  # and GitHub's unkinder habits: reads half a second behind, transient 422s on refs
        fake.set_faults(read_lag=0.5, ref_failure_rate=0.05)
        options["read_lag"] = 1.0
    limits = SecondaryLimits(fake.transport(), rate=0.05)

    def store() -> GitHubStore:
        return GitHubStore(REPO, token=TOKEN, base_url=IN_PROCESS_URL, transport=limits, **options)

    producers = [store() for _ in range(2)]
    workers = [Queue(store(), lease=30) for _ in range(4)]
    total = 120
    made: list[int] = []
    finished: list[int] = []
    lock = threading.Lock()
    done_making = threading.Event()

    def produce(s: GitHubStore, start: int) -> None:
        for i in range(start, total, 2):
            job = _resilient(lambda i=i: s.create(NewJob(data={"i": i}, title=f"job {i}")))
            with lock:
                made.append(job.id)

    def work(queue: Queue) -> None:
        # Until every job is finished: an orphan (a claim whose PATCH failed after its ref) comes back only after
        # orphan_grace, so "nothing to claim for a while" does not mean "done".
        give_up = time.monotonic() + 90
        while time.monotonic() < give_up:
            with lock:
                if done_making.is_set() and len(set(finished)) >= total:
                    return
            _resilient(queue.recover_expired)
            job = _resilient(queue.claim)
            if job is None:
                time.sleep(0.02)
                continue
            try:
                _resilient(lambda job=job: queue.complete(job, result={"i": job.data["i"]}))
            except (LeaseLost, StateConflict):
                continue  # taken back after an abandoned write: someone else will finish it
            with lock:
                finished.append(job.id)

    makers = [threading.Thread(target=produce, args=(p, i)) for i, p in enumerate(producers)]
    runners = [threading.Thread(target=work, args=(q,)) for q in workers]
    for t in makers + runners:
        t.start()
    for t in makers:
        t.join(timeout=120)
    done_making.set()
    for t in runners:
        t.join(timeout=120)
    assert limits.tripped > 0
    statuses = Counter(status for _, _, status in fake.request_log)
    assert sum(n for s, n in statuses.items() if s >= 500) > 0
    # Nothing doubled: one issue per job, each completed once with one result comment.
    assert len(fake.issues) == total and sorted(made) == sorted(fake.issues)
    data = sorted(issue["body"].split("\n")[2] for issue in fake.issues.values())
    assert len(set(data)) == total
    assert Counter(finished) == Counter(made)  # nothing lost, nothing finished twice
    for number in made:
        assert fake.issues[number]["state"] == "closed"
        assert fake.labels_of(number) == ["completed"]
        results = [c for c in fake.comments_of(number) if "**Result**" in c["body"]]
        assert len(results) == 1


def test_githubs_own_secondary_limit_trips_and_nothing_is_lost(fake: FakeGitHub, make_store: MakeStore) -> None:
    """The emulator enforces 10 writes a minute; waits that long are raised (RateLimited), the caller waits."""
    fake.set_limits(enforce_secondary=True, secondary_writes_per_minute=10)
    store = make_store(max_rate_limit_wait=0.5, orphan_grace=0.3)
    queue = Queue(store, lease=3600)
    tripped = 0

    def patiently(action: Any) -> Any:
        nonlocal tripped
        while True:
            try:
                return action()
            except RateLimited as exc:
                tripped += 1
                assert 0 < exc.retry_after <= 61
                fake.advance_time(exc.retry_after)  # let GitHub's minute pass without sleeping through it
                store._client.pacer.clear()

    ids = [patiently(lambda i=i: queue.enqueue({"i": i})) for i in range(15)]
    done: list[int] = []
    deadline = time.monotonic() + 30
    while len(done) < len(ids) and time.monotonic() < deadline:
        # The store's verbs: the Queue's own would wait the limit out (a claim finds nothing, a finish waits).
        job = patiently(lambda: next(iter(store.claim(worker="w", lease=3600)), None))
        if job is None:
            # A claim whose PATCH was refused after it won the ref left the ref behind: the job comes back
            # once orphan_grace has passed.
            time.sleep(0.1)
            continue
        patiently(
            lambda job=job: store.transition(
                job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=job.attempt
            )
        )
        done.append(job.id)
    assert tripped >= 3
    assert sorted(done) == ids and len(fake.issues) == 15
    assert all(fake.labels_of(n) == ["completed"] for n in ids)
    assert any(status == 403 for _, _, status in fake.request_log)
