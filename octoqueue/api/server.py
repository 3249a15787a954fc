"""The application factory: routers, middleware, error mapping, and the process-wide Queue built at startup."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from octoqueue import __version__
from octoqueue.api import admin, health, jobs, pauses, schedules, ui, webhooks, workers
from octoqueue.api.auth import API_KEY_HEADER, KeyRing, identify_caller, require_read
from octoqueue.api.bodylimit import BodyLimitMiddleware
from octoqueue.api.context import Runtime
from octoqueue.api.docs import install_docs
from octoqueue.api.duplicatekeys import DuplicateKeyMiddleware
from octoqueue.api.health import store_problem
from octoqueue.api.longpoll import QueueWatcher
from octoqueue.api.metrics import Metrics, RequestMetricsMiddleware
from octoqueue.api.models import status_of
from octoqueue.api.ratelimit import RateLimiter
from octoqueue.api.settings import Settings
from octoqueue.errors import (
    OctoqueueError,
    RateLimited,
)
from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy
from octoqueue.schedules import Scheduler
from octoqueue.sealing import KEY_ENV, is_encrypted
from octoqueue.states import LabelScheme
from octoqueue.stores import open_store

if TYPE_CHECKING:
    from octoqueue.worker import Worker

log = logging.getLogger("octoqueue.api")

DESCRIPTION = """\
octoqueue's HTTP API: create jobs (the original Octoqueue's `/create-job`), manage the job-data schema, run
workers over plain HTTP (Starq-compatible `/api/v1`), receive GitHub webhooks, and probe health and metrics.

Authentication: the `X-API-Key` header; what a key may do depends on its roles (producer, worker, reader, admin).
"""

ROUTERS = (
    jobs.router,
    admin.router,
    pauses.router,
    schedules.router,
    workers.router,
    webhooks.router,
    health.router,
    ui.router,
)


_QUERY_NAMES: dict[int, frozenset[str]] = {}


async def reject_unknown_query(request: Request) -> None:
    """422 for query parameters an operation does not declare, as for unknown body fields: a misspelt
    ``?stauts=failed`` is an error the caller should see, not a filter silently ignored."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    allowed = _QUERY_NAMES.get(id(route))
    if allowed is None:
        allowed = frozenset(_query_params(route.dependant))
        _QUERY_NAMES[id(route)] = allowed
    unknown = [name for name in request.query_params if name not in allowed]
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", name), "msg": "Unknown query parameter", "input": None}
                for name in unknown
            ]
        )


def _query_params(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_params(sub)
    return names


def create_app(settings: Settings | None = None, queue: Queue | None = None) -> FastAPI:
    """Build the application. ``settings`` default to the environment and ``.env``; ``queue`` defaults to one
    opened from ``settings`` at startup (and closed at shutdown — a queue passed in is left open)."""
    settings = settings or Settings()
    keys = KeyRing.from_settings(settings)
    app = FastAPI(
        title="octoqueue",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,  # served by install_docs, from local assets
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query)],
        openapi_tags=[
            {"name": "jobs", "description": "Create jobs (the original Octoqueue API)."},
            {"name": "admin", "description": "The job-data schema; pausing and resuming claims."},
            {"name": "schedules", "description": "Cron schedules: jobs enqueued on a timetable."},
            {"name": "workers", "description": "Starq-compatible queues and the worker loop."},
            {"name": "webhooks", "description": "GitHub webhook receiver."},
            {"name": "health", "description": "Probes and Prometheus metrics."},
        ],
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.limiter = RateLimiter(settings.rate_limit_requests, settings.rate_limit_window)
    app.state.given_queue = queue
    app.state.runtime = None
    metrics = Metrics(
        lambda: app.state.runtime.queue if app.state.runtime is not None else None, settings.metrics_cache_seconds
    )
    app.state.metrics = metrics

    for router in ROUTERS:
        app.include_router(router)
    _summaries_from_docstrings()
    install_docs(app)
    _install_error_handlers(app)
    _document_optional_auth(app, settings, keys)

    # Added innermost first: metrics see everything, CORS headers go on every answer (413 included); a body is
    # limited in size before it is parsed for repeated keys.
    app.add_middleware(DuplicateKeyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", API_KEY_HEADER, "Idempotency-Key", "X-Worker-Id"],
            expose_headers=["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"],
            max_age=600,
        )
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app


