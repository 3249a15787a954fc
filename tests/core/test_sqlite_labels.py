"""The SQLite store's pending_labels table: a labelled claim reads only its label's pending jobs, the triggers keep
the table equal to what the jobs say through every change, and an older database file is filled in once."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from octoqueue.errors import OctoqueueError
from octoqueue.job import NewJob
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores._sqlite_migrations import latest
from octoqueue.stores.sqlite import SQLiteStore

EXPECTED = (
    "SELECT DISTINCT value, jobs.priority, jobs.id FROM jobs, json_each(jobs.labels) WHERE jobs.state = 'pending'"
)


def rows(store: SQLiteStore) -> list[tuple[str, int, int]]:
    return sorted(store._conn().execute("SELECT label, priority, id FROM pending_labels").fetchall())


def expected(store: SQLiteStore) -> list[tuple[str, int, int]]:
    return sorted(store._conn().execute(EXPECTED).fetchall())


def consistent(store: SQLiteStore) -> bool:
    return rows(store) == expected(store)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "jobs.db")
    yield s
    s.close()


def new(labels: tuple[str, ...] = (), priority: int = 2, **kw: object) -> NewJob:
    return NewJob(data={}, title="t", labels=labels, priority=priority, **kw)  # type: ignore[arg-type]


# -- claims ------------------------------------------------------------------------------------------------------
def test_a_labelled_claim_honours_every_filter_in_claim_order(store: SQLiteStore) -> None:
    later = store.now() + timedelta(hours=1)
    a4 = store.create(new(("a",), priority=4))
    ab2 = store.create(new(("a", "b"), priority=2))
    a0_later = store.create(new(("a",), priority=0, run_at=later))
    b0 = store.create(new(("b",), priority=0))
    a2_typed = store.create(new(("a", "x"), priority=2, type="mail"))
    a0 = store.create(new(("a",), priority=0))

    assert [j.id for j in store.claim(worker="w", lease=60, labels=["a", "b"], limit=5)] == [ab2.id]
    assert [j.id for j in store.claim(worker="w", lease=60, labels=["a"], types=["mail"])] == [a2_typed.id]
    assert store.claim(worker="w", lease=60, labels=["a"], types=[]) == []
    assert [j.id for j in store.claim(worker="w", lease=60, labels=["a"], ids=[a4.id, b0.id])] == [a4.id]
    claimed = store.claim(worker="w", lease=60, labels=["a", "a"], limit=5)
    assert [j.id for j in claimed] == [a0.id]  # a0_later is not runnable yet; the rest are taken
    assert claimed[0].state is JobState.PROCESSING and claimed[0].attempt == 1 and claimed[0].worker == "w"
    assert store.get(a0_later.id).state is JobState.PENDING
    assert [j.id for j in store.claim(worker="w", lease=60, labels=["b"])] == [b0.id]
    assert consistent(store)


def test_an_empty_labelled_claim_does_not_read_the_jobs_of_other_labels(store: SQLiteStore) -> None:
    """Counted in SQLite virtual-machine steps, so the machine's speed does not matter."""
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    def claim_steps() -> int:
        writer = store._writer()
        writer.set_progress_handler(step, 1)
        steps[0] = 0
        try:
            assert store.claim(worker="w", lease=60, labels=["queue:empty"]) == []
        finally:
            writer.set_progress_handler(None, 1)
        return steps[0]

    store.create(new(("queue:empty",), run_at=store.now() + timedelta(hours=1)))
    alone = claim_steps()
    writer = store._writer()
    writer.execute("BEGIN")
    for _ in range(3000):
        store.create(new(("queue:other",)))
    writer.execute("COMMIT")
    assert claim_steps() <= alone + 5
    # the same claim over jobs_runnable, as before pending_labels, walks them all
    walk = [0]

    def count() -> int:
        walk[0] += 1
        return 0

    writer.set_progress_handler(count, 1)
    writer.execute(
        "SELECT id FROM jobs INDEXED BY jobs_runnable WHERE state = 'pending' AND (run_at IS NULL OR run_at <= ?) "
        "AND EXISTS (SELECT 1 FROM json_each(jobs.labels) WHERE value = 'queue:empty') ORDER BY priority, id LIMIT 1",
        (store.now().timestamp(),),
    ).fetchall()
    writer.set_progress_handler(None, 1)
    assert walk[0] > 30 * alone


