"""The SQLite store never gives an id twice, without AUTOINCREMENT (schema version 4): the highest id given is kept in
jobs_top when the job holding it is deleted, across stores, restarts and the migration from a file that had
AUTOINCREMENT; and a single-job commit writes no sqlite_sequence page."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

from octoqueue.job import Job, NewJob
from octoqueue.states import JobState
from octoqueue.stores.sqlite import SQLiteStore

RELEASE_A70015E = Path(__file__).parent / "fixtures" / "sqlite-a70015e.db"


def _purge_finished(store: SQLiteStore) -> int:
    return store.purge(states=[JobState.COMPLETED, JobState.CANCELLED], older_than=store.now() + timedelta(seconds=5))


def _finish(store: SQLiteStore, job: Job) -> None:
    store.transition(job.id, expected=JobState.PENDING, target=JobState.CANCELLED)


def test_the_newest_job_purged_its_id_is_not_given_again_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ids.db"
    store = SQLiteStore(path)
    try:
        jobs = [store.create(NewJob(data={"n": n}, title="job")) for n in range(4)]
        for job in jobs[2:]:
            _finish(store, job)
        assert _purge_finished(store) == 2
    finally:
        store.close()
    again = SQLiteStore(path)
    try:
        assert again.create(NewJob(data={}, title="after")).id == jobs[-1].id + 1
    finally:
        again.close()


def test_every_job_purged_the_ids_go_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ids.db")
    try:
        jobs = [store.create(NewJob(data={"n": n}, title="job")) for n in range(3)]
        for job in jobs:
            _finish(store, job)
        assert _purge_finished(store) == 3
        assert store.count() == dict.fromkeys(JobState, 0)
        assert store.create(NewJob(data={}, title="after")).id == jobs[-1].id + 1
    finally:
        store.close()


def test_a_job_imported_above_the_newest_is_followed_by_the_next_id(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ids.db")
    try:
        first = store.create(NewJob(data={}, title="first"))
        imported = store.import_job(first.model_copy(update={"id": 40}))
        assert imported.id == 40
        _finish(store, imported)
        assert _purge_finished(store) == 1
        assert store.create(NewJob(data={}, title="next")).id == 41
    finally:
        store.close()


def test_a_file_whose_newest_job_was_purged_under_autoincrement_keeps_its_ids(tmp_path: Path) -> None:
    """Release a70015e's file (AUTOINCREMENT, jobs 1-9) with jobs 8 and 9 deleted before it is migrated: only its
    sqlite_sequence remembers 9, and the migration hands that on."""
    path = tmp_path / "release.db"
    shutil.copyfile(RELEASE_A70015E, path)
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM jobs WHERE id >= 8")
    conn.commit()
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone() == (9,)
    conn.close()
    store = SQLiteStore(path)
    try:
        assert (
            "AUTOINCREMENT"
            not in store._conn().execute("SELECT sql FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
        )
        assert store._conn().execute("SELECT * FROM sqlite_sequence WHERE name = 'jobs'").fetchall() == []
        assert store.create(NewJob(data={}, title="after")).id == 10
    finally:
        store.close()


def test_a_single_job_commit_writes_two_pages(tmp_path: Path) -> None:
    """The row's leaf and the jobs_runnable leaf: two WAL frames a job (three with AUTOINCREMENT's sqlite_sequence
    page), counted over 100 single-job commits with no checkpoint in between."""
    path = tmp_path / "frames.db"
    store = SQLiteStore(path)
    try:
        store._writer().execute("PRAGMA wal_autocheckpoint = 0")
        store.create(NewJob(data={}, title="warm"))
        wal = Path(f"{path}-wal")
        page = store._writer().execute("PRAGMA page_size").fetchone()[0]
        before = wal.stat().st_size
        for n in range(100):
            store.create(NewJob(data={"n": n}, title="job"))
        frames = (wal.stat().st_size - before) / (page + 24)
        assert 200 <= frames < 250, frames
    finally:
        store.close()
