"""What one server process shares between requests, built once at startup: the Queue (one store, one GitHub
client) and the caches in front of its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request

from octoqueue.api.chatops_access import ChatOpsAccess
from octoqueue.api.cursors import CursorSigner
from octoqueue.api.deliveries import DeliveryLog
from octoqueue.api.jobschema import JobSchema
from octoqueue.api.longpoll import ArrivalSignal
from octoqueue.api.metrics import Metrics
from octoqueue.api.queues import QueueRegistry
from octoqueue.api.settings import Settings
from octoqueue.queue import Queue

if TYPE_CHECKING:
    from octoqueue.schedules import Scheduler
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
    arrivals: ArrivalSignal = field(default_factory=ArrivalSignal)
    worker: Worker | None = None  # the in-process worker (--worker), once started
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
        )


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain-def dependency in its threadpool, a thread hop per request for an attribute read.
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise HTTPException(503, detail="The server is starting or stopping")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

__all__ = ["Runtime", "RuntimeDep", "get_runtime"]
