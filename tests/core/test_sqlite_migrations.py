"""The SQLite store's schema versions: a file written by an earlier release opens, migrates and works; a file from a
newer octoqueue is refused; stores and processes opening an old file at once migrate it once; a failing step leaves
the file as it was; the column map and the migrations describe the same table."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import octoqueue
from octoqueue.errors import ConfigurationError, LeaseLost, StoreUnavailable
from octoqueue.job import NewJob
from octoqueue.states import JobState
from octoqueue.stores import _sqlite_migrations, open_store
from octoqueue.stores._sqlite_columns import COLUMNS
from octoqueue.stores.sqlite import SQLiteStore

FIXTURES = Path(__file__).parent / "fixtures"
#: Written by tests/core/fixtures/make_sqlite_release.py with the code of release a70015e (schema version 1).
RELEASE_A70015E = FIXTURES / "sqlite-a70015e.db"

#: A step as a later release might add: a column, and a table that records each run of the step.
EXTRA_STEP = (
    "ALTER TABLE jobs ADD COLUMN parent_id INTEGER",
    "CREATE TABLE step_runs (pid INTEGER NOT NULL)",
    "INSERT INTO step_runs (pid) VALUES (0)",
)


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def layout(path: Path) -> dict[str, object]:
    """Tables with their columns, indexes with their columns and conditions, triggers: what a file's schema is,
    whatever the whitespace of the statements that made it."""
    conn = sqlite3.connect(path)
    try:
        found: dict[str, object] = {}
        for kind, name, table, sql in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"):
            if name.startswith("sqlite_"):
                continue
            if kind == "table":
                found[name] = [tuple(row[1:]) for row in conn.execute(f"PRAGMA table_info({name})")]
            elif kind == "index":
                where = sql.upper().split(" WHERE ", 1)[1].split() if sql and " WHERE " in sql.upper() else None
                found[name] = (table, [row[2] for row in conn.execute(f"PRAGMA index_info({name})")], where)
            else:
                found[name] = (kind, table, " ".join(sql.split()))
        return found
    finally:
        conn.close()


@pytest.fixture
def release_file(tmp_path: Path) -> Path:
    path = tmp_path / "release.db"
    shutil.copyfile(RELEASE_A70015E, path)
    return path


@pytest.fixture
def extra_step(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_sqlite_migrations, "STEPS", (*_sqlite_migrations.STEPS, EXTRA_STEP))
    yield


def test_the_release_file_is_what_the_tests_below_expect() -> None:
    assert user_version(RELEASE_A70015E) == 1
    assert not Path(f"{RELEASE_A70015E}-wal").exists()


def test_a_file_from_release_a70015e_opens_and_works(release_file: Path) -> None:
    store = SQLiteStore(release_file)
    try:
        assert user_version(release_file) == _sqlite_migrations.latest()
        jobs = {job.id: job for job in store.iter_jobs()}
        assert {i: (j.title, j.state) for i, j in jobs.items()} == {
            1: ("mail ada", JobState.PENDING),
            2: ("mail bob", JobState.PENDING),
            3: ("later", JobState.PENDING),
            4: ("held", JobState.PROCESSING),
            5: ("expired", JobState.PROCESSING),
            6: ("done", JobState.COMPLETED),
            7: ("broken", JobState.FAILED),
            8: ("dropped", JobState.CANCELLED),
            9: ("unicode ☃", JobState.PENDING),
        }
        assert jobs[2].labels == ("queue:mail", "urgent") and jobs[2].priority == 0 and jobs[2].max_attempts == 3
        assert jobs[2].idempotency_key == "order-42" and jobs[2].data == {"to": "bob@example.com"}
        assert jobs[4].worker == "w-held" and jobs[4].attempt == 1 and jobs[4].lease_expires_at is not None
        assert jobs[6].result == {"ok": True} and jobs[6].data == [1, 2, 3] and jobs[6].timeout == 30.0
        assert jobs[6].open is False and jobs[6].comments == 2 and jobs[6].worker is None
        assert jobs[7].last_error == "boom" and jobs[8].data is None and jobs[9].data == {"text": "naïve ☃ é"}
        assert [c.body for c in store.comments(6)] == ["started", "finished ✓"]
        assert [c.body for c in store.comments(1)] == ["queued by the release"]
        assert store.get_setting("queues") == {
            "mail": {"labels": ["queue:mail"]},
            "build": {"labels": ["queue:build"]},
        }
        assert store.count()[JobState.PENDING] == 4

        # claim by label in claim order (the release's pending_labels rows serve it); job 3 waits until 2099
        claimed = store.claim(worker="w-new", lease=60, labels=["queue:mail"], limit=5)
        assert [j.id for j in claimed] == [2, 1]
        assert [j.id for j in store.list_jobs(states=[JobState.PENDING], labels=["queue:mail"]).jobs] == [3]
        done = store.transition(2, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1, result=7)
        assert done.state is JobState.COMPLETED and store.get(2).result == 7
        # the release's leases: one expired and comes back, the other still holds against a stale attempt
        assert [(j.id, j.state, j.attempt) for j in store.recover_expired()] == [(5, JobState.PENDING, 1)]
        with pytest.raises(LeaseLost):
            store.transition(4, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=0)
        # the release's idempotency key still holds; new jobs follow the release's ids
        assert store.create(NewJob(data={}, title="again", idempotency_key="order-42")).id == 2
        fresh = store.create(NewJob(data={"n": 10}, title="new", labels=("queue:build",)))
        assert fresh.id == 10
        assert [j.id for j in store.claim(worker="w-new", lease=60, labels=["queue:build"], limit=5)] == [5, 10]
        store.comment(fresh.id, "after the migration")
        store.comment(6, "third")
        assert [c.body for c in store.comments(6)] == ["started", "finished ✓", "third"]
        assert store.get(6).comments == 3
        store.set_setting("note", None)
        assert store.get_setting("note") is None
        assert store.purge(states=[JobState.CANCELLED], older_than=store.now() + timedelta(seconds=1)) == 1
    finally:
        store.close()


def test_a_migrated_release_file_has_the_layout_of_a_new_file(release_file: Path, tmp_path: Path) -> None:
    SQLiteStore(release_file).close()
    SQLiteStore(tmp_path / "new.db").close()
    assert layout(release_file) == layout(tmp_path / "new.db")


def test_the_column_map_names_every_column_of_jobs(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "new.db").close()
    table = layout(tmp_path / "new.db")["jobs"]
    assert isinstance(table, list)
    assert sorted(column.name for column in COLUMNS) == sorted(str(row[0]) for row in table)


@pytest.mark.usefixtures("extra_step")
def test_a_release_file_runs_the_steps_it_lacks_once(release_file: Path) -> None:
    store = SQLiteStore(release_file)
    try:
        assert user_version(release_file) == len(_sqlite_migrations.STEPS)
        assert store._conn().execute("SELECT COUNT(*) FROM step_runs").fetchone() == (1,)
        assert "parent_id" in {row[1] for row in store._conn().execute("PRAGMA table_info(jobs)")}
        assert [j.id for j in store.claim(worker="w", lease=60, labels=["queue:mail"], limit=5)] == [2, 1]
    finally:
        store.close()
    SQLiteStore(release_file).close()  # current now: the step does not run again (ADD COLUMN would fail)
    assert user_version(release_file) == len(_sqlite_migrations.STEPS)


def test_a_file_from_a_newer_octoqueue_is_refused(release_file: Path) -> None:
    newer = _sqlite_migrations.latest() + 1
    conn = sqlite3.connect(release_file)
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.close()
    before = layout(release_file)
    with pytest.raises(ConfigurationError, match=rf"schema version {newer}, written by a newer octoqueue.*upgrade"):
        SQLiteStore(release_file)
    with pytest.raises(ConfigurationError, match="newer octoqueue"):
        open_store(f"sqlite:///{release_file}")
    assert user_version(release_file) == newer and layout(release_file) == before


def test_a_failing_step_leaves_the_file_as_it_was(release_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = ("ALTER TABLE jobs ADD COLUMN parent_id INTEGER", "ALTER TABLE no_such_table ADD COLUMN x INTEGER")
    monkeypatch.setattr(_sqlite_migrations, "STEPS", (*_sqlite_migrations.STEPS, failing))
    before = layout(release_file)
    last = len(_sqlite_migrations.STEPS)
    with pytest.raises(StoreUnavailable, match=rf"from schema version 1 to {last}: step {last} failed: no such table"):
        SQLiteStore(release_file)
    assert user_version(release_file) == 1 and layout(release_file) == before


CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from octoqueue.job import NewJob
    from octoqueue.stores import _sqlite_migrations
    from octoqueue.stores.sqlite import SQLiteStore

    path, folder, step = Path(sys.argv[1]), Path(sys.argv[2]), tuple(json.loads(sys.argv[3]))
    _sqlite_migrations.STEPS = (*_sqlite_migrations.STEPS, step)
    (folder / f"ready-{os.getpid()}").touch()
    while not (folder / "go").exists():
        time.sleep(0.001)
    store = SQLiteStore(path)
    print(store.create(NewJob(data={"pid": os.getpid()}, title="child")).id)
    store.close()
    """
)


def test_processes_opening_an_old_file_at_once_migrate_it_once(release_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "sync"
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(octoqueue.__file__).parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(release_file), str(folder), json.dumps(EXTRA_STEP)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(folder.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
            time.sleep(0.01)
        (folder / "go").touch()
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * len(procs), outputs
    assert sorted(int(out) for out, _ in outputs) == [10, 11, 12, 13]
    assert user_version(release_file) == len(_sqlite_migrations.STEPS) + 1  # the children's extra step too
    conn = sqlite3.connect(release_file)
    try:
        assert conn.execute("SELECT COUNT(*) FROM step_runs").fetchone() == (1,)
    finally:
        conn.close()


def test_after_the_migration_labels_of_old_jobs_match_in_any_case(release_file: Path) -> None:
    store = SQLiteStore(release_file)
    try:
        pending = store.list_jobs(states=[JobState.PENDING], labels=["QUEUE:Mail"]).jobs
        assert [j.id for j in pending] == [1, 2, 3]  # 3 waits for its run_at: listed, not claimed
        assert [j.id for j in store.claim(worker="w", lease=60, labels=["Queue:MAIL"], limit=5)] == [2, 1]
    finally:
        store.close()