def test_threads_claiming_by_label_never_share_a_job(store: SQLiteStore) -> None:
    for i in range(300):
        store.create(new((f"q{i % 3}",), priority=i % 5))
    taken: list[int] = []
    lock = threading.Lock()

    def worker(label: str) -> None:
        while jobs := store.claim(worker=label, lease=60, labels=[label], limit=3):
            with lock:
                taken.extend(j.id for j in jobs)

    threads = [threading.Thread(target=worker, args=(f"q{i % 3}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == list(range(1, 301))
    assert rows(store) == []


# -- the triggers ------------------------------------------------------------------------------------------------
def test_the_table_follows_every_change_of_a_job(tmp_path: Path) -> None:
    queue = Queue(SQLiteStore(tmp_path / "jobs.db"), lease=60, max_attempts=10)
    store = queue.store
    assert isinstance(store, SQLiteStore)
    a = queue.enqueue({"n": 1}, additional_labels=["x"], queue="a")
    queue.enqueue({"n": 2}, queue="b")
    queue.enqueue({"n": 3})
    dup = store.create(new(("d", "d", "e")))  # the store itself does not de-duplicate labels
    assert [r for r in rows(store) if r[2] == dup.id] == [("d", 2, dup.id), ("e", 2, dup.id)]
    assert consistent(store)

    job = queue.claim(labels=["queue:a"])
    assert job is not None and job.id == a
    assert consistent(store)
    queue.fail(job, error="boom", retry=True, delay=0)  # back to pending
    assert ("queue:a", 2, a) in rows(store) and consistent(store)
    job = queue.claim(labels=["queue:a", "x"])
    assert job is not None
    queue.release(job)
    assert consistent(store)
    job = queue.claim(labels=["queue:a", "x"])
    assert job is not None
    store.transition(a, expected=JobState.PROCESSING, target=JobState.PENDING, attempt=job.attempt, priority=3)
    assert ("queue:a", 3, a) in rows(store) and consistent(store)
    store._writer().execute("UPDATE jobs SET priority = 0 WHERE id = ?", (a,))  # a pending job moves in line
    assert ("queue:a", 0, a) in rows(store) and ("queue:a", 3, a) not in rows(store)
    assert consistent(store)
    job = queue.claim(labels=["x"], lease=0.01)  # the lease runs out ...
    assert job is not None
    store._writer().execute("UPDATE jobs SET lease_expires_at = 0 WHERE id = ?", (a,))
    assert [(j.id, j.state) for j in queue.recover_expired()] == [(a, JobState.PENDING)]  # ... pending again
    assert consistent(store) and ("x", 0, a) in rows(store)
    queue.cancel(a)
    assert consistent(store) and all(r[2] != a for r in rows(store))
    queue.requeue(a)
    assert consistent(store) and ("queue:a", 0, a) in rows(store)
    job = queue.claim(labels=["queue:a"])
    assert job is not None
    queue.complete(job)
    assert consistent(store)
    queue.requeue(a)
    assert store.purge(states=[JobState.PENDING], older_than=store.now() + timedelta(seconds=1)) == 4
    assert rows(store) == [] and consistent(store)
    queue.close()


def test_random_changes_keep_the_table_equal_to_the_jobs(store: SQLiteStore) -> None:
    rng = random.Random(20261126)
    labels = ["queue:a", "queue:b", "x", "y"]
    ids: list[int] = []
    for step in range(400):
        op = rng.random()
        if op < 0.35 or not ids:
            picked = tuple(rng.sample(labels, rng.randint(0, 3)))
            ids.append(store.create(new(picked, priority=rng.randint(0, 4))).id)
        elif op < 0.6:
            store.claim(worker="w", lease=60, limit=rng.randint(1, 3), labels=rng.sample(labels, rng.randint(0, 2)))
        else:
            job = store.get(rng.choice(ids))
            target = rng.choice(list(JobState))
            with contextlib.suppress(OctoqueueError):  # a move the state machine refuses changes nothing
                store.transition(
                    job.id, expected=job.state, target=target, attempt=job.attempt, priority=rng.randint(0, 4)
                )
        if step % 25 == 0:
            assert consistent(store), f"after step {step}"
    assert consistent(store)
    # a listing of a label's pending jobs (which reads pending_labels) agrees with a walk over every job
    for label in labels:
        listed = [j.id for j in store.iter_jobs(states=[JobState.PENDING], labels=[label], limit=7)]
        walked = [j.id for j in store.iter_jobs(labels=[label], limit=7) if j.state is JobState.PENDING]
        assert listed == walked
        both = [j.id for j in store.iter_jobs(states=[JobState.PENDING], labels=[label, "x"], limit=3)]
        assert both == [i for i in walked if "x" in store.get(i).labels]


# -- older files -------------------------------------------------------------------------------------------------
def _make_old(path: Path) -> list[tuple[str, int, int]]:
    """A file as the store wrote it before pending_labels: jobs in every state, no table, no triggers."""
    s = SQLiteStore(path)
    for i in range(40):
        s.create(new((f"queue:{'ab'[i % 2]}",) + (("x",) if i % 3 == 0 else ()), priority=i % 5))
    s.create(new())
    for job in s.claim(worker="w", lease=60, limit=10):
        if job.id % 2:
            s.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=job.attempt)
    want = expected(s)
    s.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER pending_labels_insert; DROP TRIGGER pending_labels_update; DROP TRIGGER pending_labels_delete;"
        "DROP TABLE pending_labels; PRAGMA user_version = 0;"
    )
    conn.close()
    return want


def test_an_older_file_gets_the_table_filled_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    want = _make_old(path)
    assert len(want) > 30
    store = SQLiteStore(path)
    assert rows(store) == want
    assert store._conn().execute("PRAGMA user_version").fetchone() == (latest(),)
    first = store.claim(worker="w", lease=60, labels=["queue:a"], limit=2)
    assert [(j.priority, j.id) for j in first] == sorted((p, i) for label, p, i in want if label == "queue:a")[:2]
    assert consistent(store)
    store._writer().execute("DELETE FROM pending_labels WHERE label = 'x'")  # not refilled on the next opening:
    store.close()
    again = SQLiteStore(path)
    assert all(label != "x" for label, _, _ in rows(again))  # the version says the table was filled
    again.close()


def test_stores_opening_an_older_file_together_fill_it_once(tmp_path: Path) -> None:
    """Each store has connections of its own, as separate processes would."""
    path = tmp_path / "old.db"
    want = _make_old(path)
    stores: list[SQLiteStore] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            stores.append(SQLiteStore(path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert rows(stores[0]) == want
    for s in stores:
        s.close()
