"""Probes and metrics: ``/health`` (the original's), ``/live``, ``/ready`` (checks the store), ``/metrics``."""

from __future__ import annotations

import threading
import time
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import generate_latest
from pydantic import BaseModel, Field

from octoqueue.api.auth import Caller, ReaderKey, Role
from octoqueue.api.context import RuntimeDep
from octoqueue.api.metrics import Metrics
from octoqueue.api.models import errors
from octoqueue.states import JobState
from octoqueue.stores.base import Store

router = APIRouter(tags=["health"])

#: A store check is reused this long, so frequent probes do not spend GitHub's rate limit.
READY_CACHE_SECONDS = 5.0
#: The Prometheus text format every Prometheus version reads (what prometheus_client itself serves by default).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Health(BaseModel):
    status: Literal["healthy"] = "healthy"
    timestamp: float


class Liveness(BaseModel):
    status: Literal["alive"] = "alive"


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    store: str | None = Field(None, description="The store's URL (admins only: it names files and hosts).")
    detail: str | None = Field(None, description="Why the store is unavailable (admins only).")


class ApiHealth(BaseModel):
    status: Literal["ok"] = "ok"


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up (it does not touch the store; see ``/ready``)."""
    return Health(timestamp=time.time())


@router.get("/live", response_model=Liveness)
async def live() -> Liveness:
    """Liveness probe: the event loop answers."""
    return Liveness()


@router.get("/api/health", response_model=ApiHealth, include_in_schema=True)
async def api_health() -> ApiHealth:
    """Starq's health path, for its CLI."""
    return ApiHealth()


_ready_lock = threading.Lock()


def store_problem(store: Store) -> str | None:
    """Why ``store`` cannot serve (one line), or None when it answers a cheap read."""
    try:
        store.count([JobState.PENDING])
    except Exception as exc:
        text = (str(exc) or repr(exc)).splitlines()
        return text[0] if text else type(exc).__name__
    return None


@router.get("/ready", response_model=Readiness, response_model_exclude_none=True, responses={503: {"model": Readiness}})
def ready(request: Request, runtime: RuntimeDep, caller: Caller) -> Response | Readiness:
    """Readiness probe: 200 when the store answers, 503 when it does not. The store's URL and the failure's
    detail are shown to admins only (no key is needed for the probe)."""
    now = time.monotonic()
    with _ready_lock:
        cached: tuple[float, Readiness] | None = getattr(request.app.state, "ready_cache", None)
    if cached is not None and now - cached[0] < READY_CACHE_SECONDS:
        result = cached[1]
    else:
        problem = store_problem(runtime.queue.store)
        if problem is None:
            result = Readiness(status="ready", store=runtime.queue.store.url)
        else:
            result = Readiness(status="unavailable", store=runtime.queue.store.url, detail=problem)
        with _ready_lock:
            request.app.state.ready_cache = (now, result)
    if not caller.can(Role.ADMIN):
        result = Readiness(status=result.status)
    if result.status != "ready":
        return JSONResponse(result.model_dump(exclude_none=True), status_code=503)
    return result


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format."},
        **errors(401),
    },
)
def metrics(request: Request, principal: ReaderKey) -> Response:
    """Prometheus metrics: jobs by state, claims, completions, failures, latencies, GitHub's budget left."""
    registry = request.app.state.metrics
    assert isinstance(registry, Metrics)
    return Response(generate_latest(registry.registry), media_type=METRICS_CONTENT_TYPE)


__all__ = ["router", "store_problem"]
