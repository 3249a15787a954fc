"""What the GitHub store costs in requests: the numbers docs/github-store.md quotes come from these tests."""

from __future__ import annotations

from octoqueue.job import NewJob
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import MakeStore, R, writes


def _warm(store: GitHubStore) -> Queue:
    """A queue whose store has done its one-time set-up (labels, the commit claim refs point at)."""
    queue = Queue(store)
    queue.enqueue({"warm": True})
    job = queue.claim()
    assert job is not None
    queue.complete(job)
    return queue


def test_job_lifecycle_costs_five_requests_four_writes(fake: FakeGitHub, store: GitHubStore) -> None:
    queue = _warm(store)
    fake.reset_counters()
    job_id = queue.enqueue({"x": 1})
    job = queue.claim()
    assert job is not None and job.id == job_id
    queue.complete(job)
    log = fake.request_log
    assert [(m, p) for m, p, _ in log] == [
        ("POST", f"{R}/issues"),  # create, labels included
        ("GET", f"{R}/issues"),  # pending listing (If-None-Match)
        ("POST", f"{R}/git/refs"),  # the claim: refs/octoqueue/claims/{n}-1
        ("PATCH", f"{R}/issues/{job_id}"),  # processing + lease, one request
        ("PATCH", f"{R}/issues/{job_id}"),  # completed + closed + body, one request, no read first
    ]
    assert len(log) <= 5 and len(writes(log)) <= 4


def test_small_batches_reuse_one_listing(fake: FakeGitHub, store: GitHubStore) -> None:
    queue = _warm(store)
    fake.reset_counters()
    ids = [queue.enqueue({"i": i}) for i in range(10)]
    done = []
    while (job := queue.claim()) is not None:
        queue.complete(job)
        done.append(job.id)
    assert done == ids
    log = fake.request_log
    listings = [e for e in log if e[0] == "GET"]
    # 10 creates + 10 x (ref + PATCH) + 10 completes; the listing is read once for the 10 claims, and once
    # more (a 304 or a changed page) to find the queue empty.
    assert len(writes(log)) == 40
    assert len(listings) <= 3
    assert len(log) / len(ids) <= 4.3


def test_idle_queue_costs_304s(fake: FakeGitHub, store: GitHubStore) -> None:
    queue = _warm(store)
    assert queue.claim() is None
    fake.reset_counters()
    for _ in range(5):
        assert queue.claim() is None
    assert fake.request_log == [("GET", f"{R}/issues", 304)] * 5
    assert store.request_stats["not_modified"] >= 5
    # 304s are free: GitHub's primary budget did not move.
    assert store.rate_limit.used == 0


def test_recover_and_count_when_idle_cost_304s(fake: FakeGitHub, store: GitHubStore) -> None:
    _warm(store)
    store.recover_expired()
    store.count()
    fake.reset_counters()
    store.recover_expired()
    store.count()
    assert {status for _, _, status in fake.request_log} == {304}
    assert len(fake.request_log) == 1 + 7  # processing listing; one listing per state (3 for cancelled)


def test_setup_is_once_per_store(fake: FakeGitHub, make_store: MakeStore) -> None:
    first = make_store()
    first.create(NewJob(data=1, title="a"))
    label_requests = [e for e in fake.request_log if e[1].startswith(f"{R}/labels")]
    assert label_requests[0] == ("GET", f"{R}/labels", 200)
    assert len(label_requests) == 1 + 7  # a fresh repository: 5 status labels, settings, archived
    colours = {name: label["color"] for name, label in fake.labels.items()}
    assert colours["pending"] == "fbca04" and colours["processing"] == "1d76db"
    assert colours["completed"] == "0e8a16" and colours["failed"] == "d73a4a"
    # Another process on the same repository finds the labels there and creates none.
    fake.reset_counters()
    second = make_store()
    queue = Queue(second)
    for i in range(3):
        queue.enqueue({"i": i})
    while (job := queue.claim()) is not None:
        queue.fail(job, error="x")
    paths = [p for _, p, _ in fake.request_log]
    assert paths.count(f"{R}/labels") == 1
    assert paths.count(f"{R}") == 1  # the repository's default branch, read once for claim refs
    assert paths.count(f"{R}/git/ref/heads/main") == 1


def test_transition_of_a_job_this_store_did_not_claim_reads_it_first(fake: FakeGitHub, store: GitHubStore) -> None:
    queue = _warm(store)
    job_id = queue.enqueue({"x": 1})
    fake.reset_counters()
    queue.cancel(job_id, comment="no longer needed")
    assert [(m, p) for m, p, _ in fake.request_log] == [
        ("GET", f"{R}/issues/{job_id}"),  # check the expected state
        ("POST", f"{R}/git/refs"),  # a pending job: win its move against claimers
        ("PATCH", f"{R}/issues/{job_id}"),
        ("POST", f"{R}/issues/{job_id}/comments"),
    ]
    assert store.get(job_id).state is JobState.CANCELLED


def test_short_lease_holder_checks_before_finishing(fake: FakeGitHub, make_store: MakeStore) -> None:
    store = make_store(lease_margin=10.0)
    queue = _warm(store)
    queue.enqueue({"x": 1})
    job = queue.claim(lease=5)  # less lease left than the margin: the holder verifies before it writes
    assert job is not None
    fake.reset_counters()
    queue.complete(job)
    assert [(m, p) for m, p, _ in fake.request_log] == [
        ("GET", f"{R}/issues/{job.id}"),
        ("POST", f"{R}/git/refs"),  # refs/octoqueue/expired/...: no recoverer can act on this lease now
        ("PATCH", f"{R}/issues/{job.id}"),
    ]


def test_rate_limit_counters_exposed(store: GitHubStore) -> None:
    assert store.rate_limit.remaining is None
    store.create(NewJob(data=1, title="a"))
    limits = store.rate_limit
    assert limits.limit == 5000 and limits.remaining is not None and limits.remaining < 5000
    assert limits.reset is not None and limits.resource == "core"
