"""``POST /create-job``: the original Octoqueue's producer endpoint, with its key actually checked."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from octoqueue.api.auth import API_KEY_HEADER, KeyRing, ProducerKey, ReaderKey, Role
from octoqueue.api.context import Runtime, RuntimeDep
from octoqueue.api.duplicatekeys import is_json_type, parsed_body
from octoqueue.api.jobschema import SchemaMismatch
from octoqueue.api.jobwatch import TooManyWaiters
from octoqueue.api.models import (
    Attempts,
    IdempotencyKey,
    JobType,
    JsonObject,
    Label,
    PriorityLevel,
    PriorityName,
    RequestBody,
    Title,
    errors,
)
from octoqueue.api.ratelimit import RateLimiter, identity_of, limit_headers, rate_limit
from octoqueue.errors import JobNotFound
from octoqueue.history import Outcome
from octoqueue.job import Job
from octoqueue.states import JobState

router = APIRouter(tags=["jobs"])


class CreateJobRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            # Not both delay and run_at, said as dependentSchemas: a top-level "not" makes Swagger UI show the
            # whole request as type "never".
            "dependentSchemas": {"delay": {"not": {"required": ["run_at"]}}},
            # What /docs offers to send: a request the server takes (its generated one had delay and run_at).
            "examples": [
                {
                    "data": {"text": "hello"},
                    "title": "greet",
                    "additional_labels": ["demo"],
                    "priority": "high",
                    "delay": 10,
                    "max_attempts": 3,
                    "type": "greet",
                    "timeout": 60,
                },
                {"data": {"report": 7}, "run_at": "2030-01-01T09:00:00Z"},
            ],
        }
    )

    data: JsonObject = Field(description="The job's data: any JSON object (validated against the admin schema).")
    title: Title | None = Field(None, description="Issue title; default 'Job <ISO time>'.")
    additional_labels: list[Label] | None = Field(None, max_length=20, description="Extra labels for the job.")
    priority: PriorityLevel | PriorityName = Field(
        2, description="0 (critical) ... 4 (bulk), or the level's name; lower runs first."
    )
    delay: float | None = Field(None, ge=0, le=366 * 86400, description="Seconds before the job may run.")
    run_at: AwareDatetime | None = Field(None, strict=False, description="Not before this time (with a timezone).")
    max_attempts: Attempts | None = Field(None, description="Tries before the job is failed for good.")
    type: JobType | None = Field(None, description="Job type: which handler runs it.")
    timeout: float | None = Field(None, gt=0, le=7 * 86400, description="Seconds a handler may run.")
    depends_on: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, max_length=100, description="Jobs that must all complete before this one runs (not with delay/run_at)."
    )
    on_parent_failure: Literal["fail", "cancel"] = Field(
        "fail", description="What this job does when one of depends_on fails or is cancelled."
    )

    @model_validator(mode="after")
    def _one_start_time(self) -> CreateJobRequest:
        if {"delay", "run_at"} <= self.model_fields_set:
            raise ValueError("give delay or run_at, not both")
        return self


ProcessingStatus = Literal["scheduled", "unscheduled", "unknown"]


class CreateJobResponse(BaseModel):
    job_id: int = Field(description="The job id: the issue number on GitHub.")
    status: str = Field("pending", description="The job's state (a retried request shows the current one).")
    processing_status: ProcessingStatus = Field(
        "unknown",
        description="'scheduled': a worker was woken for the job (a waiting claim, the in-process worker, a "
        "workflow dispatch sent); 'unscheduled': none could be; 'unknown': octoqueue cannot tell (workers of "
        "other processes may be polling the store).",
    )


async def create_job(
    body: CreateJobRequest,
    runtime: RuntimeDep,
    principal: ProducerKey,
    idempotency_key: IdempotencyKey = None,
) -> CreateJobResponse:
    """Create a job (an issue with the data as its JSON body). Needs a key with the ``producer`` role when keys
    are configured.

    With an ``Idempotency-Key`` header, a retry of the same request returns **201 with the same ``job_id``** as
    the first response (the ``status`` then shows the job's current state) and creates nothing; reusing a key
    with different data is refused with 409.
    """
    return await _created(runtime, body, idempotency_key)


async def _created(runtime: Runtime, body: CreateJobRequest, idempotency_key: str | None) -> CreateJobResponse:
    """What ``/create-job`` does once the request is accepted, on either path of :class:`CreateJobRoute`."""
    # One trip to a thread for the blocking part (schema check and store write) — shared with the other requests
    # that reach it in this turn of the event loop when the store's writes are quick; the response is then built on
    # the loop.
    create = functools.partial(_create, runtime, body, idempotency_key)
    job = await (runtime.thread_batches.run(create) if runtime.queue.store.quick_writes else run_in_threadpool(create))
    if idempotency_key is not None and job.data != body.data:
        raise HTTPException(
            409, detail=f"Idempotency-Key {idempotency_key!r} was already used for different data (job {job.id})"
        )
    runtime.metrics.created.labels("create-job").inc()
    return CreateJobResponse(job_id=job.id, status=job.status or "pending", processing_status=_scheduling(runtime, job))


#: What the ``Idempotency-Key`` header may be (:data:`~octoqueue.api.models.IdempotencyKey`).
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class CreateJobRoute(APIRoute):
    """``POST /create-job``: answered directly when the request is certainly good, by FastAPI otherwise.

    FastAPI's handler for the declared endpoint solves 7 dependencies per request (the unknown-query check, rate
    limit, runtime, producer key and its header, ``Idempotency-Key``, body), which cost more CPU than the store
    write. The direct path takes a request only when nothing about it can be refused: the server is running, no
    dependency overridden (``app.dependency_overrides``), no query string, a JSON ``Content-Type`` and a JSON
    object the repeated-key check already parsed (:func:`~octoqueue.api.duplicatekeys.parsed_body`: the body is
    parsed once), a key with the producer role (when keys are configured), a well-formed ``Idempotency-Key`` if
    any, a body the declared model accepts, and the client under its rate limit (that hit is counted, once).
    Anything else goes to FastAPI's handler, built from the same declaration, which refuses it (or takes it)
    exactly as before; the OpenAPI document comes from that declaration too. An accepted request then runs the
    same code on both paths (:func:`_created`) and gets the same answer.
    """

    #: False sends every request through FastAPI's handler (the tests compare the two paths).
    direct = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = super().get_route_handler()

        async def handler(request: Request) -> Response:
            if self.direct:
                response = await _create_directly(request)
                if response is not None:
                    return response
            return await declared(request)

        return handler


async def _create_directly(request: Request) -> Response | None:
    """The answer to a ``/create-job`` request nothing is wrong with; None when FastAPI must look at it."""
    app = request.app
    state = app.state
    runtime: Runtime | None = state.runtime
    if runtime is None or request.scope["query_string"] or app.dependency_overrides:
        return None
    headers = request.headers
    content_type = headers.get("content-type")
    if content_type is None or not is_json_type(content_type.encode("latin-1")):
        return None
    parsed, value = parsed_body(request.scope, await request.body())
    if not parsed or not isinstance(value, dict):
        return None
    keys: KeyRing = state.keys
    principal = None
    if keys.enabled:
        key = headers.get(API_KEY_HEADER)
        principal = keys.identify(key) if key else None
        if principal is None or not principal.can(Role.PRODUCER):
            return None
    idempotency_key = headers.get("idempotency-key")
    if idempotency_key is not None and _IDEMPOTENCY_KEY.fullmatch(idempotency_key) is None:
        return None
    try:
        body = CreateJobRequest.model_validate(value)
    except ValidationError:
        return None
    limiter: RateLimiter = state.limiter
    decision = limiter.hit(identity_of(request, principal)) if limiter.enabled else None
    if decision is not None and not decision.allowed:
        return None  # FastAPI's path answers 429 (counting nothing, as this refused hit counted nothing)
    answer = await _created(runtime, body, idempotency_key)
    response = Response(_RESPONSE_JSON(answer), status_code=201, media_type="application/json")
    if decision is not None:
        response.headers.update(limit_headers(decision))
    return response


_RESPONSE_JSON = TypeAdapter(CreateJobResponse).dump_json


router.add_api_route(
    "/create-job",
    create_job,
    methods=["POST"],
    status_code=201,
    response_model=CreateJobResponse,
    dependencies=[Depends(rate_limit)],
    responses=errors(400, 401, 403, 409, 413, 429, 503),
    summary="Create a job",
    route_class_override=CreateJobRoute,
)


def _scheduling(runtime: Runtime, job: Job) -> ProcessingStatus:
    """Whether a worker was woken for ``job`` (run on the event loop, where the waiting claims live)."""
    if job.state is not JobState.PENDING:
        return "unknown"  # an idempotent retry of a job that moved on
    woken = runtime.arrivals.waiting_for(job.labels) or (runtime.worker is not None and runtime.worker.accepts(job))
    if woken:
        return "scheduled"
    waker = runtime.workflow_waker
    sent = waker.workflow_woken(job.id) if waker is not None else None
    if sent is not None:
        return "scheduled" if sent else "unscheduled"
    # Jobs in an in-memory store are seen by this process only: nobody else can take them.
    return "unscheduled" if runtime.queue.store.url.startswith("memory:") else "unknown"


def _create(runtime: Runtime, body: CreateJobRequest, idempotency_key: str | None) -> Job:
    try:
        runtime.job_schema.validate(body.data)
    except SchemaMismatch as exc:
        raise HTTPException(400, detail=str(exc)) from None
    try:
        return runtime.queue.enqueue_job(
            body.data,
            body.title,
            body.additional_labels,
            priority=body.priority,
            run_at=body.run_at,
            delay=body.delay,
            max_attempts=body.max_attempts,
            type=body.type,
            idempotency_key=idempotency_key,
            timeout=body.timeout,
            depends_on=body.depends_on,
            on_parent_failure=body.on_parent_failure,
        )
    except ValueError as exc:
        raise HTTPException(400, detail=str(exc)) from None
    except JobNotFound as exc:
        raise HTTPException(400, detail=f"depends_on names a job that does not exist: {exc}") from None


class JobStatusResponse(BaseModel):
    job_id: int = Field(description="The job id: the issue number on GitHub.")
    status: str | None = Field(description="The job's status label; null when a person removed it.")
    title: str
    labels: list[str] = Field(description="The job's labels other than its status label.")
    attempt: int = Field(description="How many times the job was claimed (the fencing token of the last claim).")
    max_attempts: int
    result: Any = Field(None, description="What the handler returned (large results: see the job's comments).")
    last_error: str | None = None
    run_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    url: str | None = Field(None, description="The issue's page on GitHub, for the GitHub store.")


@router.get(
    "/jobs/{job_id}",
    response_model=JobStatusResponse,
    responses=errors(401, 403, 404, 503),
    summary="A job's status and result",
)
async def job_status(
    runtime: RuntimeDep,
    principal: ReaderKey,
    job_id: Annotated[int, Path(ge=1, le=2**53)],
    wait: Annotated[
        float, Query(ge=0, le=60, description="Seconds to wait for the job to finish before answering.")
    ] = 0,
) -> JobStatusResponse:
    """A job created with ``/create-job``: its state, attempts, result or last error. Open to everyone unless
    reads are keyed (``--keyed-reads``). With ``?wait=30`` the answer comes when the job is finished (completed,
    failed or cancelled), or after 30 s with its state then."""
    job = await run_in_threadpool(runtime.queue.get, job_id)
    try:
        job = await runtime.job_watch.wait(job, wait)
    except TooManyWaiters as exc:
        raise HTTPException(503, detail=f"{exc}; ask again later", headers={"Retry-After": "5"}) from None
    return JobStatusResponse(
        job_id=job.id,
        status=job.status,
        title=job.title,
        labels=list(job.labels),
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        result=job.result,
        last_error=job.last_error,
        run_at=job.run_at,
        created_at=job.created_at,
        updated_at=job.updated_at,
        url=job.url,
    )


class AttemptResponse(BaseModel):
    attempt: int = Field(description="The attempt number (the fencing token of its claim).")
    outcome: Outcome = Field(description="How it ended; 'running' while it has not.")
    worker: str | None = Field(None, description="The worker that ran it; null when not recorded.")
    started_at: datetime | None = Field(None, description="When it was claimed (the store's clock).")
    ended_at: datetime | None = Field(None, description="When it ended; null while running.")
    duration: float | None = Field(None, description="Seconds from start to end; null while running.")
    error: str | None = Field(None, description="Why it failed, was retried or expired.")


class JobHistoryResponse(BaseModel):
    job_id: int
    attempts: list[AttemptResponse] = Field(description="Every attempt, oldest first.")


@router.get(
    "/jobs/{job_id}/history",
    response_model=JobHistoryResponse,
    responses=errors(401, 403, 404, 503),
    summary="A job's attempts",
)
async def job_history(
    runtime: RuntimeDep, principal: ReaderKey, job_id: Annotated[int, Path(ge=1, le=2**53)]
) -> JobHistoryResponse:
    """Every attempt of the job: worker, start, end, duration, outcome and error (two store reads: the job and
    its comments). Open to everyone unless reads are keyed, as ``GET /jobs/{id}``."""
    attempts = await run_in_threadpool(runtime.queue.history, job_id)
    return JobHistoryResponse(
        job_id=job_id,
        attempts=[AttemptResponse(**a.model_dump(), duration=a.duration) for a in attempts],
    )


__all__ = [
    "CreateJobRequest",
    "CreateJobResponse",
    "CreateJobRoute",
    "JobHistoryResponse",
    "JobStatusResponse",
    "router",
]
