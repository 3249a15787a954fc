"""The SQLite store's one write path: statements and transactions of several threads share a commit, each keeps its
own result and error, a failing transaction undoes only its own changes, and a write inside a write is refused
instead of waiting for itself."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from octoqueue.errors import StoreUnavailable
from octoqueue.stores._sqlite_group_commit import GroupCommit


class Writer:
    """A GroupCommit over a file with one table, recording the SQL its connection runs."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        self.sql: list[str] = []
        self.conn.set_trace_callback(self.sql.append)
        self.writes = GroupCommit(lambda: self.conn, str(path))

    def rows(self) -> list[tuple[Any, ...]]:
        return self.conn.execute("SELECT k, v FROM t ORDER BY k").fetchall()


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    w = Writer(tmp_path / "w.db")
    yield w
    w.conn.close()


def insert_two_then_fail(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO t VALUES ('tx1', 1)")
    db.execute("INSERT INTO t VALUES ('tx2', 2)")
    raise LookupError("no such thing")


def run_together(writer: Writer, calls: list[Callable[[], Any]]) -> list[Any]:
    """Hold the lead with a transaction until every call is queued behind it, so all of them share one commit."""
    release = threading.Event()
    results: list[Any] = [None] * len(calls)

    def hold(db: sqlite3.Connection) -> None:
        assert release.wait(30)

    def call(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    holder = threading.Thread(target=writer.writes.transaction, args=(hold,))
    holder.start()
    while writer.writes._running_in is None:
        time.sleep(0.001)
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(writer.writes._queued) < len(calls) and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    holder.join()
    for t in threads:
        t.join()
    return results


def test_writes_queued_together_share_one_commit_and_keep_their_own_outcomes(writer: Writer) -> None:
    writer.writes.statement("INSERT INTO t VALUES ('z', 0)")
    results = run_together(
        writer,
        [
            lambda: writer.writes.statement("INSERT INTO t VALUES ('a', 1) RETURNING k"),
            lambda: writer.writes.transaction(insert_two_then_fail),
            lambda: writer.writes.statement("INSERT INTO t VALUES ('z', 2) RETURNING k"),  # the key is taken
            lambda: writer.writes.transaction(lambda db: db.execute("INSERT INTO t VALUES ('b', 3)").rowcount),
        ],
    )
    assert results[0] == [("a",)] and results[3] == 1
    assert isinstance(results[1], LookupError) and isinstance(results[2], sqlite3.IntegrityError)
    assert writer.rows() == [("a", 1), ("b", 3), ("z", 0)]  # the failing transaction's rows are gone, the rest kept
    # one transaction for the write that held the lead, one shared by the four queued behind it
    assert writer.sql.count("BEGIN IMMEDIATE") == 2 and writer.sql.count("COMMIT") == 2
    assert writer.sql.count("SAVEPOINT write") == 2 and writer.sql.count("ROLLBACK TO write") == 1


def test_a_transaction_alone_that_fails_leaves_nothing_behind(writer: Writer) -> None:
    with pytest.raises(LookupError):
        writer.writes.transaction(insert_two_then_fail)
    assert not writer.conn.in_transaction
    assert writer.rows() == []
    assert writer.writes.transaction(lambda db: db.execute("INSERT INTO t VALUES ('c', 4)").rowcount) == 1
    assert writer.rows() == [("c", 4)]


def test_an_operational_error_fails_the_whole_shared_commit_clearly(writer: Writer) -> None:
    results = run_together(
        writer,
        [
            lambda: writer.writes.statement("INSERT INTO t VALUES ('a', 1)"),
            lambda: writer.writes.statement("INSERT INTO missing VALUES (1)"),
        ],
    )
    assert all(isinstance(r, StoreUnavailable) and "no such table: missing" in str(r) for r in results), results
    assert writer.rows() == [] and not writer.conn.in_transaction


def test_a_write_inside_a_write_is_refused(writer: Writer) -> None:
    def nested(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES ('outer', 1)")
        writer.writes.statement("INSERT INTO t VALUES ('inner', 2)")

    with pytest.raises(RuntimeError, match="cannot start another write"):
        writer.writes.transaction(nested)
    assert writer.rows() == []
