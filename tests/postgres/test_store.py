"""What the PostgreSQL store does beyond the contract: batches, migrations, indexes, purge, URLs, arrivals."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest

from octoqueue.errors import (
    ConfigurationError,
    InvalidJobData,
    InvalidTransition,
    JobNotFound,
    LeaseLost,
    StateConflict,
)
from octoqueue.job import NewJob
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores import open_store
from octoqueue.stores.base import Arrival, Move
from octoqueue.stores.postgres import PostgresStore, parse_url
from octoqueue.stores.postgres import store as store_module
from octoqueue.stores.postgres.schema import LATEST, MIGRATIONS, migrate
from tests.postgres.server import SERVER, new_schema, store_url


def new(i: int = 0, **kw: object) -> NewJob:
    return NewJob(data={"i": i}, title=f"job {i}", **kw)  # type: ignore[arg-type]


def test_create_many_keeps_order_and_idempotency_keys(pg: PostgresStore) -> None:
    first = pg.create(new(0, idempotency_key="k"))
    made = pg.create_many(
        [new(1), new(2, idempotency_key="k"), new(3, idempotency_key="n"), new(4), new(5, idempotency_key="n")]
    )
    assert [job.data for job in made] == [{"i": 1}, {"i": 0}, {"i": 3}, {"i": 4}, {"i": 3}]
    assert made[1].id == first.id and made[2].id == made[4].id
    assert made[0].id < made[2].id < made[3].id
    assert pg.count([JobState.PENDING]) == {JobState.PENDING: 4}
    assert pg.create_many([]) == []


def test_create_many_round_trips_awkward_values(pg: PostgresStore) -> None:
    when = pg.now() + timedelta(hours=1)
    odd = ['we"ird', "back\\slash", "{brace}", "comma,", "NULL", "é✓", " spaced "]
    items = [NewJob(data={"s": 'q"\\{}'}, title='t"{,}\\', labels=tuple(odd), run_at=when, timeout=1.5, type="NULL")]
    (made,) = pg.create_many(items)
    got = pg.get(made.id)
    assert got == made
    assert got.labels == tuple(odd) and got.title == 't"{,}\\' and got.data == {"s": 'q"\\{}'}
    assert (got.run_at, got.timeout, got.type) == (when, 1.5, "NULL")
    assert pg.list_jobs(labels=['we"ird', "NULL"]).jobs == [got]
    # The batch's data travel as one text split on U+001E, which JSON text always escapes.
    items = [NewJob(data={"s": "a\x1eb"}, title="t"), NewJob(data=["\x1e", 'q"'], title="t")]
    assert [pg.get(job.id).data for job in pg.create_many(items)] == [{"s": "a\x1eb"}, ["\x1e", 'q"']]
    raw = NewJob(data="x", title="t").with_data_json('"a\x1eb"')  # not JSON: a raw control character
    with pytest.raises(InvalidJobData, match="U\\+001E"):
        pg.create_many([raw, NewJob(data=1, title="t")])
    assert pg.count([JobState.PENDING]) == {JobState.PENDING: 3}


def test_create_many_of_every_shape_returns_what_a_read_returns(pg: PostgresStore) -> None:
    # Each column shared by the batch (one parameter) or differing between jobs (an array), with and without keys.
    when = pg.now() + timedelta(hours=1)
    shared = {"title": "t", "labels": ("a", "b"), "type": "x", "priority": 1, "run_at": when, "max_attempts": 3}
    shared["timeout"] = 2.5
    differing: dict[str, list[object]] = {
        "title": ["t", 'u"{'],
        "labels": [(), ("a", "NULL")],
        "type": [None, "y"],
        "priority": [0, 4],
        "run_at": [None, when],
        "max_attempts": [1, 2],
        "timeout": [None, 1.0],
    }
    batches = [[NewJob(data=i, **shared) for i in range(3)]]  # type: ignore[arg-type]
    for name, values in differing.items():
        batches.append([NewJob(data=i, **{**shared, name: value}) for i, value in enumerate(values)])  # type: ignore[arg-type]
    batches.append([NewJob(data=i, title="k", idempotency_key="same") for i in range(3)])  # one key, shared
    batches.append([NewJob(data=i, title="k", idempotency_key=f"k{i}" if i else None) for i in range(3)])
    for batch in batches:
        made = pg.create_many(batch)
        assert [pg.get(job.id) for job in made] == made
        assert [job.id for job in made] == sorted(job.id for job in made)
        if batch[0].idempotency_key == "same":
            assert [job.data for job in made] == [0, 0, 0] and len({job.id for job in made}) == 1
        else:
            assert [job.data for job in made] == [item.data for item in batch]
            assert [job.model_dump(include=set(NewJob.model_fields)) for job in made] == [dict(item) for item in batch]


def test_create_many_announces_as_the_keyed_statement_does(request: pytest.FixtureRequest) -> None:
    # A batch without keys makes its payloads in Python; one with keys counts its rows in SQL: the same arrivals.
    url = store_url(new_schema(request))
    watching, other = PostgresStore.from_url(url), PostgresStore.from_url(url)
    got: list[Arrival] = []
    lock = threading.Condition()

    def on_arrival(arrival: Arrival) -> None:
        with lock:
            got.append(arrival)
            lock.notify_all()

    def heard(count: int) -> list[tuple[object, ...]]:
        with lock:
            assert lock.wait_for(lambda: len(got) >= count, timeout=5)
            found = sorted((a.labels, a.count, a.run_at) for a in got)
            got.clear()
            return found

    stop = watching.watch_arrivals(on_arrival)
    try:
        soon = other.now() + timedelta(seconds=30)
        later = soon + timedelta(microseconds=123457)

        def batch(keys: bool) -> list[NewJob]:
            specs = [(("q:a",), later), (("q:a",), soon), (("q:b",), None), (("q:b",), later), ((), None)]
            return [
                NewJob(data=i, title="t", labels=labels, run_at=run_at, idempotency_key=f"{keys}{i}" if keys else None)
                for i, (labels, run_at) in enumerate(specs)
            ]

        other.create_many(batch(keys=False))
        unkeyed = heard(3)
        other.create_many(batch(keys=True))
        assert heard(3) == unkeyed == [((), 1, None), (("q:a",), 2, soon), (("q:b",), 2, None)]
        other.create_many(batch(keys=True))  # every key taken: nothing made, nothing announced
        other.create_many([NewJob(data=0, title="t", labels=("q:c",), run_at=later)])
        assert heard(1) == [(("q:c",), 1, later)]
        assert stop is not None
        stop()
    finally:
        watching.close()
        other.close()


def test_transition_many_judges_each_move_on_its_own(pg: PostgresStore) -> None:
    a, b, c, d = pg.create_many([new(i) for i in range(4)])
    claimed = {job.id: job for job in pg.claim(worker="w", lease=60, limit=3)}
    assert set(claimed) == {a.id, b.id, c.id}
    results = pg.transition_many(
        [
            Move(a.id, JobState.PROCESSING, JobState.COMPLETED, claimed[a.id].attempt, {"result": {"ok": 1}}),
            Move(b.id, JobState.PROCESSING, JobState.COMPLETED, claimed[b.id].attempt + 1),  # stale fencing token
            Move(987654, JobState.PROCESSING, JobState.COMPLETED, 1),
            Move(a.id, JobState.PROCESSING, JobState.COMPLETED, claimed[a.id].attempt),  # a second move of a
            Move(d.id, JobState.PENDING, JobState.PROCESSING),  # not allowed without a claim? judged by the rules
            Move(c.id, JobState.PROCESSING, JobState.PENDING, claimed[c.id].attempt, {"last_error": "later"}),
            Move(d.id, JobState.PENDING, JobState.CANCELLED),
        ]
    )
    done, stale, missing, again, d_moved, retried, cancelled = results
    assert not isinstance(done, Exception) and done.state is JobState.COMPLETED and done.result == {"ok": 1}
    assert done.worker is None and done.lease_expires_at is None and not done.open
    assert isinstance(stale, LeaseLost)
    assert isinstance(missing, JobNotFound)
    assert isinstance(again, LeaseLost)  # a is completed by then
    assert not isinstance(retried, Exception) and retried.state is JobState.PENDING
    assert retried.last_error == "later" and retried.worker is None
    if isinstance(d_moved, Exception):
        assert isinstance(d_moved, (InvalidTransition, StateConflict))
        assert not isinstance(cancelled, Exception) and cancelled.state is JobState.CANCELLED
    else:
        assert isinstance(cancelled, StateConflict)
    assert pg.get(b.id).state is JobState.PROCESSING


def test_migrations_race_one_process_applies_them(request: pytest.FixtureRequest) -> None:
    schema = new_schema(request)
    applied: list[list[int]] = []
    barrier = threading.Barrier(6)

    def run() -> None:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            barrier.wait()
            applied.append(migrate(conn, schema))

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(applied) == [[]] * 5 + [list(range(1, LATEST + 1))]
    with psycopg.connect(SERVER) as conn:
        versions = conn.execute(f"SELECT version FROM {schema}.schema_version ORDER BY version").fetchall()
    assert [v for (v,) in versions] == list(range(1, LATEST + 1))


def test_a_schema_of_version_1_gains_started_at_and_keeps_its_jobs(request: pytest.FixtureRequest) -> None:
    schema = new_schema(request)
    with psycopg.connect(SERVER, autocommit=True) as conn, conn.transaction():
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET LOCAL search_path TO {schema}")
        conn.execute(MIGRATIONS[0][2])
        conn.execute(
            "CREATE TABLE schema_version (version integer PRIMARY KEY, description text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO schema_version (version, description) VALUES (1, 'v1')")
        conn.execute("INSERT INTO jobs (title, data, state) VALUES ('old', '{\"n\": 1}', 'pending')")
    store = PostgresStore.from_url(store_url(schema))
    try:
        (old,) = store.list_jobs().jobs
        assert old.title == "old" and old.data == {"n": 1} and old.started_at is None
        (taken,) = store.claim(worker="w", lease=60)
        assert taken.started_at is not None and store.get(old.id).started_at == taken.started_at
    finally:
        store.close()


def test_empty_claim_reads_the_pending_index_only_with_many_finished_jobs(pg: PostgresStore) -> None:
    # A million finished jobs, written by the server itself (seconds, not minutes).
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO {pg.schema}.jobs (title, data, state, open) "
            "SELECT 'done', '{}', 'completed', false FROM generate_series(1, 1000000)"
        )
        conn.execute(f"ANALYZE {pg.schema}.jobs")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                f"EXPLAIN SELECT id FROM {pg.schema}.jobs WHERE state = 'pending' "
                "AND (run_at IS NULL OR run_at <= now()) ORDER BY priority, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
        )
    assert "jobs_pending" in plan, plan
    pg.claim(worker="w", lease=30)  # warm the pool and the prepared statement
    started = time.perf_counter()
    for _ in range(20):
        assert pg.claim(worker="w", lease=30) == []
    assert (time.perf_counter() - started) / 20 < 0.005  # a full scan of a million rows takes ~100 ms here


def test_purge_deletes_in_bounded_batches(pg: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "PURGE_BATCH", 10)
    jobs = pg.create_many([new(i) for i in range(25)])
    keep = pg.create(new(99))
    for job in pg.claim(worker="w", lease=30, limit=25):
        pg.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=job.attempt)
    pg.comment(jobs[0].id, "note")
    statements: list[str] = []
    real = store_module.PostgresStore._run

    def counting(self: PostgresStore, work: object) -> object:
        statements.append("run")
        return real(self, work)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module.PostgresStore, "_run", counting)
    assert pg.purge(states=[JobState.COMPLETED], older_than=pg.now() + timedelta(seconds=1)) == 25
    assert len(statements) == 3 + 1  # three batches of at most 10, and the now() of the cutoff
    with pytest.raises(JobNotFound):
        pg.comments(jobs[0].id)
    assert pg.get(keep.id).state is JobState.PENDING


def test_url_options(request: pytest.FixtureRequest) -> None:
    conninfo, options = parse_url("postgresql://me:s3cret@db.example:6543/jobs?schema=q1&pool_max=4&sslmode=disable")
    assert conninfo == "postgresql://me:s3cret@db.example:6543/jobs?sslmode=disable"
    assert options == {"schema": "q1", "pool_max": 4, "url": "postgresql://me@db.example:6543/jobs?schema=q1"}
    with pytest.raises(ConfigurationError, match="pool_max"):
        parse_url("postgresql://h/db?pool_max=many")
    with pytest.raises(ConfigurationError, match="schema"):
        open_store("postgresql://postgres@127.0.0.1/test?schema=drop%20table")
    store = open_store(store_url(new_schema(request)) + "&application_name=oq-test")
    try:
        assert isinstance(store, PostgresStore) and "s3cret" not in store.url
        store.now()  # the pool connects in the background: this waits for a connection
        with psycopg.connect(SERVER) as conn:
            found = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'oq-test'")
            assert found.fetchone()[0] >= 1  # type: ignore[index]  # libpq got the option
    finally:
        store.close()


def test_arrivals_from_another_store_object_are_reported(request: pytest.FixtureRequest) -> None:
    url = store_url(new_schema(request))
    watching, other = PostgresStore.from_url(url), PostgresStore.from_url(url)
    got: list[Arrival] = []
    came = threading.Event()

    def on_arrival(arrival: Arrival) -> None:
        got.append(arrival)
        came.set()

    stop = watching.watch_arrivals(on_arrival)
    try:
        assert stop is not None
        watching.create(new(0, labels=("mine",)))  # its own: reported by its Queue, not by the store
        other.create_many([new(1, labels=("queue:a",)), new(2, labels=("queue:a",)), new(3)])
        assert came.wait(5)
        time.sleep(0.2)
        assert sorted((a.labels, a.count, a.run_at) for a in got) == [((), 1, None), (("queue:a",), 2, None)]
        got.clear()
        came.clear()
        (claimed,) = other.claim(worker="w", lease=30, labels=["queue:a"])
        later = other.now() + timedelta(seconds=60)
        other.transition(
            claimed.id, expected=JobState.PROCESSING, target=JobState.PENDING, attempt=claimed.attempt, run_at=later
        )
        assert came.wait(5)
        assert got == [Arrival(labels=("queue:a",), count=1, run_at=later)]
        # The LISTEN connection is cut: the listener reconnects and reports that it may have missed arrivals.
        got.clear()
        came.clear()
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
                (f"LISTEN {watching.channel}",),
            )
        assert came.wait(10)
        assert got[0] == Arrival(labels=None)
        stop()
    finally:
        watching.close()
        other.close()


def test_a_waiting_claim_wakes_on_a_job_from_another_process(request: pytest.FixtureRequest) -> None:
    url = store_url(new_schema(request))
    with Queue(url) as waiting, Queue(url) as producer:
        found: list[float] = []

        def claim() -> None:
            started = time.monotonic()
            job = waiting.claim_batch(1, wait=20, poll_interval=20)  # no polling: only a NOTIFY can wake it
            assert job
            found.append(time.monotonic() - started)

        thread = threading.Thread(target=claim)
        thread.start()
        time.sleep(0.5)
        producer.enqueue({"x": 1})
        thread.join(10)
        assert found and found[0] < 2.0


def test_queue_batches_on_postgres(pg: PostgresStore) -> None:
    queue = Queue(pg)
    jobs = queue.enqueue_many([{"i": i} for i in range(5)], queue="bulk", idempotency_keys=["a", None, "a", None, None])
    assert jobs[0].id == jobs[2].id and len({job.id for job in jobs}) == 4
    assert all(job.labels == ("queue:bulk",) for job in jobs)
    claimed = queue.claim_batch(4, labels=["queue:bulk"])
    outcomes = queue.complete_many(claimed, results=[{"n": i} for i in range(4)])
    assert [o.state for o in outcomes if not isinstance(o, Exception)] == [JobState.COMPLETED] * 4
    assert "**Result**" in queue.comments(claimed[0].id)[0].body
    again = queue.complete_many(claimed)
    assert all(isinstance(o, LeaseLost) for o in again)


@pytest.mark.parametrize("error", [psycopg.errors.AdminShutdown, psycopg.errors.DeadlockDetected])
def test_work_the_server_rolled_back_is_sent_once_more(pg: PostgresStore, error: type[Exception]) -> None:
    tries: list[int] = []

    def work(conn: psycopg.Connection[object]) -> int:
        tries.append(1)
        if len(tries) == 1:
            raise error("rolled back")
        return 42

    assert pg._run(work) == 42 and len(tries) == 2


def test_other_connection_errors_are_store_unavailable_and_not_resent(pg: PostgresStore) -> None:
    from octoqueue.errors import StoreUnavailable

    tries: list[int] = []

    def work(conn: psycopg.Connection[object]) -> int:
        tries.append(1)
        raise psycopg.OperationalError("connection lost mid-statement: it may have committed")

    with pytest.raises(StoreUnavailable, match="may have committed"):
        pg._run(work)
    assert len(tries) == 1


def test_octoqueue_migrate_command(request: pytest.FixtureRequest) -> None:
    from click.testing import CliRunner

    from octoqueue.cli import main

    url = store_url(new_schema(request))
    runner = CliRunner()
    first = runner.invoke(main, ["migrate", url])
    assert (
        first.exit_code == 0
        and f"applied migration(s) {', '.join(str(n) for n in range(1, LATEST + 1))}; now at version {LATEST}"
        in first.output
    )
    again = runner.invoke(main, ["migrate"], env={"OCTOQUEUE_STORE": url})
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert "need no migration" in runner.invoke(main, ["migrate", "sqlite:///x.db"]).output
    unreachable = runner.invoke(main, ["migrate", "postgresql://postgres@127.0.0.1:1/test"])
    assert unreachable.exit_code == 1 and "cannot open the PostgreSQL store" in unreachable.output
