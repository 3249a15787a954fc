"""The PostgreSQL store for asyncio: :class:`~octoqueue.stores.postgres.PostgresStore`'s code over psycopg's
``AsyncConnectionPool``.

Every statement, transaction and rule is the synchronous store's: :class:`BridgedPostgresStore` changes only where a
connection comes from (an async pool) and how a statement is sent (awaited, see :mod:`octoqueue.aio.bridge`), and
listens for arrivals in a task instead of a thread. :class:`AsyncPostgresStore` is the
:class:`~octoqueue.aio.store.AsyncStore` over it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from octoqueue.aio.bridge import TaskSignal, await_, await_through_cancel, awaiting, run_sync
from octoqueue.aio.store import BridgedStore
from octoqueue.job import Job
from octoqueue.stores.base import Arrival, Move
from octoqueue.stores.grouping import GroupSender
from octoqueue.stores.postgres.arrivals import AsyncArrivalListener
from octoqueue.stores.postgres.store import PostgresStore


class _Cursor:
    """A psycopg ``AsyncCursor`` read the way the store's code reads a cursor."""

    def __init__(self, cursor: psycopg.AsyncCursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return await_(self._cursor.fetchone())

    def fetchall(self) -> list[Any]:
        return await_(self._cursor.fetchall())


class _Connection:
    """A psycopg ``AsyncConnection`` used the way the store's code uses a connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Any = None) -> _Cursor:
        return _Cursor(await_(self._conn.execute(sql, params)))

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        return awaiting(self._conn.transaction())

    def pipeline(self) -> contextlib.AbstractContextManager[Any]:
        return awaiting(self._conn.pipeline())


class BridgedPostgresStore(PostgresStore):
    """:class:`PostgresStore` whose connections are a psycopg ``AsyncConnectionPool``'s; call it only through
    :func:`~octoqueue.aio.bridge.run_sync` (as :class:`AsyncPostgresStore` does)."""

    _pool_class = AsyncConnectionPool
    _pool_name = "octoqueue-aio"
    _pool_opened = False
    _async_listener: AsyncArrivalListener | None = None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        if not self._pool_opened:
            await_(self._pool.open(wait=False))
            self._pool_opened = True
        with awaiting(self._pool.connection()) as conn:
            yield _Connection(conn)

    def _group_transitions(self) -> Callable[[Move], Job | Exception]:
        # Tasks' transitions grouped as threads' are, each caller awaiting its turn instead of blocking the thread; a
        # batch is sent whole even when the task of the call that leads it is cancelled meanwhile.
        def send(moves: Sequence[Move]) -> list[Job | Exception]:
            return await_through_cancel(run_sync(self.transition_many, moves))

        return GroupSender(send, signal=TaskSignal)

    def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        if self._async_listener is None:
            self._async_listener = self._loop_listener()
        return await_(self._async_listener.add(callback))

    def close(self) -> None:
        if self._async_listener is not None:
            await_(self._async_listener.close())
            self._async_listener = None
        if self._pool_opened:
            await_(self._pool.close())


class AsyncPostgresStore(BridgedStore):
    """``postgresql://user@host:port/db?schema=octoqueue``, as :class:`PostgresStore`, for asyncio: every call
    awaited on psycopg's async connections (no thread), arrivals heard by a LISTEN task."""

    opens = BridgedPostgresStore
    store: BridgedPostgresStore


__all__ = ["AsyncPostgresStore", "BridgedPostgresStore"]
