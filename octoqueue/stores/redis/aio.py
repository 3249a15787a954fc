"""The Redis store for asyncio: :class:`~octoqueue.stores.redis.RedisStore`'s code over ``redis.asyncio``.

The Lua scripts, the key layout and the rules are the synchronous store's: :class:`BridgedRedisStore` changes only
how a command, a pipeline and a script are sent (awaited on a ``redis.asyncio`` client, see
:mod:`octoqueue.aio.bridge`), and listens for arrivals in a task instead of a thread. :class:`AsyncRedisStore` is the
:class:`~octoqueue.aio.store.AsyncStore` over it. (A Redis Cluster is served by the threaded store.)
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio

from octoqueue.aio.bridge import await_
from octoqueue.aio.store import BridgedStore
from octoqueue.errors import ConfigurationError
from octoqueue.stores.redis.store import CONNECT_TIMEOUT, RedisStore


class BridgedRedisStore(RedisStore):
    """:class:`RedisStore` on a ``redis.asyncio`` client; call it only through
    :func:`~octoqueue.aio.bridge.run_sync` (as :class:`AsyncRedisStore` does)."""

    _watch_task: asyncio.Task[None] | None = None
    _subscribed: asyncio.Event | None = None

    @classmethod
    def _connect(cls, target: str, *, cluster: bool) -> Any:
        if cluster:
            raise ConfigurationError("the asyncio Redis store serves one Redis, not a cluster: use the threaded store")
        return redis.asyncio.Redis.from_url(target, decode_responses=True)

    def _command(self, *args: Any) -> Any:
        return await_(self._client.execute_command(*args))

    def _evaluate(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        return await_(script(keys=keys, args=args))

    def _pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        pipe: Any = self._client.pipeline(transaction=False)  # a redis.asyncio pipeline
        for command in commands:
            pipe.execute_command(*command)
        replies: list[Any] = await_(pipe.execute())
        return replies

    def _start_watching(self) -> None:
        if self._watch_task is None:
            self._subscribed = asyncio.Event()
            self._watch_task = asyncio.create_task(
                self._listen_on_loop(self._client, self._subscribed, self._tell), name="octoqueue-redis-arrivals"
            )
        assert self._subscribed is not None
        with contextlib.suppress(TimeoutError):
            await_(asyncio.wait_for(self._subscribed.wait(), CONNECT_TIMEOUT))

    def close(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await_(self._watch_task)
        client: Any = self._client  # a redis.asyncio client
        await_(client.aclose())


class AsyncRedisStore(BridgedStore):
    """``redis://[:password@]host:port/db?prefix=oq``, as :class:`RedisStore`, for asyncio: every command awaited
    on a ``redis.asyncio`` client (no thread), arrivals heard by a pub/sub task."""

    opens = BridgedRedisStore
    store: BridgedRedisStore


__all__ = ["AsyncRedisStore", "BridgedRedisStore"]
