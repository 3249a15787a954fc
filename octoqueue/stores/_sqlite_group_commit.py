"""The one path by which a SQLite store writes: every thread of a process hands its write to :class:`GroupCommit`,
which runs it on the process's one writing connection, committed together with the writes other threads handed
in meanwhile.

Threads take turns: a connection that finds SQLite's lock taken sleeps in its busy handler (1 ms, 2 ms, 5 ms, ...),
far longer than a write takes, so threads wait on a ``threading.Lock`` instead (SQLite's lock still guards against
other processes). One connection keeps its page cache, which a commit by another connection would make it drop.
And each commit writes its dirty pages to the WAL, so several writes in one transaction cost little more than
one: the thread that finds no write running leads, runs every write queued so far in one transaction, then hands
the lead to the next waiter. Each write keeps its own effect, result and error.

A write is a :meth:`~GroupCommit.statement` (one SQL statement, atomic on its own), an
:meth:`~GroupCommit.insert` (one row; its id comes back) or a :meth:`~GroupCommit.transaction` (a function given
the connection; it runs inside a savepoint when it shares the commit, so its error undoes only its own changes).
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from octoqueue.errors import StoreUnavailable

T = TypeVar("T")
Rows = list[tuple[Any, ...]]


class _Write(ABC, Generic[T]):
    """One write waiting for its commit."""

    __slots__ = ("error", "lead", "ready", "result")

    def __init__(self) -> None:
        # A write that waits behind another gets a lock, held until it ran or it takes the lead (a bare lock:
        # cheaper than an Event). A write that finds none running leads at once and needs none.
        self.ready: threading.Lock | None = None
        self.lead = False
        self.result: T | None = None
        self.error: BaseException | None = None

    @abstractmethod
    def run_alone(self, conn: sqlite3.Connection) -> None:
        """Run as the commit's only write, its own transaction."""

    @abstractmethod
    def run_shared(self, conn: sqlite3.Connection) -> None:
        """Run inside a transaction that other writes share. An ``OperationalError`` (busy, I/O) propagates: the
        whole transaction is gone; any other error is this write's alone and has undone only its own changes."""

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class _Statement(_Write[Rows]):
    __slots__ = ("many", "params", "sql")

    def __init__(self, sql: str, params: list[Any] | tuple[Any, ...], many: bool) -> None:
        super().__init__()
        self.sql = sql
        self.params = params
        self.many = many

    def run_shared(self, conn: sqlite3.Connection) -> None:
        try:
            cursor = conn.execute(self.sql, self.params)
            if self.many:
                self.result = cursor.fetchall()
            else:
                row = cursor.fetchone()
                self.result = [] if row is None else [row]
        except sqlite3.OperationalError:
            raise
        except sqlite3.Error as exc:
            self.error = exc  # a bad parameter, a constraint: SQLite undid this statement only

    run_alone = run_shared  # one statement is a transaction of its own


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The id of the row the ``INSERT`` just run on ``cursor`` wrote."""
    row_id = cursor.lastrowid
    if row_id is None:
        raise sqlite3.ProgrammingError("the statement inserted no row")
    return row_id


class _Insert(_Write[int]):
    """One ``INSERT`` of one row; its result is the row's id (``lastrowid``, read before any other write runs on
    the connection: cheaper than ``RETURNING``, whose rows SQLite buffers and Python fetches)."""

    __slots__ = ("params", "sql")

    def __init__(self, sql: str, params: list[Any] | tuple[Any, ...]) -> None:
        super().__init__()
        self.sql = sql
        self.params = params

    def run_shared(self, conn: sqlite3.Connection) -> None:
        try:
            self.result = inserted_id(conn.execute(self.sql, self.params))
        except sqlite3.OperationalError:
            raise
        except sqlite3.Error as exc:
            self.error = exc  # a bad parameter, a constraint: SQLite undid this statement only

    run_alone = run_shared  # one statement is a transaction of its own


class _Transaction(_Write[T]):
    __slots__ = ("work",)

    def __init__(self, work: Callable[[sqlite3.Connection], T]) -> None:
        super().__init__()
        self.work = work

    def run_alone(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.result = self.work(conn)
        except BaseException as exc:
            _rollback_if_open(conn)
            if isinstance(exc, sqlite3.OperationalError) or not isinstance(exc, Exception):
                raise
            self.error = exc
            return
        _commit_or_rollback(conn)

    def run_shared(self, conn: sqlite3.Connection) -> None:
        conn.execute("SAVEPOINT write")
        try:
            self.result = self.work(conn)
        except sqlite3.OperationalError:
            raise
        except Exception as exc:
            conn.execute("ROLLBACK TO write")
            conn.execute("RELEASE write")
            self.error = exc
            return
        conn.execute("RELEASE write")


def _rollback_if_open(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # SQLite itself ends the transaction on some errors (a full disk, ...)
        conn.execute("ROLLBACK")


def _commit_or_rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:
        _rollback_if_open(conn)
        raise


class GroupCommit:
    """Writes of one process to one SQLite file, in turn and sharing commits. ``connect`` gives the writing
    connection (in autocommit mode); it is called under the lock, by whichever thread leads. ``committed``, when
    given, is called after each transaction that reached its commit (the WAL checkpointer's cue)."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], path: str, committed: Callable[[], None] | None = None
    ) -> None:
        self._connect = connect
        self._path = path
        self._committed = committed
        self._lock = threading.Lock()  # held while a commit runs
        self._queue_lock = threading.Lock()
        self._queued: list[_Write[Any]] = []
        self._leading = False
        self._running_in: int | None = None  # the thread running a commit's writes

    def held(self) -> threading.Lock:
        """The lock a commit holds while it runs: held, no write of this process runs (a context manager)."""
        return self._lock

    def statement(self, sql: str, params: list[Any] | tuple[Any, ...] = (), *, many: bool = False) -> Rows:
        """Run one SQL statement and return the rows it returns (the first only unless ``many``) once committed."""
        return self._submit(_Statement(sql, params, many))

    def insert(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> int:
        """Run one ``INSERT`` of one row and return the row's id once committed."""
        return self._submit(_Insert(sql, params))

    def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` in a transaction that holds SQLite's write lock from its start (so what it
        reads, no other process changes before it writes); return its result once committed. When ``work`` raises,
        its changes are undone and the error is raised here."""
        return self._submit(_Transaction(work))

    def _submit(self, write: _Write[T]) -> T:
        if self._running_in == threading.get_ident():
            raise RuntimeError("a write cannot start another write, which would wait for it: use the connection given")
        with self._queue_lock:
            if self._leading:
                write.ready = ready = threading.Lock()
                ready.acquire()
                self._queued.append(write)
            else:
                self._leading = write.lead = True
        if write.ready is None:
            batch = [write]
        else:
            write.ready.acquire()
            if not write.lead:
                return write.outcome()  # a leader ran it
            with self._queue_lock:
                batch, self._queued = self._queued, []  # this write and all queued behind it
        # This thread leads: commit the batch, then hand the lead to the next waiter, if any.
        try:
            self._run(batch)
        finally:
            with self._queue_lock:
                if self._queued:
                    successor = self._queued[0]
                    successor.lead = True
                    successor.ready.release()  # type: ignore[union-attr]
                else:
                    self._leading = False
        return write.outcome()

    def _run(self, batch: list[_Write[Any]]) -> None:
        try:
            with self._lock:
                self._running_in = threading.get_ident()
                try:
                    self._run_locked(batch)
                finally:
                    self._running_in = None
            if self._committed is not None:
                self._committed()
        except sqlite3.OperationalError as exc:
            error = StoreUnavailable(f"SQLite store {self._path} could not write (busy or failing): {exc}")
            error.__cause__ = exc
            for write in batch:
                write.result, write.error = None, error
        except BaseException as exc:
            for write in batch:
                write.result, write.error = None, exc
        finally:
            for write in batch:
                if not write.lead:
                    write.ready.release()  # type: ignore[union-attr]

    def _run_locked(self, batch: list[_Write[Any]]) -> None:
        conn = self._connect()
        if len(batch) == 1:
            batch[0].run_alone(conn)
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for write in batch:
                write.run_shared(conn)
        except BaseException:
            _rollback_if_open(conn)
            raise
        _commit_or_rollback(conn)
