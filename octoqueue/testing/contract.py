"""The store contract as a kit: the tests every store passes, runnable against any store (needs pytest).

Two ways to run it against a store:

* **Subclass** :class:`StoreKit` in a test module (its name starting with ``Test``) and say how to make a fresh,
  empty store, by a URL or by a method::

      from octoqueue.testing.contract import StoreKit

      class TestMyStore(StoreKit):
          store_url = "mystore://localhost/{unique}"      # opened with octoqueue.stores.open_store(url, clock=...)

      class TestMyOtherStore(StoreKit):
          def make_store(self, clock, tmp_path, request):
              return MyStore(tmp_path / "jobs", clock=clock)

* **As a pytest plugin**, against a store URL, with nothing to write::

      pytest -p octoqueue.testing.contract --octoqueue-store='sqlite:///{tmp_path}/jobs.db'

  Then pytest runs the kit alone (not the tests it would otherwise collect).

In a URL, ``{tmp_path}`` is the test's own temporary folder and ``{unique}`` a fresh hex string (for a database
name, a key prefix, ...): every test gets a store of its own, empty. The store must take ``clock=``
(:class:`~octoqueue.testing.clock.ManualClock`) and read the time only through it: the kit moves that clock to
expire leases and reach delays, so it never sleeps. The store is closed after each test.

:class:`StoreContract` holds the store's verbs (octoqueue/stores/base.py) and :class:`QueueContract` the Queue API on
top of them; :class:`StoreKit` is both. In the spirit of huey's ``StorageTests``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

from octoqueue.errors import (
    InvalidJobData,
    InvalidLabel,
    InvalidTransition,
    JobNotFound,
    JobTooLarge,
    LeaseLost,
    StateConflict,
)
from octoqueue.history import Outcome
from octoqueue.job import Comment, Job, NewJob
from octoqueue.mirror import job_fields
from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy
from octoqueue.states import TRANSITIONS, JobState, Priority
from octoqueue.stores import open_store
from octoqueue.stores.base import Move, Store
from octoqueue.testing.clock import ManualClock

#: What makes a fresh, empty store for one test: (the test's clock, its tmp_path, its request) -> store.
StoreFactory = Callable[[ManualClock, Path, pytest.FixtureRequest], Store]


def new(data: object = None, **kw: object) -> NewJob:
    """A NewJob for the kit's tests: data ``{"n": 0}`` and title "job" unless given."""
    return NewJob(data={"n": 0} if data is None else data, title=str(kw.pop("title", "job")), **kw)  # type: ignore[arg-type]


def store_from_url(url: str, clock: ManualClock, tmp_path: Path) -> Store:
    """Open ``url`` with ``{tmp_path}`` and ``{unique}`` filled in, reading time from ``clock``."""
    filled = url.replace("{tmp_path}", str(tmp_path)).replace("{unique}", uuid.uuid4().hex[:12])
    return open_store(filled, clock=clock)


