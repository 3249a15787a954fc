"""The GitHub store under GitHub's unkinder habits, switched on in the emulator: reads that lag writes,
labels silently dropped for a token without push access, and transient 422s on ref creation."""

from __future__ import annotations

import time

import pytest

from octoqueue.errors import AccessDenied
from octoqueue.job import NewJob
from octoqueue.states import JobState
from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import MakeStore

#: Seconds reads lag writes in these tests: short, so the tests stay quick, yet longer than the store's first
#: look after an ambiguous POST (which is what went wrong before).
LAG = 0.6
#: What the stores are told to allow for (the default is 5 s), with a wide margin over ``LAG``.
ALLOW = {"read_lag": 4 * LAG}


def finish(store: GitHubStore, job_id: int) -> int:
    return store.transition(job_id, expected=JobState.PROCESSING, target=JobState.COMPLETED).id


def test_an_ambiguous_create_is_not_repeated_when_the_listing_lags(fake: FakeGitHub, make_store: MakeStore) -> None:
    store = make_store(**ALLOW)
    store.ensure_ready()
    fake.set_faults(error_after_rate=1.0, read_lag=LAG)  # the POST happens, answers 5xx, and listings lag
    created = store.create(NewJob(data={"n": 1}, title="t"))
    fake.set_faults(error_after_rate=0.0, read_lag=0.0)
    assert [n for n, issue in fake.issues.items() if issue["title"] == "t"] == [created.id]


def test_an_ambiguous_comment_is_not_repeated_when_the_listing_lags(fake: FakeGitHub, make_store: MakeStore) -> None:
    store = make_store(**ALLOW)
    job = store.create(NewJob(data={"n": 1}, title="t"))
    fake.set_faults(error_after_rate=1.0, read_lag=LAG)
    note = store.comment(job.id, "once")
    fake.set_faults(error_after_rate=0.0, read_lag=0.0)
    assert [c["body"] for c in fake.comments_of(job.id)] == ["once"] and note.body == "once"


def test_a_job_is_claimed_and_finished_once_while_reads_lag(fake: FakeGitHub, make_store: MakeStore) -> None:
    producer, worker = make_store(**ALLOW), make_store(**ALLOW)
    fake.set_faults(read_lag=LAG)
    ids = [producer.create(NewJob(data={"n": n}, title=f"j{n}")).id for n in range(3)]
    fake.advance_time(LAG)  # the replica shows the new jobs
    done = []
    for _ in range(3):
        (claimed,) = worker.claim(worker="w", lease=60)
        done.append(finish(worker, claimed.id))
    assert sorted(done) == ids
    fake.set_faults(read_lag=0.0)
    assert all(fake.labels_of(n) == ["completed"] for n in ids)


def test_a_dropped_status_label_is_a_clear_error_and_leaves_no_job_behind(
    fake: FakeGitHub, make_store: MakeStore
) -> None:
    store = make_store(**ALLOW)
    store.ensure_ready()
    fake.set_faults(push_access=False)  # GitHub creates the issue (201) and silently drops its labels
    with pytest.raises(AccessDenied, match="push access"):
        store.create(NewJob(data={"n": 1}, title="t"))
    (issue,) = fake.issues.values()
    assert issue["state"] == "closed"  # not left open as a job nobody can see or claim
    fake.set_faults(push_access=True)
    assert sum(store.count().values()) == 0


def test_a_dropped_status_label_on_a_transition_is_a_clear_error(fake: FakeGitHub, make_store: MakeStore) -> None:
    store = make_store(**ALLOW)
    job = store.create(NewJob(data={"n": 1}, title="t"))
    fake.set_faults(push_access=False)
    with pytest.raises(AccessDenied, match="push access"):
        store.transition(job.id, expected=JobState.PENDING, target=JobState.CANCELLED)
    fake.set_faults(push_access=True)
    assert fake.labels_of(job.id) == ["pending"]


def test_transient_ref_failures_do_not_fail_claims(fake: FakeGitHub, make_store: MakeStore) -> None:
    producer = make_store(**ALLOW)
    worker = make_store(orphan_grace=1.0)  # a ref made by a failed-looking try is rescued soon; its PATCH has 0.5 s
    ids = sorted(producer.create(NewJob(data={"n": n}, title=f"j{n}")).id for n in range(12))
    fake.set_faults(ref_failure_rate=0.5)  # seeded: the same draws every run
    done: list[int] = []
    give_up = time.monotonic() + 30  # wide: a job whose ref a failed try made waits out orphan_grace first
    while len(done) < len(ids) and time.monotonic() < give_up:
        claimed = worker.claim(worker="w", lease=60)
        done += [finish(worker, job.id) for job in claimed]
        if not claimed:
            time.sleep(0.05)  # the store's orphan grace runs on time.monotonic(), which no test can move
    assert sorted(done) == ids
    assert any(status == 422 for method, path, status in fake.request_log if path.endswith("/git/refs"))


def test_an_idempotency_key_finds_its_job_while_reads_lag(fake: FakeGitHub, make_store: MakeStore) -> None:
    first, second = make_store(**ALLOW), make_store(**ALLOW, orphan_grace=LAG / 2)
    first.ensure_ready()
    fake.set_faults(read_lag=LAG)
    made = first.create(NewJob(data={"n": 1}, title="t", idempotency_key="k"))
    # The key's refs say the job exists; the issue is not readable yet. Not a crashed creator: no second issue.
    again = second.create(NewJob(data={"n": 1}, title="t", idempotency_key="k"))
    assert again.id == made.id
    fake.set_faults(read_lag=0.0)
    assert list(fake.issues) == [made.id]
