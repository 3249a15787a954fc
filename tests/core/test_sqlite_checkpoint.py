"""The SQLite store's WAL checkpoints, run by a thread of their own (``_sqlite_checkpoint``): the writers' commits
no longer copy the WAL at 1,000 pages, the WAL stays bounded under writes that never pause and when a reader pins
it, and the thread stops with the store."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from octoqueue.job import NewJob
from octoqueue.stores._sqlite_checkpoint import CAP, Checkpointer, safety_net
from octoqueue.stores.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "ck.db")
    yield s
    s.close()


def _checkpointer(store: SQLiteStore) -> Checkpointer:
    assert store.checkpointer is not None
    return store.checkpointer


def _enqueue(store: SQLiteStore, n: int) -> None:
    for i in range(n):
        store.create(NewJob(title=f"job {i}", data={"i": i}))


def _wal_bytes(store: SQLiteStore) -> int:
    return Path(store.path + "-wal").stat().st_size


def test_the_writer_leaves_checkpoints_to_the_thread_until_the_cap(store: SQLiteStore) -> None:
    assert store._writer().execute("PRAGMA wal_autocheckpoint").fetchone() == (2 * CAP,)
    checkpointer = _checkpointer(store)
    checkpointer.pages, checkpointer.interval = 50, 0
    ran_on: list[str] = []
    step = checkpointer.step

    def recorded() -> bool:
        ran = step()
        if ran:
            ran_on.append(threading.current_thread().name)
        return ran

    checkpointer.step = recorded  # type: ignore[method-assign]
    _enqueue(store, 100)
    assert checkpointer.wait_for(1, timeout=30)
    assert set(ran_on) == {"octoqueue-sqlite-checkpoint"}


class _Pinned:
    """The checkpointer's connection, and a reader whose snapshot keeps each ``PASSIVE`` checkpoint from copying the
    last commits, as commits landing while it copies do under writes that never pause; the reader lets go as the
    checkpoint returns."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def pin(self) -> None:
        self.reader.execute("BEGIN")
        self.reader.execute("SELECT COUNT(*) FROM jobs").fetchone()

    def execute(self, sql: str) -> sqlite3.Cursor:
        cursor = self.conn.execute(sql)
        if sql == "PRAGMA wal_checkpoint(PASSIVE)" and self.reader.in_transaction:
            self.reader.execute("COMMIT")
        return cursor

    def close(self) -> None:
        self.reader.close()
        self.conn.close()


def test_the_wal_stays_bounded_under_constant_writes(store: SQLiteStore) -> None:
    # The test plays the thread: a checkpointer of its own, stepped between rounds of writes; the store's own
    # thread and the writer's safety net stand aside.
    _checkpointer(store).pages = _checkpointer(store).cap = 10**9
    safety_net(store._writer(), 0)
    pinned = _Pinned(store.path)
    held = 0

    def writes_held() -> threading.Lock:
        nonlocal held
        held += 1
        return store._writes.held()

    checkpointer = Checkpointer(lambda: pinned, store.path, writes_held=writes_held, pages=50, cap=200)  # type: ignore[arg-type,return-value]
    largest = 0
    try:
        for round_no in range(1, 21):
            _enqueue(store, 100)
            pinned.pin()
            _enqueue(store, 50)  # frames the checkpoint below leaves behind
            largest = max(largest, _wal_bytes(store))
            assert checkpointer.step()
            assert held == round_no  # the WAL had reached the cap: the frames left were copied, writes held
            assert checkpointer.waiting() == 0  # so the next write starts the WAL over
    finally:
        checkpointer.close()
    # 3,000 jobs wrote ~10,000 pages; the WAL never held much more than the cap
    assert largest <= (200 + 600) * (4096 + 24) + 32
    assert checkpointer.truncates == 0
    assert len(list(store.iter_jobs())) == 3000


