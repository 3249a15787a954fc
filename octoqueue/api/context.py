"""What one server process shares between requests, built once at startup: the Queue (one store, one GitHub
client) and the caches in front of its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request

from octoqueue.api.chatops_access import ChatOpsAccess
from octoqueue.api.cursors import CursorSigner
from octoqueue.api.deliveries import DeliveryLog
from octoqueue.api.jobschema import CachedSetting, JobSchema
from octoqueue.api.jobwatch import JobWatch
from octoqueue.api.longpoll import ArrivalSignal
from octoqueue.api.metrics import Metrics
from octoqueue.api.queues import QueueRegistry
from octoqueue.api.settings import Settings
from octoqueue.api.threadbatch import ThreadBatches
from octoqueue.queue import Queue
from octoqueue.schedules import SETTING_KEY as SCHEDULES_SETTING
from octoqueue.stores.base import WakesWorkflows

if TYPE_CHECKING:
    from octoqueue.schedules import Schedule, Scheduler
    from octoqueue.worker import Worker


@dataclass
class Runtime:
    settings: Settings
    queue: Queue
    metrics: Metrics
    job_schema: JobSchema
    queues: QueueRegistry
    deliveries: DeliveryLog
    cursors: CursorSigner
    access: ChatOpsAccess
    #: The schedules as anyone may read them (``/schedules``, the dashboard), cached like /metrics' counts: on
    #: GitHub every store read is a request of the token's budget, and reads need no write role.
    schedule_reads: CachedSetting
    #: The requests waiting for jobs to finish (``GET /jobs/{id}?wait=``), served by one poller.
    job_watch: JobWatch
    arrivals: ArrivalSignal = field(default_factory=ArrivalSignal)
    #: Short blocking calls (a job's store write), sent to a thread together when made in the same loop turn.
    thread_batches: ThreadBatches = field(default_factory=ThreadBatches)
    worker: Worker | None = None  # the in-process worker (--worker), once started
    #: The store, when it starts a workflow for each job it creates (checked once: a Protocol check costs ~10 µs).
    workflow_waker: WakesWorkflows | None = field(init=False, default=None)
    scheduler: Scheduler | None = None  # the in-process scheduler (--scheduler), once started

    @classmethod
    def build(cls, settings: Settings, queue: Queue, metrics: Metrics) -> Runtime:
        ttl = settings.settings_cache_seconds
        return cls(
            settings=settings,
            queue=queue,
            metrics=metrics,
            job_schema=JobSchema(queue.store, ttl),
            queues=QueueRegistry(queue.store, ttl),
            deliveries=DeliveryLog(queue.store),
            cursors=CursorSigner(queue.store),
            access=ChatOpsAccess(queue.store, repository=settings.webhook_repo, trusted=settings.trusted_users),
            schedule_reads=CachedSetting(queue.store, SCHEDULES_SETTING, settings.metrics_cache_seconds),
            job_watch=JobWatch(
                queue.get, interval=max(0.25, queue.store.wait_poll_interval), max_waiters=settings.max_job_waiters
            ),
        )

    def __post_init__(self) -> None:
        store = self.queue.store
        self.workflow_waker = store if isinstance(store, WakesWorkflows) else None

    def schedules(self) -> list[Schedule]:
        """Every valid schedule, read through :attr:`schedule_reads`."""
        return self.queue.schedules.parse(self.schedule_reads.get())


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain-def dependency in its threadpool, a thread hop per request for an attribute read.
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise HTTPException(503, detail="The server is starting or stopping")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

__all__ = ["Runtime", "RuntimeDep", "get_runtime"]