class _KitBase:
    """The fixtures: ``clock`` (a ManualClock), ``store_factory`` and ``store`` (fresh and empty, closed after)."""

    #: The URL of the store under test (``{tmp_path}``/``{unique}`` filled in); or override :meth:`make_store`.
    store_url: ClassVar[str | None] = None

    def make_store(self, clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
        """A fresh, empty store reading time from ``clock``; by default opened from :attr:`store_url`."""
        if self.store_url is None:
            raise TypeError(f"{type(self).__name__} names no store: set store_url or override make_store")
        return store_from_url(self.store_url, clock, tmp_path)

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """How ``store`` is made: :meth:`make_store`. A subclass may override this fixture (with params, say)."""
        return self.make_store

    @pytest.fixture
    def store(
        self, store_factory: StoreFactory, clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest
    ) -> Iterator[Store]:
        made = store_factory(clock, tmp_path, request)
        try:
            yield made
        finally:
            made.close()


def job_in(store: Store, state: JobState) -> Job:
    """A job of its own moved to ``state`` the usual way."""
    job = store.create(new({"for": state.value}, max_attempts=5))
    if state is JobState.PENDING:
        return job
    (taken,) = store.claim(worker="w", lease=60, ids=[job.id])
    if state is JobState.PROCESSING:
        return taken
    return store.transition(job.id, expected=JobState.PROCESSING, target=state)


def _adding(name: str) -> Callable[[Any], Any]:
    """A setting update that adds the key ``name`` to the object stored (an empty one when there is none)."""
    return lambda current: {**(current or {}), name: {}}


def _in_threads(count: int, work: Callable[[], None]) -> None:
    """Run ``work`` in ``count`` threads released together; re-raise the first error one of them met."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            work()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class StoreContract(_KitBase):
    """The store verbs of :class:`~octoqueue.stores.base.Store`, held against one store."""

    # -- create and read ------------------------------------------------------------------------------------------
    def test_create_get_roundtrip(self, store: Store) -> None:
        data = {"nested": {"list": [1, 2, {"s": "```json\n{}\n```"}]}, "unicode": "é✓", "n": 1.5}
        job = store.create(new(data, title="hello", labels=("a", "b"), priority=1, max_attempts=3, type="t"))
        got = store.get(job.id)
        assert got.id == job.id
        assert got.data == data
        assert got.title == "hello"
        assert got.state is JobState.PENDING and got.open
        assert set(got.labels) == {"a", "b"}
        assert (got.priority, got.max_attempts, got.type, got.attempt) == (1, 3, "t", 0)

    def test_recently_changed_lists_the_last_changed_first(self, store: Store, clock: ManualClock) -> None:
        ids = [store.create(new({"n": n}, title=f"job {n}")).id for n in range(5)]
        for job_id in (ids[3], ids[0], ids[1]):
            clock.advance(2)
            store.transition(job_id, expected=JobState.PENDING, target=JobState.FAILED, last_error=f"boom {job_id}")
        clock.advance(2)
        store.transition(ids[2], expected=JobState.PENDING, target=JobState.COMPLETED)
        failed = store.recently_changed([JobState.FAILED])
        records = [store.get(i) for i in (ids[0], ids[1], ids[3])]
        expected = sorted(records, key=lambda j: (j.updated_at, j.id), reverse=True)
        assert [job.id for job in failed] == [job.id for job in expected]
        assert all(job.last_error == f"boom {job.id}" for job in failed)
        assert [job.id for job in store.recently_changed([JobState.FAILED], limit=1)] == [expected[0].id]
        finished = store.recently_changed([JobState.FAILED, JobState.COMPLETED], limit=10)
        assert {job.id for job in finished} == {ids[0], ids[1], ids[2], ids[3]}
        assert store.recently_changed([]) == []
        assert [job.id for job in store.recently_changed([JobState.PENDING])] == [ids[4]]

    def test_get_missing_raises(self, store: Store) -> None:
        with pytest.raises(JobNotFound):
            store.get(987654)

    def test_ids_increase(self, store: Store) -> None:
        ids = [store.create(new({"i": i})).id for i in range(3)]
        assert ids == sorted(ids) and len(set(ids)) == 3

    def test_idempotency_key_returns_first_job(self, store: Store) -> None:
        first = store.create(new({"a": 1}, idempotency_key="k-1"))
        again = store.create(new({"a": 2}, idempotency_key="k-1"))
        other = store.create(new({"a": 3}, idempotency_key="k-2"))
        assert again.id == first.id and again.data == {"a": 1}
        assert other.id != first.id

    def test_idempotency_key_race_makes_one_job(self, store: Store) -> None:
        ids: list[int] = []
        _in_threads(6, lambda: ids.append(store.create(new({"x": 1}, idempotency_key="race")).id))
        assert len(ids) == 6 and len(set(ids)) == 1

    # -- batches ---------------------------------------------------------------------------------------------------
    def test_create_many_in_order_with_keys(self, store: Store) -> None:
        before = store.create(new({"a": 0}, idempotency_key="known"))
        made = store.create_many(
            [new({"a": 1}), new({"a": 2}, idempotency_key="known"), new({"a": 3}, idempotency_key="fresh")]
        )
        assert [j.data for j in made] == [{"a": 1}, {"a": 0}, {"a": 3}]
        assert made[1].id == before.id
        assert made[0].id < made[2].id and before.id not in (made[0].id, made[2].id)
        assert {j.id for j in store.iter_jobs()} == {before.id, made[0].id, made[2].id}
        assert store.create_many([]) == []

    def test_transition_many_applies_each_move_on_its_own_terms(self, store: Store) -> None:
        store.create_many([new({"i": i}, max_attempts=3) for i in range(3)])
        first, second, third = store.claim(worker="w", lease=60, limit=3)
        results = store.transition_many(
            [
                Move(first.id, JobState.PROCESSING, JobState.COMPLETED, first.attempt, {"result": {"ok": 1}}),
                Move(second.id, JobState.PROCESSING, JobState.COMPLETED, second.attempt + 1),  # stale attempt
                Move(424242, None, JobState.CANCELLED),  # no such job
                Move(third.id, JobState.PENDING, JobState.COMPLETED),  # wrong expected state
                Move(third.id, JobState.PROCESSING, JobState.PENDING, third.attempt, {"last_error": "later"}),
            ]
        )
        done, stale, missing, conflict, back = results
        assert isinstance(done, Job) and done.state is JobState.COMPLETED and done.result == {"ok": 1}
        assert isinstance(stale, LeaseLost)
        assert isinstance(missing, JobNotFound)
        assert isinstance(conflict, StateConflict)
        assert isinstance(back, Job) and back.state is JobState.PENDING and back.last_error == "later"
        assert store.get(second.id).state is JobState.PROCESSING
        assert store.get(first.id).state is JobState.COMPLETED and store.get(third.id).state is JobState.PENDING
        assert store.transition_many([]) == []

    def test_transition_and_claim_moves_then_claims(self, store: Store) -> None:
        """A worker finishing jobs and taking the next: each move on its own terms, then a claim as claim()'s."""
        store.create_many([new({"i": i}) for i in range(2)])
        gpu = store.create(new({"i": "gpu"}, labels=("gpu",)))
        plain = store.create(new({"i": "plain"}))
        first, second = store.claim(worker="w", lease=60, limit=2)
        moved, taken = store.transition_and_claim(
            [
                Move(first.id, JobState.PROCESSING, JobState.COMPLETED, first.attempt, {"result": {"ok": 1}}),
                Move(second.id, JobState.PROCESSING, JobState.COMPLETED, second.attempt + 1),  # stale attempt
            ],
            worker="w-2",
            lease=60,
            limit=3,
            labels=["GPU"],
        )
        done, stale = moved
        assert isinstance(done, Job) and done.state is JobState.COMPLETED and done.result == {"ok": 1}
        assert isinstance(stale, LeaseLost) and store.get(second.id).state is JobState.PROCESSING
        assert [(j.id, j.state, j.worker, j.attempt) for j in taken] == [(gpu.id, JobState.PROCESSING, "w-2", 1)]
        moved, taken = store.transition_and_claim([], worker="w-3", lease=60, limit=2)
        assert moved == [] and [j.id for j in taken] == [plain.id]
        assert store.transition_and_claim([], worker="w-3", lease=60, limit=2) == ([], [])

    # -- claims ----------------------------------------------------------------------------------------------------
    def test_claim_fifo_within_priority_and_priority_first(self, store: Store) -> None:
        low = store.create(new({"i": "low"}, priority=3))
        a = store.create(new({"i": "a"}))
        b = store.create(new({"i": "b"}))
        crit = store.create(new({"i": "crit"}, priority=0))
        order = [store.claim(worker="w", lease=30)[0].id for _ in range(4)]
        assert order == [crit.id, a.id, b.id, low.id]
        assert store.claim(worker="w", lease=30) == []

    def test_claim_sets_lease_attempt_worker(self, store: Store, clock: ManualClock) -> None:
        job = store.create(new())
        (taken,) = store.claim(worker="w-1", lease=60)
        assert taken.id == job.id
        assert taken.state is JobState.PROCESSING and taken.open
        assert taken.attempt == 1 and taken.worker == "w-1"
        assert taken.lease_expires_at is not None
        assert abs((taken.lease_expires_at - (clock() + timedelta(seconds=60))).total_seconds()) < 1
        assert store.get(job.id).state is JobState.PROCESSING

    def test_claim_stamps_started_at_which_outlives_the_attempt(self, store: Store, clock: ManualClock) -> None:
        """``started_at`` is the claim's time on the store's clock; no transition changes it, the next claim does."""
        job = store.create(new(max_attempts=3))
        assert job.started_at is None
        (first,) = store.claim(worker="w-1", lease=60)
        assert first.started_at is not None and abs((first.started_at - clock()).total_seconds()) < 0.001
        clock.advance(7)
        store.transition(job.id, expected=JobState.PROCESSING, target=JobState.PROCESSING, attempt=1)
        back = store.transition(job.id, expected=JobState.PROCESSING, target=JobState.PENDING, attempt=1)
        assert back.started_at == store.get(job.id).started_at
        assert back.started_at is not None and abs((back.started_at - first.started_at).total_seconds()) < 0.001
        (second,) = store.claim(worker="w-2", lease=60)
        assert second.started_at is not None and abs((second.started_at - clock()).total_seconds()) < 0.001
        done = store.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, worker="w-2")
        assert done.worker == "w-2" and done.started_at == second.started_at
        assert store.get(job.id).started_at == second.started_at

    def test_claim_limit_and_filters(self, store: Store) -> None:
        plain = store.create(new({"i": 1}))
        gpu = store.create(new({"i": 2}, labels=("gpu",)))
        typed = store.create(new({"i": 3}, type="resize"))
        assert [j.id for j in store.claim(worker="w", lease=30, labels=["gpu"])] == [gpu.id]
        assert [j.id for j in store.claim(worker="w", lease=30, types=["resize"])] == [typed.id]
        assert store.claim(worker="w", lease=30, types=[]) == []
        assert store.claim(worker="w", lease=30, ids=[]) == []
        assert [j.id for j in store.claim(worker="w", lease=30, ids=[plain.id])] == [plain.id]

    def test_claim_excludes_labels_and_types(self, store: Store) -> None:
        """Paused labels and types at a worker's limit are skipped, whatever else the claim asks for."""
        gpu = store.create(new(title="gpu", labels=("GPU",), type="render"))
        mail = store.create(new(title="mail", type="email"))
        plain = store.create(new(title="plain"))
        both = store.create(new(title="both", labels=("cpu",), type="render"))
        taken = store.claim(worker="w", lease=60, limit=10, exclude_labels=["gpu"], exclude_types=["email"])
        assert [j.id for j in taken] == [plain.id, both.id]
        assert store.claim(worker="w", lease=60, limit=10, types=["render"], exclude_labels=["Gpu"]) == []
        assert store.claim(worker="w", lease=60, ids=[gpu.id, mail.id], exclude_types=["render", "email"]) == []
        assert store.claim(worker="w", lease=60, labels=["gpu"], exclude_types=["email"])[0].id == gpu.id
        assert [j.id for j in store.claim(worker="w", lease=60, exclude_labels=["x"])] == [mail.id]

    def test_claim_labels_ignore_case(self, store: Store) -> None:
        """Label names compare as GitHub compares them (octoqueue/states.py): ``GPU`` is the label ``gpu``."""
        gpu = store.create(new({"i": 1}, labels=("gpu",)))
        assert [j.id for j in store.claim(worker="w", lease=30, labels=["GPU"])] == [gpu.id]

    def test_list_labels_ignore_case(self, store: Store) -> None:
        big = store.create(new({"i": 1}, labels=("Big",)))
        store.create(new({"i": 2}))
        assert [j.id for j in store.list_jobs(labels=["big"]).jobs] == [big.id]

    def test_claim_batch(self, store: Store) -> None:
        ids = [store.create(new({"i": i})).id for i in range(5)]
        first = store.claim(worker="w", lease=30, limit=3)
        second = store.claim(worker="w", lease=30, limit=3)
        assert [j.id for j in first] == ids[:3]
        assert [j.id for j in second] == ids[3:]

    def test_delayed_job_not_claimed_before_run_at(self, store: Store, clock: ManualClock) -> None:
        job = store.create(new(run_at=clock() + timedelta(seconds=10)))
        assert store.claim(worker="w", lease=30) == []
        clock.advance(9)
        assert store.claim(worker="w", lease=30) == []
        clock.advance(1)
        assert [j.id for j in store.claim(worker="w", lease=30)] == [job.id]

    def test_concurrent_claims_never_share_a_job(self, store: Store) -> None:
        ids = {store.create(new({"i": i})).id for i in range(30)}
        seen: list[int] = []
        lock = threading.Lock()

        def grab() -> None:
            while jobs := store.claim(worker=threading.current_thread().name, lease=60):
                with lock:
                    seen.extend(j.id for j in jobs)

        _in_threads(6, grab)
        assert sorted(seen) == sorted(ids)

    # -- transitions -----------------------------------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("source", "target"),
        [(s, t) for s, targets in TRANSITIONS.items() for t in sorted(targets)],
    )
    def test_every_allowed_transition(self, store: Store, source: JobState, target: JobState) -> None:
        job = job_in(store, source)
        moved = store.transition(job.id, expected=source, target=target)
        assert moved.state is target
        assert moved.open == target.is_open
        fresh = store.get(job.id)
        assert fresh.state is target and fresh.open == target.is_open

    @pytest.mark.parametrize(
        ("source", "target"),
        [(s, t) for s in JobState for t in JobState if t not in TRANSITIONS[s]],
    )
    def test_every_forbidden_transition(self, store: Store, source: JobState, target: JobState) -> None:
        job = job_in(store, source)
        with pytest.raises(InvalidTransition):
            store.transition(job.id, expected=source, target=target)
        assert store.get(job.id).state is source

    def test_transition_expected_state_mismatch(self, store: Store) -> None:
        job = store.create(new())
        with pytest.raises(StateConflict):
            store.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED)
        assert store.get(job.id).state is JobState.PENDING

    def test_transition_missing_job(self, store: Store) -> None:
        with pytest.raises(JobNotFound):
            store.transition(424242, expected=None, target=JobState.CANCELLED)

    def test_fencing_stale_attempt_is_refused(self, store: Store, clock: ManualClock) -> None:
        store.create(new(max_attempts=3))
        (first,) = store.claim(worker="w1", lease=30)
        clock.advance(31)
        recovered = store.recover_expired()
        assert [j.id for j in recovered] == [first.id]
        (second,) = store.claim(worker="w2", lease=60)
        assert second.attempt == first.attempt + 1
        with pytest.raises(LeaseLost):
            store.transition(first.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=first.attempt)
        done = store.transition(
            second.id,
            expected=JobState.PROCESSING,
            target=JobState.COMPLETED,
            attempt=second.attempt,
            result={"ok": 1},
        )
        assert done.state is JobState.COMPLETED and not done.open
        assert store.get(second.id).result == {"ok": 1}

    def test_leaving_processing_clears_lease(self, store: Store) -> None:
        store.create(new(max_attempts=2))
        (job,) = store.claim(worker="w", lease=60)
        back = store.transition(job.id, expected=JobState.PROCESSING, target=JobState.PENDING, attempt=job.attempt)
        assert back.worker is None and back.lease_expires_at is None
        assert store.get(job.id).lease_expires_at is None

    def test_transition_changes_are_kept(self, store: Store, clock: ManualClock) -> None:
        store.create(new(max_attempts=3))
        (job,) = store.claim(worker="w", lease=60)
        run_at = clock() + timedelta(seconds=30)
        store.transition(
            job.id,
            expected=JobState.PROCESSING,
            target=JobState.PENDING,
            attempt=job.attempt,
            run_at=run_at,
            last_error="boom",
        )
        got = store.get(job.id)
        assert got.last_error == "boom"
        assert got.run_at is not None and abs((got.run_at - run_at).total_seconds()) < 1
        assert store.claim(worker="w", lease=60) == []  # not runnable before run_at
        clock.advance(31)
        assert [j.id for j in store.claim(worker="w", lease=60)] == [job.id]

    def test_transition_rejects_unknown_changes(self, store: Store) -> None:
        job = store.create(new())
        with pytest.raises(TypeError):
            store.transition(job.id, expected=None, target=JobState.CANCELLED, title="nope")
        assert store.get(job.id).state is JobState.PENDING

    # -- expired leases --------------------------------------------------------------------------------------------
    def test_recover_expired_returns_to_pending_then_fails_when_out_of_attempts(
        self, store: Store, clock: ManualClock
    ) -> None:
        job = store.create(new(max_attempts=2))
        store.claim(worker="w", lease=20)
        clock.advance(19)
        assert store.recover_expired() == []
        clock.advance(2)
        (back,) = store.recover_expired()
        assert back.state is JobState.PENDING and back.attempt == 1
        assert "expired" in (back.last_error or "")
        store.claim(worker="w", lease=20)
        clock.advance(21)
        (dead,) = store.recover_expired()
        assert dead.state is JobState.FAILED and not dead.open
        assert store.get(job.id).state is JobState.FAILED
        assert store.recover_expired() == []

    def test_recover_expired_leaves_live_leases(self, store: Store, clock: ManualClock) -> None:
        store.create(new())
        store.claim(worker="w", lease=60)
        clock.advance(59)
        assert store.recover_expired() == []

    # -- listing, counting, purging, comments ----------------------------------------------------------------------
    def test_list_filters_and_paging(self, store: Store) -> None:
        ids = [store.create(new({"i": i}, labels=("even",) if i % 2 == 0 else ())).id for i in range(7)]
        (taken,) = store.claim(worker="w", lease=60)
        store.transition(taken.id, expected=JobState.PROCESSING, target=JobState.COMPLETED)
        everything = list(store.iter_jobs(limit=3))
        assert [j.id for j in everything] == ids
        page = store.list_jobs(limit=3)
        assert len(page.jobs) == 3 and page.cursor is not None
        page2 = store.list_jobs(limit=3, cursor=page.cursor)
        assert [j.id for j in page2.jobs] == ids[3:6]
        last = store.list_jobs(limit=3, cursor=page2.cursor)
        assert [j.id for j in last.jobs] == ids[6:] and last.cursor is None
        assert [j.id for j in store.list_jobs(states=[JobState.COMPLETED]).jobs] == [ids[0]]
        assert [j.id for j in store.list_jobs(labels=["even"]).jobs] == ids[0::2]
        assert [j.id for j in store.list_jobs(open=False).jobs] == [ids[0]]
        assert len(store.list_jobs(states=[JobState.PENDING], open=True).jobs) == 6
        assert store.list_jobs(states=[]).jobs == []

    def test_count(self, store: Store) -> None:
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

    def test_comments(self, store: Store) -> None:
        job = store.create(new())
        first = store.comment(job.id, "first")
        store.comment(job.id, "second ```code```")
        got = store.comments(job.id)
        assert [c.body for c in got] == ["first", "second ```code```"]
        assert got[0].id == first.id and all(c.job_id == job.id for c in got)
        assert store.get(job.id).comments == 2
        with pytest.raises(JobNotFound):
            store.comment(777777, "nobody")

    def test_import_job_keeps_its_number_fields_times_and_comments(self, store: Store, clock: ManualClock) -> None:
        made = clock() - timedelta(days=3, microseconds=250)
        job = Job(
            id=41,
            title="imported",
            data={"n": [1, "two"], "text": "```"},
            state=JobState.FAILED,
            labels=("queue:mail", "Urgent"),
            open=False,
            type="email",
            priority=Priority.HIGH,
            attempt=3,
            attempt_base=1,
            max_attempts=2,
            result={"partial": True},
            last_error="boom",
            idempotency_key="imported-41",
            timeout=30.0,
            created_at=made,
            updated_at=made + timedelta(hours=1),
        )
        notes = [
            Comment(id=7, job_id=41, body="first", author="octocat", created_at=made + timedelta(minutes=1)),
            Comment(id=8, job_id=41, body="second\n/requeue", created_at=made + timedelta(minutes=2)),
        ]
        stored = store.import_job(job, notes)
        for got in (stored, store.get(41)):
            assert job_fields(got) == job_fields(job)
            assert got.comments == 2
        assert [(c.body, c.author, c.created_at, c.job_id) for c in store.comments(41)] == [
            (c.body, c.author, c.created_at, 41) for c in notes
        ]
        assert [j.id for j in store.iter_jobs(states=[JobState.FAILED])] == [41]
        assert store.count([JobState.FAILED, JobState.PENDING]) == {JobState.FAILED: 1, JobState.PENDING: 0}
        assert store.create(new({"after": True})).id > 41

    def test_import_job_replaces_a_job_and_its_state_indexes_follow(self, store: Store, clock: ManualClock) -> None:
        job = store.create(new({"a": 1}, labels=("x",)))
        store.comment(job.id, "made here")
        done = job.model_copy(
            update={
                "state": JobState.COMPLETED,
                "open": False,
                "attempt": 1,
                "result": {"ok": True},
                "updated_at": clock() + timedelta(seconds=5),
            }
        )
        copied = Comment(id=1, job_id=job.id, body="copied", author="someone", created_at=clock())
        assert store.import_job(done, [copied]).comments == 2
        got = store.get(job.id)
        assert job_fields(got) == job_fields(done)
        assert [c.body for c in store.comments(job.id)] == ["made here", "copied"]
        assert got.comments == 2
        assert store.claim(worker="w", lease=30) == []
        assert store.count([JobState.PENDING, JobState.COMPLETED]) == {JobState.PENDING: 0, JobState.COMPLETED: 1}
        again = done.model_copy(update={"state": JobState.PENDING, "open": True, "result": None})
        store.import_job(again)
        assert [j.id for j in store.claim(worker="w", lease=30, labels=["x"])] == [job.id]

    def test_purge_finished_jobs_only(self, store: Store, clock: ManualClock) -> None:
        keep = store.create(new({"keep": True}))
        done = store.create(new({"done": True}))
        store.transition(done.id, expected=JobState.PENDING, target=JobState.COMPLETED)
        assert store.purge(states=[JobState.COMPLETED], older_than=clock() - timedelta(days=1)) == 0
        removed = store.purge(states=[JobState.COMPLETED], older_than=clock() + timedelta(seconds=5))
        assert removed == 1
        remaining = [j.id for j in store.iter_jobs() if j.state is not None]
        assert keep.id in remaining and done.id not in remaining

    def test_ids_are_never_given_again_after_a_purge(self, store: Store, clock: ManualClock) -> None:
        """Purging the newest jobs frees no id: the next job's id is above every id given before."""
        jobs = [store.create(new({"n": n})) for n in range(3)]
        for job in jobs[1:]:
            store.transition(job.id, expected=JobState.PENDING, target=JobState.COMPLETED)
        assert store.purge(states=[JobState.COMPLETED], older_than=clock() + timedelta(seconds=5)) == 2
        after = store.create(new({"n": 3}))
        assert after.id > max(job.id for job in jobs)
        store.transition(after.id, expected=JobState.PENDING, target=JobState.CANCELLED)
        assert store.purge(states=[JobState.CANCELLED], older_than=clock() + timedelta(seconds=5)) == 1
        assert store.create(new({"n": 4})).id > after.id

    # -- settings --------------------------------------------------------------------------------------------------
    def test_settings_roundtrip(self, store: Store) -> None:
        assert store.get_setting("job_schema") is None
        schema = {"type": "object", "required": ["x"]}
        store.set_setting("job_schema", schema)
        assert store.get_setting("job_schema") == schema
        store.set_setting("job_schema", {"type": "object"})
        assert store.get_setting("job_schema") == {"type": "object"}
        store.set_setting("job_schema", None)
        assert store.get_setting("job_schema") is None

    def test_settings_are_not_jobs(self, store: Store) -> None:
        store.set_setting("queues", {"a": {"max_retries": 3}})
        assert list(store.iter_jobs()) == []
        assert sum(store.count().values()) == 0

    def test_update_setting_sees_the_current_value(self, store: Store) -> None:
        seen: list[Any] = []

        def add(key: str) -> Callable[[Any], Any]:
            def update(current: Any) -> Any:
                seen.append(current)
                return {**(current or {}), key: True}

            return update

        assert store.update_setting("queues", add("a")) == {"a": True}
        assert store.update_setting("queues", add("b")) == {"a": True, "b": True}
        assert seen == [None, {"a": True}]
        assert store.get_setting("queues") == {"a": True, "b": True}
        assert store.update_setting("queues", lambda _current: None) is None
        assert store.get_setting("queues") is None

    def test_update_setting_refuses_what_is_not_json_and_keeps_the_value(self, store: Store) -> None:
        store.set_setting("queues", {"a": 1})
        with pytest.raises(InvalidJobData):
            store.update_setting("queues", lambda _current: {"bad": {1, 2}})
        with pytest.raises(InvalidJobData):
            store.set_setting("queues", {"nan": float("nan")})
        assert store.get_setting("queues") == {"a": 1}

    def test_concurrent_setting_updates_lose_nothing(self, store: Store) -> None:
        names = iter(range(1000))
        lock = threading.Lock()

        def define() -> None:
            for _ in range(3):
                with lock:
                    name = f"q{next(names)}"
                store.update_setting("queues", _adding(name))

        _in_threads(4, define)
        assert set(store.get_setting("queues")) == {f"q{i}" for i in range(12)}