#: The longest an HTTP complete or fail waits out the store's rate limit before answering 503 with Retry-After (a
#: worker's HTTP client should not hang for a whole lease; it retries, fenced by its attempt).
HTTP_RATE_LIMIT_PATIENCE = 10.0


def open_queue(settings: Settings) -> Queue:
    """The Queue ``settings`` describe: its store, label prefix, lease and attempt defaults."""
    store = open_store(settings.store_url, labels=LabelScheme(settings.label_prefix))
    if settings.read_mirror:
        from octoqueue.mirror_reads import ReadFromMirror

        local = open_store(settings.read_mirror, labels=LabelScheme(settings.label_prefix))
        store = ReadFromMirror(store, local, interval=settings.read_mirror_interval)
    return Queue(
        store,
        retry=RetryPolicy(),
        max_attempts=settings.max_attempts,
        lease=settings.lease,
        rate_limit_patience=HTTP_RATE_LIMIT_PATIENCE,
    )


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    given: Queue | None = app.state.given_queue
    queue = given if given is not None else await run_in_threadpool(open_queue, settings)
    runtime = Runtime.build(settings, queue, app.state.metrics)
    if not app.state.keys.enabled:
        log.warning("no API keys configured (API_KEY / API_KEYS): every endpoint is open")
    if is_encrypted(queue.store) and (settings.open_reads or not app.state.keys.enabled):
        log.warning(
            "job data is encrypted (%s) but reads are open: anyone who reaches this server reads it decrypted "
            "(GET /jobs/{id}, listings, the dashboard); set API_KEYS and OCTOQUEUE_OPEN_READS=false",
            KEY_ENV,
        )
    # Other processes' arrivals read on this loop where the store can (PostgreSQL, Redis): a waiting claim wakes
    # without a hand-off from a watch thread (a thread hop is a wait for the CPU and the GIL on a loaded machine).
    stop_watching = await queue.watch_store_on_loop()
    watcher = QueueWatcher(queue, runtime.arrivals, asyncio.get_running_loop())
    watcher.start()
    worker = _start_worker(settings, queue, app.state.metrics)
    runtime.worker = worker
    scheduler = Scheduler(queue.schedules).start() if settings.scheduler else None
    runtime.scheduler = scheduler
    recovery = asyncio.create_task(_recover_forever(runtime), name="octoqueue-recover")
    pauses = asyncio.create_task(_keep_pauses_fresh(runtime), name="octoqueue-pauses")
    app.state.runtime = runtime
    problem = await run_in_threadpool(store_problem, queue.store)
    if problem is None:
        log.info("octoqueue server ready on %s", queue.store.url)
    else:
        log.error("the store %s cannot be reached: %s (/ready answers 503 until it can)", queue.store.url, problem)
    try:
        yield
    finally:
        app.state.runtime = None
        for task in (recovery, pauses):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if scheduler is not None:
            await run_in_threadpool(scheduler.stop)
        if worker is not None:
            await run_in_threadpool(worker.stop, timeout=60)
        watcher.stop()
        if stop_watching is not None:
            await stop_watching()
        runtime.thread_batches.close()
        if given is None:
            await run_in_threadpool(queue.close)


def _start_worker(settings: Settings, queue: Queue, metrics: Metrics) -> Worker | None:
    if not settings.worker:
        return None
    from octoqueue.handlers import CommandHandler, load_handler
    from octoqueue.worker import Worker

    handler = CommandHandler(settings.command) if settings.command else load_handler(str(settings.handler))
    worker = Worker(
        queue,
        handler,
        concurrency=settings.concurrency,
        prefetch=settings.prefetch,
        concurrency_per_type=settings.worker_type_limits,
        lease=settings.lease,
        labels=settings.worker_label_list,
        on_report=metrics.jobs.observe,
    )
    worker.start()
    log.info("in-process worker started (%d at a time)", settings.concurrency)
    return worker


