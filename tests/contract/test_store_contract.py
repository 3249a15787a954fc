"""The store contract (octoqueue/stores/base.py), held against every store."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from octoqueue.errors import InvalidTransition, JobNotFound, LeaseLost, StateConflict
from octoqueue.job import NewJob
from octoqueue.states import TRANSITIONS, JobState
from octoqueue.stores.base import Store


def new(data: object = None, **kw: object) -> NewJob:
    return NewJob(data={"n": 0} if data is None else data, title=str(kw.pop("title", "job")), **kw)  # type: ignore[arg-type]


def test_create_get_roundtrip(store: Store) -> None:
    data = {"nested": {"list": [1, 2, {"s": "```json\n{}\n```"}]}, "unicode": "é✓", "n": 1.5}
    job = store.create(new(data, title="hello", labels=("a", "b"), priority=1, max_attempts=3, type="t"))
    got = store.get(job.id)
    assert got.id == job.id
    assert got.data == data
    assert got.title == "hello"
    assert got.state is JobState.PENDING and got.open
    assert set(got.labels) == {"a", "b"}
    assert (got.priority, got.max_attempts, got.type, got.attempt) == (1, 3, "t", 0)


def test_get_missing_raises(store: Store) -> None:
    with pytest.raises(JobNotFound):
        store.get(987654)


def test_ids_increase(store: Store) -> None:
    ids = [store.create(new({"i": i})).id for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_idempotency_key_returns_first_job(store: Store) -> None:
    first = store.create(new({"a": 1}, idempotency_key="k-1"))
    again = store.create(new({"a": 2}, idempotency_key="k-1"))
    other = store.create(new({"a": 3}, idempotency_key="k-2"))
    assert again.id == first.id and again.data == {"a": 1}
    assert other.id != first.id


def test_idempotency_key_race_makes_one_job(store: Store) -> None:
    ids: list[int] = []
    barrier = threading.Barrier(6)

    def make() -> None:
        barrier.wait()
        ids.append(store.create(new({"x": 1}, idempotency_key="race")).id)

    threads = [threading.Thread(target=make) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1


def test_claim_fifo_within_priority_and_priority_first(store: Store) -> None:
    low = store.create(new({"i": "low"}, priority=3))
    a = store.create(new({"i": "a"}))
    b = store.create(new({"i": "b"}))
    crit = store.create(new({"i": "crit"}, priority=0))
    order = [store.claim(worker="w", lease=30)[0].id for _ in range(4)]
    assert order == [crit.id, a.id, b.id, low.id]
    assert store.claim(worker="w", lease=30) == []


def test_claim_sets_lease_attempt_worker(store: Store) -> None:
    job = store.create(new())
    before = store.now()
    (claimed,) = store.claim(worker="w-1", lease=60)
    assert claimed.id == job.id
    assert claimed.state is JobState.PROCESSING and claimed.open
    assert claimed.attempt == 1 and claimed.worker == "w-1"
    assert claimed.lease_expires_at is not None
    assert before + timedelta(seconds=55) <= claimed.lease_expires_at <= store.now() + timedelta(seconds=65)
    assert store.get(job.id).state is JobState.PROCESSING


def test_claim_limit_and_filters(store: Store) -> None:
    plain = store.create(new({"i": 1}))
    gpu = store.create(new({"i": 2}, labels=("gpu",)))
    typed = store.create(new({"i": 3}, type="resize"))
    assert [j.id for j in store.claim(worker="w", lease=30, labels=["gpu"])] == [gpu.id]
    assert [j.id for j in store.claim(worker="w", lease=30, types=["resize"])] == [typed.id]
    assert store.claim(worker="w", lease=30, types=[]) == []
    assert [j.id for j in store.claim(worker="w", lease=30, ids=[plain.id])] == [plain.id]


def test_claim_batch(store: Store) -> None:
    ids = [store.create(new({"i": i})).id for i in range(5)]
    first = store.claim(worker="w", lease=30, limit=3)
    second = store.claim(worker="w", lease=30, limit=3)
    assert [j.id for j in first] == ids[:3]
    assert [j.id for j in second] == ids[3:]


def test_delayed_job_not_claimed_before_run_at(store: Store) -> None:
    job = store.create(new(run_at=store.now() + timedelta(seconds=1.0)))
    assert store.claim(worker="w", lease=30) == []
    time.sleep(1.2)
    assert [j.id for j in store.claim(worker="w", lease=30)] == [job.id]


def test_concurrent_claims_never_share_a_job(store: Store) -> None:
    ids = {store.create(new({"i": i})).id for i in range(30)}
    seen: list[int] = []
    lock = threading.Lock()

    def grab() -> None:
        while True:
            jobs = store.claim(worker=threading.current_thread().name, lease=60)
            if not jobs:
                return
            with lock:
                seen.extend(j.id for j in jobs)

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(ids)


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s, targets in TRANSITIONS.items() for t in sorted(targets)],
)
def test_every_allowed_transition(store: Store, source: JobState, target: JobState) -> None:
    job = _job_in(store, source)
    moved = store.transition(job.id, expected=source, target=target)
    assert moved.state is target
    assert moved.open == target.is_open
    fresh = store.get(job.id)
    assert fresh.state is target and fresh.open == target.is_open


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s in JobState for t in JobState if t not in TRANSITIONS[s]],
)
def test_every_forbidden_transition(store: Store, source: JobState, target: JobState) -> None:
    job = _job_in(store, source)
    with pytest.raises(InvalidTransition):
        store.transition(job.id, expected=source, target=target)
    assert store.get(job.id).state is source


def test_transition_expected_state_mismatch(store: Store) -> None:
    job = store.create(new())
    with pytest.raises(StateConflict):
        store.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED)
    assert store.get(job.id).state is JobState.PENDING


def test_transition_missing_job(store: Store) -> None:
    with pytest.raises(JobNotFound):
        store.transition(424242, expected=None, target=JobState.CANCELLED)


def test_fencing_stale_attempt_is_refused(store: Store) -> None:
    store.create(new(max_attempts=3))
    (first,) = store.claim(worker="w1", lease=0.3)
    time.sleep(0.5)
    recovered = store.recover_expired()
    assert [j.id for j in recovered] == [first.id]
    (second,) = store.claim(worker="w2", lease=60)
    assert second.attempt == first.attempt + 1
    with pytest.raises(LeaseLost):
        store.transition(first.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=first.attempt)
    done = store.transition(
        second.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=second.attempt, result={"ok": 1}
    )
    assert done.state is JobState.COMPLETED and not done.open
    assert store.get(second.id).result == {"ok": 1}


def test_leaving_processing_clears_lease(store: Store) -> None:
    store.create(new(max_attempts=2))
    (job,) = store.claim(worker="w", lease=60)
    back = store.transition(job.id, expected=JobState.PROCESSING, target=JobState.PENDING, attempt=job.attempt)
    assert back.worker is None and back.lease_expires_at is None
    assert store.get(job.id).lease_expires_at is None


def test_transition_changes_are_kept(store: Store) -> None:
    store.create(new(max_attempts=3))
    (job,) = store.claim(worker="w", lease=60)
    run_at = store.now() + timedelta(seconds=30)
    store.transition(
        job.id, expected=JobState.PROCESSING, target=JobState.PENDING, attempt=job.attempt,
        run_at=run_at, last_error="boom",
    )  # fmt: skip
    got = store.get(job.id)
    assert got.last_error == "boom"
    assert got.run_at is not None and abs((got.run_at - run_at).total_seconds()) < 1
    assert store.claim(worker="w", lease=60) == []  # not runnable before run_at


def test_transition_rejects_unknown_changes(store: Store) -> None:
    job = store.create(new())
    with pytest.raises(TypeError):
        store.transition(job.id, expected=None, target=JobState.CANCELLED, title="nope")


def test_recover_expired_returns_to_pending_then_fails_when_out_of_attempts(store: Store) -> None:
    job = store.create(new(max_attempts=2))
    store.claim(worker="w", lease=0.2)
    time.sleep(0.4)
    (back,) = store.recover_expired()
    assert back.state is JobState.PENDING and back.attempt == 1
    assert "expired" in (back.last_error or "")
    store.claim(worker="w", lease=0.2)
    time.sleep(0.4)
    (dead,) = store.recover_expired()
    assert dead.state is JobState.FAILED and not dead.open
    assert store.get(job.id).state is JobState.FAILED


def test_recover_expired_leaves_live_leases(store: Store) -> None:
    store.create(new())
    store.claim(worker="w", lease=60)
    assert store.recover_expired() == []


def test_list_filters_and_paging(store: Store) -> None:
    ids = [store.create(new({"i": i}, labels=("even",) if i % 2 == 0 else ())).id for i in range(7)]
    (claimed,) = store.claim(worker="w", lease=60)
    store.transition(claimed.id, expected=JobState.PROCESSING, target=JobState.COMPLETED)
    everything = list(store.iter_jobs(limit=3))
    assert [j.id for j in everything] == ids
    page = store.list(limit=3)
    assert len(page.jobs) == 3 and page.cursor is not None
    page2 = store.list(limit=3, cursor=page.cursor)
    assert [j.id for j in page2.jobs] == ids[3:6]
    last = store.list(limit=3, cursor=page2.cursor)
    assert [j.id for j in last.jobs] == ids[6:] and last.cursor is None
    assert [j.id for j in store.list(states=[JobState.COMPLETED]).jobs] == [ids[0]]
    assert [j.id for j in store.list(labels=["even"]).jobs] == ids[0::2]
    assert [j.id for j in store.list(open=False).jobs] == [ids[0]]
    assert len(store.list(states=[JobState.PENDING], open=True).jobs) == 6
    assert store.list(states=[]).jobs == []


def test_count(store: Store) -> None:
    for i in range(4):
        store.create(new({"i": i}))
    (job,) = store.claim(worker="w", lease=60)
    store.transition(job.id, expected=JobState.PROCESSING, target=JobState.FAILED)
    store.claim(worker="w", lease=60)
    counts = store.count()
    assert counts[JobState.PENDING] == 2
    assert counts[JobState.PROCESSING] == 1
    assert counts[JobState.FAILED] == 1
    assert counts[JobState.COMPLETED] == 0
    assert store.count([JobState.PENDING]) == {JobState.PENDING: 2}


def test_comments(store: Store) -> None:
    job = store.create(new())
    first = store.comment(job.id, "first")
    store.comment(job.id, "second ```code```")
    got = store.comments(job.id)
    assert [c.body for c in got] == ["first", "second ```code```"]
    assert got[0].id == first.id and all(c.job_id == job.id for c in got)
    assert store.get(job.id).comments == 2
    with pytest.raises(JobNotFound):
        store.comment(777777, "nobody")


def test_purge_finished_jobs_only(store: Store) -> None:
    keep = store.create(new({"keep": True}))
    done = store.create(new({"done": True}))
    store.transition(done.id, expected=JobState.PENDING, target=JobState.COMPLETED)
    removed = store.purge(states=[JobState.COMPLETED], older_than=store.now() + timedelta(seconds=5))
    assert removed == 1
    remaining = [j.id for j in store.iter_jobs() if j.state is not None]
    assert keep.id in remaining and done.id not in remaining
    assert store.purge(states=[JobState.COMPLETED], older_than=store.now() - timedelta(days=1)) == 0


def test_settings_roundtrip(store: Store) -> None:
    assert store.get_setting("job_schema") is None
    schema = {"type": "object", "required": ["x"]}
    store.set_setting("job_schema", schema)
    assert store.get_setting("job_schema") == schema
    store.set_setting("job_schema", {"type": "object"})
    assert store.get_setting("job_schema") == {"type": "object"}
    store.set_setting("job_schema", None)
    assert store.get_setting("job_schema") is None


def test_settings_are_not_jobs(store: Store) -> None:
    store.set_setting("queues", {"a": {"max_retries": 3}})
    assert list(store.iter_jobs()) == []
    assert sum(store.count().values()) == 0


def _job_in(store: Store, state: JobState):  # type: ignore[no-untyped-def]
    job = store.create(new({"for": state.value}, max_attempts=5))
    if state is JobState.PENDING:
        return job
    (claimed,) = store.claim(worker="w", lease=60, ids=[job.id])
    if state is JobState.PROCESSING:
        return claimed
    return store.transition(job.id, expected=JobState.PROCESSING, target=state)