class QueueContract(_KitBase):
    """The Queue API (the original Octoqueue's methods and octoqueue's additions) on one store."""

    @pytest.fixture
    def queue(self, store: Store) -> Queue:
        return Queue(store, retry=RetryPolicy(initial=20, jitter=0), max_attempts=1, lease=30)

    def test_original_api_roundtrip(self, queue: Queue) -> None:
        job_id = queue.enqueue({"data": "example"})
        assert isinstance(job_id, int)
        assert queue.get_job_status(job_id) == "pending"
        assert queue.count_open() == 1
        got = queue.dequeue()
        assert got == (job_id, {"data": "example"})
        assert queue.get_job_status(job_id) == "processing"
        jobs = queue.get_jobs(labels=["processing"], state="open")
        assert [(j[0], j[2]) for j in jobs] == [(job_id, {"data": "example"})]
        queue.complete(job_id)
        assert queue.get_job_status(job_id) == "completed"
        assert queue.count_open() == 0
        assert queue.get_jobs(labels=["completed"], state="closed")[0][0] == job_id
        assert queue.get_jobs(labels=["completed"], state="open") == []
        assert queue.dequeue() is None

    def test_default_title_and_labels(self, queue: Queue) -> None:
        job = queue.get(queue.enqueue({"a": 1}, additional_labels=["urgent", "urgent", "gpu"]))
        assert job.title.startswith("Job ")
        assert list(job.labels) == ["urgent", "gpu"]
        assert queue.get_jobs(labels=["pending", "gpu"])[0][0] == job.id

    def test_status_label_cannot_be_additional(self, queue: Queue) -> None:
        with pytest.raises(ValueError):
            queue.enqueue({"a": 1}, additional_labels=["completed"])

    @pytest.mark.parametrize(
        "label",
        [
            "Completed",
            "PENDING",
            "archived",
            "Archived",
            "octoqueue-settings",
            "OctoQueue-Settings",
            "requeue",
            "queue:work",
            "Queue:Work",
            "  ",
            "",
            " gpu",
            "a" * 51,
            "a,b",
        ],
    )
    def test_reserved_and_blank_labels_are_refused_alike(self, queue: Queue, label: str) -> None:
        """Issue 8 item 4: the same refusal on every store, and nothing is created."""
        with pytest.raises(InvalidLabel) as refused:
            queue.enqueue({"a": 1}, additional_labels=["gpu", label])
        assert isinstance(refused.value, ValueError) and isinstance(refused.value, InvalidJobData)
        assert queue.count_open() == 0

    def test_labels_that_differ_in_case_only_are_one_label(self, queue: Queue) -> None:
        job = queue.get(queue.enqueue({"a": 1}, additional_labels=["GPU", "gpu", "big"]))
        assert list(job.labels) == ["GPU", "big"]

    def test_a_job_joins_a_named_queue_by_its_queue_label(self, queue: Queue) -> None:
        job = queue.enqueue_job({"a": 1}, additional_labels=["gpu"], queue="work")
        assert list(job.labels) == ["queue:work", "gpu"]
        taken = queue.claim(labels=["queue:work"])
        assert taken is not None and taken.id == job.id

    def test_get_job_status_missing_is_none(self, queue: Queue) -> None:
        assert queue.get_job_status(999_999) is None
        with pytest.raises(JobNotFound):
            queue.get(999_999)

    def test_priorities_by_name_and_number(self, queue: Queue) -> None:
        bulk = queue.enqueue({"p": "bulk"}, priority="bulk")
        high = queue.enqueue({"p": "high"}, priority=Priority.HIGH)
        crit = queue.enqueue({"p": "critical"}, priority=0)
        assert [queue.claim().id for _ in range(3)] == [crit, high, bulk]  # type: ignore[union-attr]
        with pytest.raises(ValueError):
            queue.enqueue({}, priority="urgent-ish")

    def test_delay(self, queue: Queue, clock: ManualClock) -> None:
        job_id = queue.enqueue({"later": True}, delay=80)
        assert queue.dequeue() is None
        clock.advance(79)
        assert queue.dequeue() is None
        clock.advance(1)
        assert queue.dequeue() == (job_id, {"later": True})

    def test_dequeue_wait_is_woken_by_enqueue(self, queue: Queue) -> None:
        """A waiting dequeue is woken by an enqueue through the same Queue (this one waits on real time)."""
        timer = threading.Timer(0.1, lambda: queue.enqueue({"late": 1}))
        timer.start()
        started = time.monotonic()
        got = queue.dequeue(wait_sec=5)
        assert got is not None and got[1] == {"late": 1}
        assert time.monotonic() - started < 3
        timer.join()

    def test_complete_with_result_posts_comment(self, queue: Queue) -> None:
        queue.enqueue({"a": 1})
        job = queue.claim()
        assert job is not None
        done = queue.complete(job, result={"answer": 42})
        assert done.state is JobState.COMPLETED and not done.open
        assert queue.get(job.id).result == {"answer": 42}
        (note,) = queue.comments(job.id)
        assert '"answer": 42' in note.body

    def test_complete_without_result_posts_nothing(self, queue: Queue) -> None:
        queue.enqueue({"a": 1})
        job = queue.claim()
        assert job is not None
        queue.complete(job)
        assert queue.comments(job.id) == []

    def test_fail_is_final_and_comments(self, queue: Queue) -> None:
        job_id = queue.enqueue({"a": 1})
        queue.dequeue()
        failed = queue.fail(job_id, "disk full")
        assert failed.state is JobState.FAILED and not failed.open
        assert failed.last_error == "disk full"
        assert "disk full" in queue.comments(job_id)[-1].body

    def test_a_result_too_large_for_a_comment_leaves_the_job_in_hand(self, queue: Queue) -> None:
        # Issue 8, item 7: the job used to be completed first and the result refused after, so it was gone.
        queue.enqueue({"a": 1})
        job = queue.claim()
        assert job is not None
        with pytest.raises(JobTooLarge, match="the job was not changed"):
            queue.complete(job, result={"blob": "x" * 70_000})
        with pytest.raises(JobTooLarge):
            queue.complete(job.id, comment="y" * 70_000)  # a bare id and a comment alike
        with pytest.raises(JobTooLarge):  # defused, every line that starts with "/" grows by one character
            queue.complete(job, comment="/x\n" * (queue.store.max_comment_chars // 3))
        held = queue.get(job.id)
        assert held.state is JobState.PROCESSING and held.attempt == job.attempt and held.result is None
        assert queue.comments(job.id) == []
        done = queue.complete(job, result={"small": 1})  # the holder can still finish it
        assert done.state is JobState.COMPLETED and queue.get(job.id).result == {"small": 1}

    def test_a_failure_with_a_huge_error_is_recorded_cut(self, queue: Queue) -> None:
        job_id = queue.enqueue({"a": 1})
        queue.dequeue()
        failed = queue.fail(job_id, error="e" * 100_000)
        assert failed.state is JobState.FAILED
        assert failed.last_error is not None and failed.last_error.endswith("100,000 characters in all; cut to fit]")
        (note,) = queue.comments(job_id)
        assert "cut to fit" in note.body and len(note.body) <= queue.store.max_comment_chars

    def test_retry_with_backoff_then_dead(self, queue: Queue, clock: ManualClock) -> None:
        job_id = queue.enqueue({"a": 1}, max_attempts=2)
        first = queue.claim()
        assert first is not None and first.attempt == 1
        back = queue.fail(first, error="flaky", retry=True)
        assert back.state is JobState.PENDING and back.run_at is not None
        assert queue.claim() is None  # backing off
        clock.advance(19)
        assert queue.claim() is None
        clock.advance(1)
        second = queue.claim()
        assert second is not None and second.id == job_id and second.attempt == 2
        dead = queue.fail(second, error="flaky again", retry=True)
        assert dead.state is JobState.FAILED and not dead.open  # no attempts left: dead
        bodies = [c.body for c in queue.comments(job_id)]
        assert any("Attempt 1 failed: flaky" in b for b in bodies)
        assert "flaky again" in bodies[-1]

    def test_requeue_clears_failed_and_gives_fresh_budget(self, queue: Queue) -> None:
        job_id = queue.enqueue({"a": 1}, max_attempts=1)
        job = queue.claim()
        assert job is not None
        queue.fail(job, error="nope", retry=True)
        assert queue.get_job_status(job_id) == "failed"
        again = queue.requeue(job_id)
        assert again.state is JobState.PENDING and again.open
        assert again.attempts_left == 1
        taken = queue.claim()
        assert taken is not None and taken.id == job_id and taken.attempt == 2
        queue.complete(taken)
        assert queue.get_job_status(job_id) == "completed"
        assert any("requeued" in c.body for c in queue.comments(job_id))

    def test_cancel_pending_and_running(self, queue: Queue) -> None:
        waiting = queue.enqueue({"a": 1})
        queue.cancel(waiting)
        assert queue.get_job_status(waiting) == "cancelled"
        assert queue.dequeue() is None
        running_id = queue.enqueue({"b": 2})
        running = queue.claim()
        assert running is not None and running.id == running_id
        queue.cancel(running_id)
        with pytest.raises(LeaseLost):
            queue.complete(running)
        assert queue.get_job_status(running_id) == "cancelled"
        with pytest.raises(StateConflict):
            queue.cancel(running_id)

    def test_lease_expiry_and_fencing_through_queue(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue({"a": 1}, max_attempts=3)
        stale = queue.claim(lease=20)
        assert stale is not None
        clock.advance(21)
        assert [j.id for j in queue.recover_expired()] == [stale.id]
        fresh = queue.claim()
        assert fresh is not None and fresh.attempt == stale.attempt + 1
        with pytest.raises(LeaseLost):
            queue.complete(stale, result="late")
        with pytest.raises(LeaseLost):
            queue.fail(stale, error="late")
        queue.complete(fresh, result="ok")
        assert queue.get(fresh.id).result == "ok"

    def test_heartbeat_extends_lease(self, queue: Queue, clock: ManualClock) -> None:
        queue.enqueue({"a": 1})
        job = queue.claim(lease=20)
        assert job is not None and job.lease_expires_at is not None
        clock.advance(10)
        renewed = queue.heartbeat(job, lease=30)
        assert renewed.lease_expires_at is not None and renewed.lease_expires_at > job.lease_expires_at
        clock.advance(15)  # past the first lease, inside the renewed one
        assert queue.recover_expired() == []
        queue.complete(renewed)

    def test_release_does_not_use_an_attempt(self, queue: Queue) -> None:
        job_id = queue.enqueue({"a": 1}, max_attempts=1)
        job = queue.claim()
        assert job is not None
        back = queue.release(job)
        assert back.state is JobState.PENDING and back.attempts_left == 1
        again = queue.claim()
        assert again is not None and again.id == job_id

    def test_history_lists_every_attempt(self, queue: Queue, clock: ManualClock) -> None:
        """Issue 13: worker, start, end, outcome, error and duration of each attempt, read back from the store."""
        job_id = queue.enqueue({"a": 1}, max_attempts=3)
        assert queue.history(job_id) == []
        first = queue.claim()
        assert first is not None
        (running,) = queue.history(job_id)
        assert running.outcome is Outcome.RUNNING and running.worker == queue.worker_name
        assert running.started_at is not None and running.ended_at is None and running.duration is None
        clock.advance(5)
        queue.fail(first, error="flaky", retry=True)
        clock.advance(20)
        second = queue.claim(lease=30)
        assert second is not None
        clock.advance(31)
        assert [job.id for job in queue.recover_expired()] == [job_id]
        third = queue.claim()
        assert third is not None
        clock.advance(2)
        queue.complete(third)  # no result: no comment, the record holds the attempt
        (done,) = queue.history(job_id)[2:]
        assert done.outcome is Outcome.COMPLETED and done.worker == queue.worker_name and done.ended_at is not None
        queue.requeue(job_id)  # the completed attempt moves into the requeue's comment
        fourth = queue.claim()
        assert fourth is not None
        clock.advance(3)
        queue.release(fourth)
        fifth = queue.claim()
        assert fifth is not None
        clock.advance(4)
        queue.fail(fifth, error="boom")
        history = queue.history(job_id)
        assert [(a.attempt, a.outcome) for a in history] == [
            (1, Outcome.RETRIED),
            (2, Outcome.EXPIRED),
            (3, Outcome.COMPLETED),
            (4, Outcome.RELEASED),
            (5, Outcome.FAILED),
        ]
        assert [history[i].duration for i in (0, 1, 3, 4)] == [5.0, 31.0, 3.0, 4.0]
        assert history[0].error == "flaky" and history[4].error == "boom"
        assert history[1].error is not None and "expired" in history[1].error
        assert {a.worker for a in history if a.outcome is not Outcome.EXPIRED} == {queue.worker_name}
        bodies = "\n".join(c.body for c in queue.comments(job_id))
        assert "attempt 1 · worker" in bodies and "5.0 s · retried" in bodies  # a person reads it too
        with pytest.raises(JobNotFound):
            queue.history(999_999)

    def test_history_of_a_cancelled_run_and_a_result(self, queue: Queue, clock: ManualClock) -> None:
        kept = queue.enqueue({"a": 1})
        job = queue.claim()
        assert job is not None
        clock.advance(2)
        queue.complete(job, result={"n": 1})
        (attempt,) = queue.history(kept)
        assert attempt.outcome is Outcome.COMPLETED and attempt.duration == 2.0
        stopped = queue.enqueue({"b": 2})
        running = queue.claim()
        assert running is not None and running.id == stopped
        queue.cancel(stopped)
        (cancelled,) = queue.history(stopped)
        assert cancelled.outcome is Outcome.CANCELLED and cancelled.ended_at is not None
        never = queue.enqueue({"c": 3})
        queue.cancel(never)
        assert queue.history(never) == []

    def test_pause_and_resume_claims(self, queue: Queue, store: Store) -> None:
        """Issue 13: a paused queue or label gets no claims, still takes enqueues, and every process agrees."""
        other = Queue(store, pause_check_interval=0)  # another process on the same store, reading at once
        gpu = queue.enqueue({"n": 1}, additional_labels=["gpu"])
        queue.pause()
        assert queue.claim() is None and other.claim() is None
        plain = queue.enqueue({"n": 2})  # enqueue still accepted
        assert queue.paused().queue is not None and queue.get(plain).state is JobState.PENDING
        queue.pause(label="GPU")
        queue.resume()  # the queue again; the label stays paused
        assert other.paused().as_dict()["labels"].keys() == {"GPU"}
        assert other.claim(labels=["gpu"]) is None
        taken = other.claim()
        assert taken is not None and taken.id == plain  # the gpu job is skipped, not in the way
        assert other.claim() is None
        other.resume(label="gpu")  # names compare as GitHub compares them
        assert not queue.paused().any
        assert (queue.claim(labels=["gpu"]) or taken).id == gpu
        with pytest.raises(ValueError):
            queue.pause(label="a,b")

    def test_invalid_and_oversized_data_rejected_before_storing(self, queue: Queue) -> None:
        with pytest.raises(InvalidJobData):
            queue.enqueue({"bad": {1, 2}})
        with pytest.raises(InvalidJobData):
            queue.enqueue({"nan": float("nan")})
        with pytest.raises(JobTooLarge):
            queue.enqueue({"big": "x" * 70_000})
        assert queue.count_open() == 0

    def test_idempotent_enqueue(self, queue: Queue) -> None:
        first = queue.enqueue({"a": 1}, idempotency_key="order-17")
        second = queue.enqueue({"a": 1}, idempotency_key="order-17")
        assert first == second
        assert queue.count_open() == 1

    def test_clear_removes_old_finished_jobs(self, queue: Queue, clock: ManualClock) -> None:
        done = queue.enqueue({"a": 1})
        keep = queue.enqueue({"b": 2})
        queue.dequeue()
        queue.complete(done)
        assert queue.clear(older_than=3600) == 0
        clock.advance(3700)  # GitHub stamps updated_at on its own (real) clock: keep a margin
        assert queue.clear(older_than=3600) == 1
        assert queue.get_job_status(done) in (None, "completed")  # stores that cannot delete archive instead
        assert queue.get_job_status(keep) == "pending"
        with pytest.raises(ValueError):
            queue.clear(0, states=[JobState.PENDING])

    def test_comment_and_list(self, queue: Queue) -> None:
        ids = [queue.enqueue({"i": i}) for i in range(5)]
        queue.create_comment(ids[0], "hello")
        assert queue.comments(ids[0])[0].body == "hello"
        page = queue.list_jobs(limit=2)
        assert [j.id for j in page.jobs] == ids[:2] and page.cursor
        assert [j.id for j in queue.list_jobs(states=["pending"], limit=100).jobs] == ids

    def test_job_record_is_immutable(self, queue: Queue) -> None:
        job = queue.get(queue.enqueue({"a": 1}))
        assert isinstance(job, Job)
        with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type varies
            job.title = "changed"  # type: ignore[misc]


class DependencyContract(_KitBase):
    """Jobs that wait for other jobs (:mod:`octoqueue.dependencies`), through the Queue, on the store under test."""

    @pytest.fixture
    def queue(self, store: Store) -> Queue:
        return Queue(store, max_attempts=1, lease=30)

    def test_a_job_waits_until_all_its_parents_completed(self, queue: Queue) -> None:
        first, second = queue.enqueue({"n": 1}), queue.enqueue({"n": 2})
        child = queue.enqueue_job({"n": 3}, depends_on=[first, second])
        assert child.state is JobState.PENDING and queue.dependencies.parents(child.id) == [first, second]
        taken = queue.claim()
        assert taken is not None and taken.id == first
        queue.complete(taken)
        assert queue.claim(ids=[child.id]) is None  # still waits for the second
        queue.complete(second)
        released = queue.claim()
        assert released is not None and released.id == child.id
        queue.complete(released)
        assert queue.store.get_setting("dependents") is None  # finished edges are forgotten

    def test_a_failed_parent_fails_the_subtree_naming_it_and_requeue_revives_it(self, queue: Queue) -> None:
        root = queue.enqueue({"n": 1})
        child = queue.enqueue({"n": 2}, depends_on=[root])
        grandchild = queue.enqueue({"n": 3}, depends_on=[child], on_parent_failure="cancel")
        queue.fail(root, error="boom")
        failed, cancelled = queue.get(child), queue.get(grandchild)
        assert failed.state is JobState.FAILED and failed.last_error == f"parent job {root} failed: boom"
        assert cancelled.state is JobState.CANCELLED
        assert cancelled.last_error == f"parent job {child} failed: parent job {root} failed: boom"
        assert any(f"parent job {root} failed" in c.body for c in queue.comments(child))
        queue.requeue(root)
        assert [queue.get(i).state for i in (root, child, grandchild)] == [JobState.PENDING] * 3
        for expected in (root, child, grandchild):
            job = queue.claim()
            assert job is not None and job.id == expected
            assert queue.claim() is None  # the next one waits for this one
            queue.complete(job)
        assert queue.get(grandchild).state is JobState.COMPLETED

    def test_parents_already_finished_settle_the_job_at_once(self, queue: Queue) -> None:
        done, gone = queue.enqueue({"n": 1}), queue.enqueue({"n": 2})
        queue.complete(done)
        queue.cancel(gone)
        assert queue.enqueue_job({"n": 3}, depends_on=[done]).run_at is None
        refused = queue.enqueue_job({"n": 4}, depends_on=[done, gone])
        assert refused.state is JobState.FAILED and refused.last_error == f"parent job {gone} was cancelled"
        with pytest.raises(JobNotFound):
            queue.enqueue({"n": 5}, depends_on=[424242])

    def test_settle_waiting_catches_up_with_parents_finished_behind_its_back(self, queue: Queue) -> None:
        done, broken = queue.enqueue({"n": 1}), queue.enqueue({"n": 2})
        released = queue.enqueue({"n": 3}, depends_on=[done])
        failed = queue.enqueue({"n": 4}, depends_on=[broken])
        # finished straight in the store, as by a finisher that died before settling, or a person on GitHub
        queue.store.transition(done, expected=JobState.PENDING, target=JobState.COMPLETED)
        queue.store.transition(broken, expected=JobState.PENDING, target=JobState.CANCELLED)
        assert queue.claim() is None
        assert queue.settle_waiting() == 2
        assert queue.get(failed).state is JobState.FAILED
        taken = queue.claim()
        assert taken is not None and taken.id == released


class StoreKit(StoreContract, QueueContract, DependencyContract):
    """The whole contract: subclass it (as ``Test...``) and set :attr:`store_url` or override :meth:`make_store`."""


# -- the pytest plugin: ``pytest -p octoqueue.testing.contract --octoqueue-store=URL`` --------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("octoqueue").addoption(
        "--octoqueue-store",
        metavar="URL",
        default=None,
        help="run octoqueue's store contract kit (only it) against the store at URL; {tmp_path} and {unique} in "
        "the URL become each test's temporary folder and a fresh hex string",
    )


class _KitModule(pytest.Module):
    """The kit as a test module: one class, ``TestStoreKit``, whose store is opened from the ``--octoqueue-store``
    URL."""

    def _getobj(self) -> ModuleType:
        module = ModuleType("octoqueue_store_kit")
        url = self.config.getoption("octoqueue_store")
        module.TestStoreKit = type("TestStoreKit", (StoreKit,), {"store_url": url})  # type: ignore[attr-defined]
        return module


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> bool | None:
    """With ``--octoqueue-store``, the session's tests are the kit's, and nothing else is collected."""
    config = session.config
    url = config.getoption("octoqueue_store")
    if not url:
        return None
    if "://" not in url:
        example = "sqlite:///{tmp_path}/jobs.db"
        raise pytest.UsageError(f"--octoqueue-store wants a store URL such as {example}, not {url!r}")
    module = _KitModule.from_parent(session, path=Path(__file__))
    session.items = list(session.genitems(module))
    config.hook.pytest_collection_modifyitems(session=session, config=config, items=session.items)
    config.hook.pytest_collection_finish(session=session)
    session.testscollected = len(session.items)
    return True


__all__ = ["QueueContract", "StoreContract", "StoreFactory", "StoreKit", "job_in", "new", "store_from_url"]
