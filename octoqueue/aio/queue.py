"""The AsyncQueue: :class:`~octoqueue.queue.Queue`'s verbs as coroutines, for asyncio apps (FastAPI, ...).

Each verb runs the Queue's own code (:func:`~octoqueue.aio.bridge.run_sync`): the checks, the fencing, the result
comments, the sealing of payloads are the same rules, written once. Only the store calls differ: each is awaited
on the :class:`~octoqueue.aio.store.AsyncStore` (natively on PostgreSQL and Redis, in a worker thread elsewhere).
The verbs that wait (:meth:`AsyncQueue.claim` with ``wait``, :meth:`AsyncQueue.wait`, :meth:`AsyncQueue.result`)
wait on the event loop, woken by arrivals (NOTIFY on PostgreSQL, pub/sub on Redis) and by this queue's own changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from octoqueue.aio.bridge import await_, run_sync
from octoqueue.aio.store import AsyncStore, AwaitingStore, BridgedStore, as_async_store
from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.states import FINISHED
from octoqueue.stores.base import Store

P = ParamSpec("P")
R = TypeVar("R")


class _BridgedQueue(Queue):
    """The Queue whose code an AsyncQueue runs: a pause is awaited, not slept."""

    def _pause(self, seconds: float) -> None:
        await_(asyncio.sleep(seconds))


def _runs(
    method: Callable[Concatenate[Queue, P], R], *, finishes: bool = False
) -> Callable[Concatenate[AsyncQueue, P], Coroutine[Any, Any, R]]:
    """The AsyncQueue verb that runs ``method`` of the Queue; ``finishes``: it may finish a job (waiters look)."""

    @functools.wraps(method)
    async def verb(self: AsyncQueue, *args: P.args, **kwargs: P.kwargs) -> R:
        result = await run_sync(method, self._queue, *args, **kwargs)
        if finishes:
            self._wake(finished=True)
        return result

    verb.__qualname__ = f"AsyncQueue.{method.__name__}"
    return verb


class AsyncQueue:
    """A job queue over a store, for coroutines: the verbs of :class:`~octoqueue.queue.Queue`, awaited.

    ``store``: an :class:`~octoqueue.aio.store.AsyncStore`, a synchronous :class:`Store` (then run in threads), a
    URL (PostgreSQL and Redis get their native async store) or None (env ``OCTOQUEUE_STORE``). ``options`` are the
    Queue's (``retry``, ``max_attempts``, ``lease``, ``worker_name``, ``encryption_keys``, ``rate_limit_patience``).
    Use it as ``async with AsyncQueue(url) as queue:``, or call :meth:`close`.
    """

    def __init__(self, store: AsyncStore | Store | str | None = None, **options: Any) -> None:
        self.store: AsyncStore = as_async_store(store)
        # A bridged store's own code already awaits its client: the Queue calls it directly, one hop less.
        seen = self.store.store if isinstance(self.store, BridgedStore) else AwaitingStore(self.store)
        self._queue = _BridgedQueue(seen, **options)
        self._arrived = asyncio.Event()  # set (then replaced) when jobs may have arrived
        self._wakes = 0  # wake_claims() calls so far: a waiting claim returns after one
        self._finished = asyncio.Event()  # set (then replaced) when this queue finished a job
        self._listening: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def lease(self) -> float:
        return self._queue.lease

    @property
    def worker_name(self) -> str:
        return self._queue.worker_name

    @property
    def encrypted(self) -> bool:
        return self._queue.encrypted

    @property
    def hears_other_processes(self) -> bool:
        """As :attr:`Queue.hears_other_processes`: whether jobs from other processes wake this queue's claims."""
        return self._queue.hears_other_processes

    @property
    def batches_claims(self) -> bool:
        """Whether :meth:`complete_and_claim` is one round trip (or transaction) on this queue's store."""
        return self._queue.store.batches_claims

    @property
    def max_attempts(self) -> int:
        return self._queue.max_attempts

    async def __aenter__(self) -> AsyncQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await run_sync(self._queue.close)

    def __repr__(self) -> str:
        return f"AsyncQueue({self.store.url!r})"

    # -- the verbs, as the Queue has them --------------------------------------------------------------------------
    enqueue = _runs(Queue.enqueue)
    enqueue_job = _runs(Queue.enqueue_job)
    enqueue_many = _runs(Queue.enqueue_many)
    heartbeat = _runs(Queue.heartbeat)
    recover_expired = _runs(Queue.recover_expired)
    complete = _runs(Queue.complete, finishes=True)
    complete_many = _runs(Queue.complete_many, finishes=True)
    complete_and_claim = _runs(Queue.complete_and_claim, finishes=True)
    heartbeat_many = _runs(Queue.heartbeat_many)
    fail = _runs(Queue.fail, finishes=True)
    requeue = _runs(Queue.requeue)
    release = _runs(Queue.release)
    cancel = _runs(Queue.cancel, finishes=True)
    requeue_where = _runs(Queue.requeue_where)
    cancel_where = _runs(Queue.cancel_where, finishes=True)
    get = _runs(Queue.get)
    get_job_status = _runs(Queue.get_job_status)
    counts = _runs(Queue.counts)
    get_jobs = _runs(Queue.get_jobs)
    list_jobs = _runs(Queue.list_jobs)
    create_comment = _runs(Queue.create_comment)
    comments = _runs(Queue.comments)
    clear = _runs(Queue.clear)
    create_schedule = _runs(Queue.create_schedule)
    get_schedule = _runs(Queue.get_schedule)
    list_schedules = _runs(Queue.list_schedules)
    enable_schedule = _runs(Queue.enable_schedule)
    disable_schedule = _runs(Queue.disable_schedule)
    delete_schedule = _runs(Queue.delete_schedule)
    trigger_schedule = _runs(Queue.trigger_schedule)
    run_schedules = _runs(Queue.run_schedules)
    history = _runs(Queue.history)
    pause = _runs(Queue.pause)
    resume = _runs(Queue.resume)
    paused = _runs(Queue.paused)

    # -- the verbs that wait, on the event loop --------------------------------------------------------------------
    async def claim_batch(
        self, count: int, *, wait: float = 0, poll_interval: float = 0.5, **filters: Any
    ) -> list[Job]:
        """As :meth:`Queue.claim_batch` (``worker``, ``lease``, ``labels``, ``types``, ``ids`` as there); waiting
        for jobs (up to ``wait`` seconds) lets the loop run other tasks. A job enqueued through this AsyncQueue, or
        announced by the store from elsewhere, wakes the claim at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait)
        if wait > 0:
            await self._listen()
        wakes = self._wakes
        while True:
            arrived = self._arrived
            jobs = await run_sync(self._queue.claim_batch, count, **filters)
            remaining = deadline - loop.time()
            if jobs or remaining <= 0 or self._wakes != wakes:
                return jobs
            pause = poll_interval
            pauses = self._queue.pauses
            if not pauses.stale_within(0) and not pauses.current().any:  # the state the claim just read: no I/O
                pause = await run_sync(self._queue.idle_pause, poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), min(remaining, pause))

    def wake_claims(self) -> None:
        """As :meth:`Queue.wake_claims`: the claims waiting in this AsyncQueue try once more and return. Call it on
        the loop."""
        self._wakes += 1
        self._wake()

    async def claim(self, **options: Any) -> Job | None:
        """One job with a lease (options as :meth:`claim_batch`); None when none arrives within ``wait``."""
        jobs = await self.claim_batch(1, **options)
        return jobs[0] if jobs else None

    async def dequeue(self, wait_sec: float = 0) -> tuple[int, Any] | None:
        """As :meth:`Queue.dequeue`: ``(job_id, data)`` of a claimed job, or None."""
        job = await self.claim(wait=wait_sec)
        return (job.id, job.data) if job is not None else None

    async def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """As :meth:`Queue.wait`: the job once finished, or :class:`TimeoutError` after ``timeout`` seconds. A job
        this AsyncQueue finishes wakes it at once; one finished elsewhere is seen within the store's
        ``wait_poll_interval``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        poll = self.store.wait_poll_interval
        while True:
            finished = self._finished
            job = await self.get(job_id)
            if job.state in FINISHED:
                return job
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"job {job.id} is still {job.status or 'unlabelled'} after {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), poll if remaining is None else min(remaining, poll))

    async def result(self, job_id: int, timeout: float | None = 0) -> Any:
        """As :meth:`Queue.result`; with ``timeout`` (None: no limit) it first waits for the job to finish."""
        if timeout != 0:
            await self.wait(job_id, timeout)
        return await run_sync(self._queue.result, job_id, 0)

    async def count_open(self, wait_sec: float = 0) -> int:
        """As :meth:`Queue.count_open`: jobs pending or processing, counted after ``wait_sec`` seconds."""
        if wait_sec > 0:
            await asyncio.sleep(wait_sec)
        return await run_sync(self._queue.count_open)

    # -- internals -------------------------------------------------------------------------------------------------
    async def _listen(self) -> None:
        """Hear arrivals (this queue's and, where the store reports them, other processes'), from the first wait."""
        if self._listening is None:
            self._loop = asyncio.get_running_loop()
            self._listening = asyncio.ensure_future(run_sync(self._queue.add_arrival_listener, self._heard))
        try:
            await asyncio.shield(self._listening)
        except Exception:
            self._listening = None  # the next wait tries again
            raise

    def _heard(self, *_: Any) -> None:
        # From whichever thread the store reports on: wake the claimers on the loop's thread.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def _wake(self, *, finished: bool = False) -> None:
        event = self._finished if finished else self._arrived
        event.set()
        if finished:
            self._finished = asyncio.Event()
        else:
            self._arrived = asyncio.Event()


__all__ = ["AsyncQueue"]
