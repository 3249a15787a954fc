"""The async store protocol, and the two ways octoqueue's stores meet it.

:class:`AsyncStore` is :class:`~octoqueue.stores.base.Store` with every verb a coroutine. The contract, and the
rules behind it, are the synchronous store's; an async store keeps them by running the same code:

* :class:`BridgedStore`: a store whose I/O goes through a native async client (PostgreSQL through psycopg's
  ``AsyncConnectionPool``, Redis through ``redis.asyncio``): the synchronous store's own code (its SQL, its Lua
  scripts, the shared rules) runs on the event loop, each round trip awaited (see :mod:`octoqueue.aio.bridge`).
* :class:`ThreadedStore`: any other store (memory, SQLite, S3 through boto3, GitHub), each call made in a worker
  thread with :func:`asyncio.to_thread`: those clients have no async API worth the name (SQLite and boto3 block).

:func:`open_async_store` picks the native store where there is one, and a threaded one otherwise.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from octoqueue.aio.bridge import await_, run_sync
from octoqueue.job import Comment, Job, NewJob, Page
from octoqueue.states import JobState, LabelScheme
from octoqueue.stores import DEFAULT_STORE_URL, open_store
from octoqueue.stores.base import Arrival, Move, Store

R = TypeVar("R")

#: scheme -> "module:factory" of the stores with a native async client; the factory takes the URL and options.
ASYNC_SCHEMES: dict[str, str] = {
    "postgresql": "octoqueue.stores.postgres.aio:AsyncPostgresStore.from_url",
    "postgres": "octoqueue.stores.postgres.aio:AsyncPostgresStore.from_url",
    "redis": "octoqueue.stores.redis.aio:AsyncRedisStore.from_url",
    "rediss": "octoqueue.stores.redis.aio:AsyncRedisStore.from_url",
}


@runtime_checkable
class AsyncStore(Protocol):
    """Where jobs live, for a coroutine. Each verb keeps the contract of the :class:`Store` verb of its name."""

    url: str
    labels: LabelScheme
    wait_poll_interval: float
    max_comment_chars: int
    batches_transitions: bool

    async def now(self) -> datetime: ...
    async def create(self, new: NewJob) -> Job: ...
    async def create_many(self, items: Sequence[NewJob]) -> list[Job]: ...
    async def get(self, job_id: int) -> Job: ...
    async def list_jobs(self, **filters: Any) -> Page:
        """Filters as :meth:`Store.list_jobs`."""

    async def claim(self, **options: Any) -> list[Job]:
        """Options as :meth:`Store.claim`."""

    async def transition(self, job_id: int, **options: Any) -> Job:
        """Options (``expected``, ``target``, ``attempt``, changes) as :meth:`Store.transition`."""

    async def transition_many(self, moves: Sequence[Move]) -> list[Job | Exception]: ...
    async def recover_expired(self, *, limit: int = 100) -> list[Job]: ...
    async def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]: ...
    async def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]: ...
    async def purge(self, *, states: Collection[JobState], older_than: datetime) -> int: ...
    async def comment(self, job_id: int, body: str) -> Comment: ...
    async def comments(self, job_id: int) -> list[Comment]: ...
    async def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job: ...
    async def get_setting(self, key: str) -> Any: ...
    async def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any: ...
    async def set_setting(self, key: str, value: Any) -> None: ...

    async def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        """As :meth:`Store.watch_arrivals`; ``callback`` may be called from any thread."""

    async def close(self) -> None: ...


class _OverStore:
    """An :class:`AsyncStore` that makes each call on a synchronous :class:`Store`, through :meth:`_call`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.url = store.url
        self.labels = store.labels
        self.wait_poll_interval = store.wait_poll_interval
        self.max_comment_chars = store.max_comment_chars
        self.batches_transitions = store.batches_transitions
        self.batches_claims = store.batches_claims

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    async def _call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        raise NotImplementedError

    async def now(self) -> datetime:
        return await self._call(self.store.now)

    async def create(self, new: NewJob) -> Job:
        return await self._call(self.store.create, new)

    async def create_many(self, items: Sequence[NewJob]) -> list[Job]:
        return await self._call(self.store.create_many, items)

    async def get(self, job_id: int) -> Job:
        return await self._call(self.store.get, job_id)

    async def list_jobs(self, **filters: Any) -> Page:
        return await self._call(self.store.list_jobs, **filters)

    async def claim(self, **options: Any) -> list[Job]:
        return await self._call(self.store.claim, **options)

    async def transition(self, job_id: int, **options: Any) -> Job:
        return await self._call(self.store.transition, job_id, **options)

    async def transition_many(self, moves: Sequence[Move]) -> list[Job | Exception]:
        return await self._call(self.store.transition_many, moves)

    async def transition_and_claim(
        self, moves: Sequence[Move], **claim: Any
    ) -> tuple[list[Job | Exception], list[Job]]:
        """As :meth:`Store.transition_and_claim` (claim options as there)."""
        return await self._call(self.store.transition_and_claim, moves, **claim)

    async def recover_expired(self, *, limit: int = 100) -> list[Job]:
        return await self._call(self.store.recover_expired, limit=limit)

    async def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]:
        return await self._call(self.store.recently_changed, states, limit=limit)

    async def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        return await self._call(self.store.count, states)

    async def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        return await self._call(self.store.purge, states=states, older_than=older_than)

    async def comment(self, job_id: int, body: str) -> Comment:
        return await self._call(self.store.comment, job_id, body)

    async def comments(self, job_id: int) -> list[Comment]:
        return await self._call(self.store.comments, job_id)

    async def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        return await self._call(self.store.import_job, job, comments)

    async def get_setting(self, key: str) -> Any:
        return await self._call(self.store.get_setting, key)

    async def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        return await self._call(self.store.update_setting, key, update)

    async def set_setting(self, key: str, value: Any) -> None:
        await self._call(self.store.set_setting, key, value)

    async def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        return await self._call(self.store.watch_arrivals, callback)

    async def close(self) -> None:
        await self._call(self.store.close)