def _plain_file(path: Path) -> sqlite3.Connection:
    """A WAL file with one table, whose writing connection never checkpoints itself."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    safety_net(conn, 0)
    conn.execute("CREATE TABLE t (v BLOB)")
    return conn


def test_a_pinned_wal_is_truncated_or_started_over_once_the_reader_has_gone(tmp_path: Path) -> None:
    path = tmp_path / "pinned.db"
    writer = _plain_file(path)
    checkpointer = Checkpointer(
        lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False),
        str(path),
        pages=10,
        cap=100,
        interval=0,
    )
    reader = sqlite3.connect(path, isolation_level=None)
    wal = Path(f"{path}-wal")
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM t").fetchone()  # a snapshot the checkpoints may not copy past
        for _ in range(200):
            writer.execute("INSERT INTO t VALUES (randomblob(1000))")
        assert checkpointer.step()
        assert checkpointer.truncates == 1  # tried, and gave up after TRUNCATE_WAIT_MS: the reader is still there
        assert wal.stat().st_size > 100 * 4096
        reader.execute("COMMIT")
        assert checkpointer.step()
        assert checkpointer.waiting() == 0  # all copied now: the next write starts the WAL over
        assert checkpointer.truncates == 1
        writer.execute("INSERT INTO t VALUES (randomblob(1000))")
        waiting = checkpointer.waiting()
        assert waiting is not None and 0 < waiting <= 3  # from the WAL's beginning
        assert reader.execute("SELECT COUNT(*) FROM t").fetchone() == (201,)
    finally:
        reader.close()
        writer.close()
        checkpointer.close()


def test_little_to_copy_means_no_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "little.db"
    writer = _plain_file(path)
    checkpointer = Checkpointer(lambda: sqlite3.connect(path, isolation_level=None), str(path), pages=50, cap=100)
    try:
        for _ in range(3):
            writer.execute("INSERT INTO t VALUES (randomblob(10))")
        waiting = checkpointer.waiting()
        assert waiting is not None and 3 <= waiting < 50  # the table's creation and three inserts
        assert not checkpointer.step()
        assert checkpointer.checkpoints == 0
    finally:
        writer.close()
        checkpointer.close()


def test_the_thread_stops_with_the_store_and_starts_again_with_its_next_write(store: SQLiteStore) -> None:
    checkpointer = _checkpointer(store)
    _enqueue(store, 1)
    first = checkpointer._thread
    assert first is not None and first.is_alive()
    store.close()
    assert not first.is_alive()
    assert checkpointer._thread is None and checkpointer._conn is None
    _enqueue(store, 1)  # a closed store reopens its connections, and its checkpointer its thread
    second = checkpointer._thread
    assert second is not None and second is not first and second.is_alive()
    store.close()
    assert not second.is_alive()


def test_the_thread_ends_when_no_write_comes(store: SQLiteStore) -> None:
    checkpointer = _checkpointer(store)
    checkpointer.idle = 0  # no write within 0 s of the last
    _enqueue(store, 1)
    first = checkpointer._thread
    assert first is not None
    first.join(timeout=30)
    assert not first.is_alive()
    assert checkpointer._thread is None
    checkpointer.idle = 60
    _enqueue(store, 1)
    second = checkpointer._thread
    assert second is not None and second is not first and second.is_alive()


def test_an_in_memory_store_has_no_checkpointer() -> None:
    s = SQLiteStore(":memory:")
    try:
        assert s.checkpointer is None
        _enqueue(s, 2)
    finally:
        s.close()


@pytest.mark.parametrize(("pages", "cap", "interval"), [(0, 10, 0.1), (20, 10, 0.1), (10, 20, -1)])
def test_bad_settings_are_refused(tmp_path: Path, pages: int, cap: int, interval: float) -> None:
    with pytest.raises(ValueError, match=r"pages|interval"):
        Checkpointer(
            lambda: sqlite3.connect(tmp_path / "x.db"), str(tmp_path / "x.db"), pages=pages, cap=cap, interval=interval
        )