async def _keep_pauses_fresh(runtime: Runtime) -> None:
    """While long-poll claims are parked on a store that reports other processes' arrivals (PostgreSQL, Redis),
    read the pause state before it goes stale (at three quarters of ``pause_check_interval``), so that the claim an
    arrival wakes goes straight to the store's claim instead of reading the settings first: one round trip less on
    the wake-up of a claim parked longer than that interval. Elsewhere claims poll, and read it as they do."""
    pauses = runtime.queue.pauses
    if pauses.ttl <= 0:
        return  # every claim reads the state
    tick = pauses.ttl / 8
    while True:
        await asyncio.sleep(tick)
        if runtime.arrivals.parked and runtime.queue.hears_other_processes and pauses.stale_within(2 * tick):
            try:
                await run_in_threadpool(pauses.refresh_ahead, 2 * tick)
            except Exception as exc:  # the next claim reads it again, and reports a failure
                log.debug("could not read the pause state ahead of the claims: %s", exc)


async def _recover_forever(runtime: Runtime) -> None:
    """Take back jobs whose lease expired, every ``recover_interval`` seconds. A failure is logged when it starts
    or changes, not at every round; its end is logged too."""
    failing: str | None = None
    while True:
        await asyncio.sleep(runtime.settings.recover_interval)
        try:
            recovered = await run_in_threadpool(runtime.queue.recover_expired)
        except Exception as exc:
            if str(exc) != failing:
                log.warning("could not recover expired leases (retrying quietly): %s", exc)
            failing = str(exc)
            continue
        if failing is not None:
            log.warning("expired leases are recovered again")
            failing = None
        if recovered:
            runtime.metrics.recovered.inc(len(recovered))
            for job in recovered:
                log.info("job %d: lease expired; now %s", job.id, job.status)


def _install_error_handlers(app: FastAPI) -> None:
    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # FastAPI's own handler echoes the input, which may hold what JSON cannot carry back (NaN, a lone
        # surrogate) or be a megabyte long: make it printable and short.
        errors = [_printable_error(error) for error in jsonable_encoder(exc.errors())]
        body = json.dumps({"detail": errors}, ensure_ascii=True, allow_nan=False)
        return Response(body, status_code=422, media_type="application/json")

    app.add_exception_handler(RequestValidationError, validation_error)

    async def octoqueue_error(request: Request, exc: Exception) -> JSONResponse:
        status = status_of(exc)
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    app.add_exception_handler(OctoqueueError, octoqueue_error)


def _summaries_from_docstrings() -> None:
    """An operation without its own summary gets its docstring's first sentence (FastAPI's default is the function
    name in title case)."""
    for route in (route for router in ROUTERS for route in router.routes):
        if isinstance(route, APIRoute) and route.summary is None and route.description:
            first = route.description.strip().split("\n\n", 1)[0].replace("\n", " ")
            route.summary = first.split(". ", 1)[0].rstrip(".").replace("``", "`")


def _document_optional_auth(app: FastAPI, settings: Settings, keys: KeyRing) -> None:
    """Mark the API key optional (``security: [{}, ...]``) where the server does not require one: the reads
    when they are open, the probes that show admins more (``/ready``), everything when no key is configured."""
    original = app.openapi

    def uses(dependant: Any, call: Any) -> bool:
        return any(d.call is call or uses(d, call) for d in dependant.dependencies)

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = original()
        if not fresh:
            return schema
        routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
        for route in routes:
            optional = (
                not keys.enabled
                or uses(route.dependant, identify_caller)
                or (settings.open_reads and uses(route.dependant, require_read))
            )
            if not optional:
                continue
            for method in route.methods or ():
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation and operation.get("security") and {} not in operation["security"]:
                    operation["security"].insert(0, {})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _printable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def _printable_error(error: Any) -> Any:
    if not isinstance(error, dict):
        return _printable(error)
    error = _printable(error)
    if "input" in error and len(json.dumps(error["input"], ensure_ascii=True, default=str)) > 1_000:
        error["input"] = "(too long to echo)"
    return error


__all__ = ["create_app", "open_queue"]