class ThreadedStore(_OverStore):
    """A synchronous store made async: each call runs in a worker thread (:func:`asyncio.to_thread`). For the
    stores without a native async client: memory, SQLite, S3 (boto3), GitHub."""

    async def _call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await asyncio.to_thread(fn, *args, **kwargs)


class BridgedStore(_OverStore):
    """A store whose synchronous code does its I/O through :func:`~octoqueue.aio.bridge.await_` on a native async
    client: each call runs that code on the event loop (:func:`~octoqueue.aio.bridge.run_sync`), no thread.
    A subclass names in :attr:`opens` the store class a URL opens."""

    opens: ClassVar[Any]

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Open the store of ``url`` (options as the synchronous store's)."""
        return cls(cls.opens.from_url(url, **options))

    async def _call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await run_sync(fn, *args, **kwargs)


class AwaitingStore(Store):
    """An :class:`AsyncStore` seen as a :class:`Store`: each verb waits for the async store's with ``wait`` — by
    default :func:`~octoqueue.aio.bridge.await_` (what the Queue's code sees inside an AsyncQueue); a test runs the
    store contract kit on a native async store with a ``wait`` that runs the coroutine on a loop of its own."""

    def __init__(self, inner: AsyncStore, wait: Callable[[Awaitable[Any]], Any] = await_) -> None:
        super().__init__(inner.labels)
        self.inner = inner
        self._wait = wait
        self.url = inner.url
        self.wait_poll_interval = inner.wait_poll_interval
        self.max_comment_chars = inner.max_comment_chars
        self.batches_transitions = inner.batches_transitions
        # An async store that offers transition_and_claim (octoqueue's do) and says it is one round trip.
        self.batches_claims = bool(getattr(inner, "batches_claims", False)) and hasattr(inner, "transition_and_claim")

    def now(self) -> datetime:
        return self._wait(self.inner.now())

    def create(self, new: NewJob) -> Job:
        return self._wait(self.inner.create(new))

    def create_many(self, items: Sequence[NewJob]) -> list[Job]:
        return self._wait(self.inner.create_many(items))

    def get(self, job_id: int) -> Job:
        return self._wait(self.inner.get(job_id))

    def list_jobs(self, **filters: Any) -> Page:  # type: ignore[override]
        return self._wait(self.inner.list_jobs(**filters))

    def claim(self, **options: Any) -> list[Job]:  # type: ignore[override]
        return self._wait(self.inner.claim(**options))

    def transition(self, job_id: int, **options: Any) -> Job:  # type: ignore[override]
        return self._wait(self.inner.transition(job_id, **options))

    def transition_many(self, moves: Sequence[Move]) -> list[Job | Exception]:
        return self._wait(self.inner.transition_many(moves))

    def transition_and_claim(  # type: ignore[override]
        self, moves: Sequence[Move], **claim: Any
    ) -> tuple[list[Job | Exception], list[Job]]:
        if not self.batches_claims:
            return super().transition_and_claim(moves, **claim)
        both: Any = self.inner.transition_and_claim  # type: ignore[attr-defined]
        return self._wait(both(moves, **claim))

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        return self._wait(self.inner.recover_expired(limit=limit))

    def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]:
        return self._wait(self.inner.recently_changed(states, limit=limit))

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        return self._wait(self.inner.count(states))

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        return self._wait(self.inner.purge(states=states, older_than=older_than))

    def comment(self, job_id: int, body: str) -> Comment:
        return self._wait(self.inner.comment(job_id, body))

    def comments(self, job_id: int) -> list[Comment]:
        return self._wait(self.inner.comments(job_id))

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        return self._wait(self.inner.import_job(job, comments))

    def get_setting(self, key: str) -> Any:
        return self._wait(self.inner.get_setting(key))

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        return self._wait(self.inner.update_setting(key, update))

    def set_setting(self, key: str, value: Any) -> None:
        self._wait(self.inner.set_setting(key, value))

    def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        return self._wait(self.inner.watch_arrivals(callback))

    def close(self) -> None:
        self._wait(self.inner.close())


def open_async_store(url: str | None = None, **options: Any) -> AsyncStore:
    """The store ``url`` names (as :func:`~octoqueue.stores.open_store`), async: native for PostgreSQL and Redis,
    a :class:`ThreadedStore` for the others. Opening may block briefly (a schema check): do it at startup."""
    url = url or os.environ.get("OCTOQUEUE_STORE") or DEFAULT_STORE_URL
    if urlsplit(url).scheme.lower() not in ASYNC_SCHEMES:
        return ThreadedStore(open_store(url, **options))
    module_name, _, attr = ASYNC_SCHEMES[urlsplit(url).scheme.lower()].partition(":")
    factory: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        factory = getattr(factory, part)
    made: AsyncStore = factory(url, **options)
    return made


def as_async_store(store: AsyncStore | Store | str | None) -> AsyncStore:
    """``store`` as an :class:`AsyncStore`: a URL (or None: env ``OCTOQUEUE_STORE``) opened by
    :func:`open_async_store`, a synchronous :class:`Store` in a :class:`ThreadedStore`."""
    if isinstance(store, Store):
        return ThreadedStore(store)
    if store is None or isinstance(store, str):
        return open_async_store(store)
    return store


__all__ = [
    "ASYNC_SCHEMES",
    "AsyncStore",
    "AwaitingStore",
    "BridgedStore",
    "ThreadedStore",
    "as_async_store",
    "open_async_store",
]
