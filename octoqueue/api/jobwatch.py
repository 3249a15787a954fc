"""``GET /jobs/{id}?wait=N``'s waiters, served by one poller and capped in number.

Each waiter used to re-read its job on its own every quarter second, so a few thousand idle waiters (they need no
key when reads are open) kept the server busy reading the store. Now one poller per server re-reads each awaited
job once a round, however many wait for it, and wakes its waiters when it is finished; beyond ``max_waiters`` a
new waiter is refused (the route answers 503 with ``Retry-After``) instead of loading the server further.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi.concurrency import run_in_threadpool

from octoqueue.job import Job
from octoqueue.states import FINISHED


class TooManyWaiters(Exception):
    """As many requests wait for jobs as the server allows."""


class JobWatch:
    """Waits for jobs to finish. ``read`` reads a job from the store (in a thread); ``interval``: seconds between
    the poller's rounds."""

    def __init__(self, read: Callable[[int], Job], *, interval: float, max_waiters: int) -> None:
        self._read = read
        self.interval = interval
        self.max_waiters = max_waiters
        self._waiters: dict[int, set[asyncio.Future[Job]]] = {}
        self._latest: dict[int, Job] = {}
        self._poller: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(len(futures) for futures in self._waiters.values())

    async def wait(self, job: Job, timeout: float) -> Job:
        """``job`` once it is finished, or as last seen when ``timeout`` seconds pass first; raise
        :class:`TooManyWaiters` when ``max_waiters`` requests wait already, or the store's error when it fails."""
        if job.state in FINISHED or timeout <= 0:
            return job
        if self.waiting >= self.max_waiters:
            raise TooManyWaiters(f"{self.max_waiters} requests are waiting for jobs already")
        finished: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job.id, set()).add(finished)
        self._latest.setdefault(job.id, job)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_while_waited(), name="octoqueue-job-watch")
        try:
            return await asyncio.wait_for(finished, timeout)
        except TimeoutError:
            return self._latest.get(job.id, job)
        finally:
            self._forget(job.id, finished)

    def _forget(self, job_id: int, finished: asyncio.Future[Job]) -> None:
        futures = self._waiters.get(job_id)
        if futures is not None:
            futures.discard(finished)
            if not futures:
                del self._waiters[job_id]
                self._latest.pop(job_id, None)

    async def _poll_while_waited(self) -> None:
        while self._waiters:
            await asyncio.sleep(self.interval)
            await self.poll()

    async def poll(self) -> None:
        """One round: read each awaited job once; wake the waiters of those finished (or hand them the error)."""
        for job_id in list(self._waiters):
            try:
                job = await run_in_threadpool(self._read, job_id)
            except Exception as exc:
                for future in self._pending(job_id):
                    future.set_exception(exc)
                continue
            if job_id in self._waiters:
                self._latest[job_id] = job
            if job.state in FINISHED:
                for future in self._pending(job_id):
                    future.set_result(job)

    def _pending(self, job_id: int) -> list[asyncio.Future[Job]]:
        return [future for future in self._waiters.get(job_id, ()) if not future.done()]


__all__ = ["JobWatch", "TooManyWaiters"]
