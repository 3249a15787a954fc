"""The AsyncWorker: claims jobs and runs async handlers as asyncio tasks, keeps their leases alive, finishes them.

::

    worker = AsyncWorker(queue, concurrency=20)

    @worker.handler("fetch")
    async def fetch(data):
        ...
        return {"ok": True}

    await worker.run()          # until worker.stop(); run(once=True) drains what is runnable now

What a job's outcome means (retry or not, the error recorded, the fencing of the finish) is the Worker's
(:func:`octoqueue.worker.failure`, :class:`~octoqueue.worker.WorkerStats`); only the running differs: a task per
job instead of a thread, and a lease lost or a shutdown past its grace cancels the job's task.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from octoqueue.aio.bridge import run_sync
from octoqueue.aio.queue import AsyncQueue
from octoqueue.aio.store import AwaitingStore
from octoqueue.errors import (
    AccessDenied,
    ConfigurationError,
    JobTooLarge,
    LeaseLost,
    OctoqueueError,
    StateConflict,
)
from octoqueue.handlers import CommandHandler
from octoqueue.job import Job
from octoqueue.registry import register, unregister
from octoqueue.worker import JobReport, WorkerBase, WorkerStats, completed, failed, failure, unrecorded

log = logging.getLogger("octoqueue.aio.worker")

#: A handler: ``async def fn(data)`` or ``async def fn(data, job)``; a plain function runs in a worker thread.
AsyncHandler = Callable[..., Awaitable[Any]] | Callable[..., Any]


class AsyncWorker(WorkerBase[AsyncQueue, AsyncHandler]):
    """Runs jobs from an :class:`AsyncQueue`, ``concurrency`` at once (tasks on the event loop).

    ``handler``: one callable for every job, a :class:`~octoqueue.handlers.CommandHandler` (run in a thread), or
    None when handlers are registered per job type with :meth:`handler`. ``lease``: seconds a claim holds a job,
    renewed every ``lease / 3`` while it runs; a job whose lease is lost has its task cancelled. ``timeout``:
    seconds a handler may run (a job's own ``timeout`` wins); an async handler is cancelled then, a plain function
    is abandoned in its thread. ``on_failure``, ``labels``, ``ids``, ``recover_interval``, ``shutdown_grace`` and
    ``on_report`` are the :class:`~octoqueue.worker.Worker`'s (``register_every`` too: the worker's record in the
    store's ``workers`` setting; ``concurrency_per_type`` too, except that a claim waiting while every type it may
    take is at its limit notices a freed slot at its next poll, within ``poll_interval``). Jobs that finish together
    are completed in one call; where the store completes and claims in one round trip or transaction
    (``batches_claims``), that call also claims a job for each place they leave and starts it
    (:meth:`AsyncQueue.complete_and_claim`; not with ``max_jobs`` or ``concurrency_per_type``).
    """

    def _setup(self) -> None:
        self._stopping = asyncio.Event()
        self._held: dict[int, Job] = {}  # the jobs in hand, with their latest lease
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._ended: dict[int, str] = {}  # jobs whose task this worker cancelled: "lost" or "released"
        self._to_complete: asyncio.Queue[tuple[Job, Any, asyncio.Future[Job | Exception]]] = asyncio.Queue()
        self._take_next = False  # completions claim the jobs that take the finished ones' places (run() decides)

    # -- running -----------------------------------------------------------------------------------------------
    async def run(
        self, *, once: bool = False, max_jobs: int | None = None, install_signal_handlers: bool = False
    ) -> WorkerStats:
        """Work until :meth:`stop`, until ``max_jobs`` jobs were taken, or — with ``once`` — until no job is
        runnable; then let the jobs in hand finish (up to ``shutdown_grace`` seconds; those left are cancelled and
        released). ``install_signal_handlers``: SIGTERM/SIGINT stop the worker (leave it off inside a server that
        handles signals itself)."""
        if self.default_handler is None and not self.handlers:
            raise ConfigurationError("the worker has no handler: pass one or register with @worker.handler()")
        loop = asyncio.get_running_loop()
        self._stopping.clear()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        began = loop.time()
        taken = 0
        next_recover = 0.0
        beats = asyncio.create_task(self._heartbeats())
        completer = asyncio.create_task(self._completer()) if self.queue.store.batches_transitions else None
        # As the Worker: finished jobs' places are taken with their completions where that is one round trip, not
        # when counting jobs, and not with per-type limits (each claim needs the limits of its moment).
        self._take_next = completer is not None and self.queue.batches_claims and max_jobs is None
        self._take_next = self._take_next and not self.type_limits
        # As the Worker: a run for what is runnable now, or for given jobs, is too short to be worth two writes.
        registrar = None if once or self.ids is not None else asyncio.create_task(self._register())
        log.info("async worker %s started on %s", self.name, self.queue.store.url)
        try:
            while not self._stopping.is_set() and (max_jobs is None or taken < max_jobs):
                if loop.time() >= next_recover:
                    await self._recover()
                    next_recover = loop.time() + self.recover_interval
                free = self.concurrency - len(self._tasks)
                if free <= 0:
                    await self._until_one_ends()
                    continue
                full_types, room = self._type_room(self._held.values(), free)
                want = room if max_jobs is None else min(room, max_jobs - taken)
                wait = 0 if once else self._claim_wait(next_recover, loop.time())
                jobs = await self._claim(want, wait=wait, exclude_types=full_types)
                if not jobs:
                    if once and not self._tasks:
                        break
                    if once:
                        await self._until_one_ends()
                    continue
                for job in jobs:
                    taken += 1
                    self._begin(job)
        finally:
            await self._shutdown()
            beats.cancel()
            if completer is not None:
                completer.cancel()
            if registrar is not None:
                registrar.cancel()
                await self._settings_write(unregister, self.name)
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            self.stats.seconds = loop.time() - began
            log.info("async worker %s stopped: %s", self.name, self.stats.summary())
        return self.stats

    def stop(self) -> None:
        """Stop claiming; jobs in hand finish (or are released after ``shutdown_grace``). Call it on the loop."""
        self._stopping.set()
        self.queue.wake_claims()  # a claim waiting for jobs returns now

    def _begin(self, job: Job) -> None:
        """Take ``job`` in hand and start its task."""
        self._held[job.id] = job
        self._tasks[job.id] = asyncio.create_task(self._process(job), name=f"octoqueue-job-{job.id}")

    async def _until_one_ends(self) -> None:
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait(
                [*self._tasks.values(), stopping], timeout=self.poll_interval, return_when="FIRST_COMPLETED"
            )
        finally:
            stopping.cancel()

    async def _claim(self, count: int, wait: float, exclude_types: Collection[str] = ()) -> list[Job]:
        try:
            return await self.queue.claim_batch(
                count, wait=wait, poll_interval=self.poll_interval, exclude_types=exclude_types, **self._claim_filters()
            )
        except AccessDenied:
            raise  # waiting cannot fix credentials
        except OctoqueueError as exc:
            log.warning("claim failed, backing off: %s", exc)
            await asyncio.sleep(min(5.0, max(self.poll_interval, 1.0)))
            return []

    async def _recover(self) -> None:
        try:
            for job in await self.queue.recover_expired():
                log.warning("job %d: lease expired; now %s", job.id, job.status)
        except AccessDenied:
            raise
        except OctoqueueError as exc:
            log.warning("could not recover expired leases: %s", exc)

    async def _shutdown(self) -> None:
        self._stopping.set()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=self.shutdown_grace)
        for job_id, task in list(self._tasks.items()):
            self._ended[job_id] = "released"
            task.cancel()
            job = self._held[job_id]
            try:
                await self.queue.release(job)
                self.stats.released += 1
                log.info("job %d released unfinished at shutdown", job_id)
            except OctoqueueError as exc:
                log.warning("job %d could not be released (%s); its lease will expire", job_id, exc)
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    # -- the workers setting (octoqueue.registry) ---------------------------------------------------------------
    async def _register(self) -> None:
        host = socket.gethostname()
        while True:
            held = [job_id for job_id in self._held if job_id not in self._ended]
            await self._settings_write(register, self.name, host, held)
            await asyncio.sleep(self.register_every)

    async def _settings_write(self, write: Callable[..., None], *args: Any) -> None:
        """``write(store, *args)`` (the registry's functions), on the store through the bridge."""
        try:
            await run_sync(write, AwaitingStore(self.queue.store), *args)
        except OctoqueueError as exc:
            log.warning("worker %s: could not update its record in the workers setting: %s", self.name, exc)

    # -- leases ------------------------------------------------------------------------------------------------
    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.lease / 3))
            for job in [j for j in self._held.values() if j.id not in self._ended]:
                try:
                    renewed = await self.queue.heartbeat(job, self.lease)
                except (LeaseLost, StateConflict) as exc:
                    log.warning("job %d: lease lost (%s); cancelling its task", job.id, exc)
                    self._cancel(job.id, "lost")
                    continue
                except OctoqueueError as exc:
                    log.warning("job %d: heartbeat failed, will retry: %s", job.id, exc)
                    continue
                if job.id in self._held:
                    self._held[job.id] = renewed

    def _cancel(self, job_id: int, why: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None and job_id not in self._ended:
            self._ended[job_id] = why
            task.cancel()

    # -- one job -----------------------------------------------------------------------------------------------
    async def _process(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        report = JobReport(id=job.id, title=job.title, status="processing", attempt=job.attempt, seconds=0.0)
        try:
            try:
                try:
                    result = await self._execute(job)
                finally:
                    report.seconds = loop.time() - started
            except asyncio.CancelledError:
                if job.id not in self._ended:
                    raise  # not ours: the loop is going down
                report.status = self._ended[job.id]
                report.error = f"cancelled: the job was {report.status}"
                return
            except Exception as exc:
                error, retry, delay = failure(exc, self.on_failure)
                new = await self.queue.fail(self._held[job.id], error=error, retry=retry, delay=delay)
                failed(job, report, new, error, secret=self._secret)
            else:
                await self._finish_completed(job, report, result)
        except Exception as exc:
            unrecorded(job, report, exc)
        finally:
            self._tasks.pop(job.id, None)
            self._held.pop(job.id, None)
            self._ended.pop(job.id, None)
            if report.status != "released":
                self.stats.add(report)
                self._report(job, report)

    async def _execute(self, job: Job) -> Any:
        fn = self._resolve(job)
        timeout = job.timeout or self.timeout
        if isinstance(fn, CommandHandler):
            return await asyncio.to_thread(fn.run, job, timeout)
        args = self._arguments(fn, job)
        async with asyncio.timeout(timeout):
            if inspect.iscoroutinefunction(fn):
                return await fn(*args)
            return await asyncio.to_thread(fn, *args)

    async def _complete(self, held: Job, result: Any) -> Job:
        """``held`` completed with ``result``: one by one, or — on a store whose batches are one round trip — by
        :meth:`_completer` with the jobs that finish at the same moment, each still fenced by its attempt."""
        if not self.queue.store.batches_transitions:
            return await self.queue.complete(held, result=result)
        outcome: asyncio.Future[Job | Exception] = asyncio.get_running_loop().create_future()
        self._to_complete.put_nowait((held, result, outcome))
        done = await outcome
        if isinstance(done, Exception):
            raise done
        return done

    async def _completer(self) -> None:
        # As the Worker's completions: a job finishing while no call runs is completed at once, those finishing
        # during a call share the next one. A task of its own, so a job's task cancelled meanwhile cannot stall it.
        # Where the store completes and claims in one round trip, the call also claims a job for each place the
        # finished jobs leave, and starts it here: the claiming loop is not involved.
        while True:
            batch = [await self._to_complete.get()]
            while not self._to_complete.empty():
                batch.append(self._to_complete.get_nowait())
            held, results = [b[0] for b in batch], [b[1] for b in batch]
            taken: list[Job] = []
            try:
                if self._take_next and not self._stopping.is_set():
                    outcomes, taken = await self.queue.complete_and_claim(
                        held, results, len(batch), **self._claim_filters()
                    )
                else:
                    outcomes = await self.queue.complete_many(held, results)
            except Exception as exc:  # the whole call failed: every job in it gets the error
                outcomes = [exc] * len(batch)
            for job in taken:  # before the finished jobs' tasks end: a shutdown waiting for them sees these
                if self._stopping.is_set():  # stopped during the call: the job goes back unrun
                    await self._give_back(job)
                else:
                    self._begin(job)
            for (_, _, outcome), done in zip(batch, outcomes, strict=True):
                if not outcome.done():
                    outcome.set_result(done)

    async def _give_back(self, job: Job) -> None:
        try:
            await self.queue.release(job)
            self.stats.released += 1
        except OctoqueueError as exc:
            log.warning("job %d could not be released (%s); its lease will expire", job.id, exc)

    async def _finish_completed(self, job: Job, report: JobReport, result: Any) -> None:
        try:
            done = await self._complete(self._held[job.id], result)
        except JobTooLarge as exc:
            error = f"the result could not be stored: {exc}"
            new = await self.queue.fail(self._held[job.id], error=error, retry=False)
            failed(job, report, new, error, secret=self._secret)
            return
        completed(job, report, done, result, secret=self._secret)


__all__ = ["AsyncHandler", "AsyncWorker"]
