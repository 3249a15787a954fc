"""The worker API under ``/api/v1``, shaped like Starq's so its plain-HTTP worker loop runs unchanged.

A queue ``q`` is the jobs labelled ``queue:q``. A claim hands out jobs with a lease of the queue's
``claim_timeout``; the ``id`` it returns is ``<job>.<attempt>`` — the attempt is the fencing token, so a worker
whose lease expired (and whose job was claimed again) gets 409 when it reports. A failed job with retries left
comes back after the queue's backoff, not after the claim timeout.

The attempt fences stale holders, not other callers: it is a small number anyone can guess. So when API keys are
configured a claim is bound to the key that made it: the job's ``worker`` ends with ``@key-`` and 8 hex digits of
the key's fingerprint (:func:`claimed_by`), and only that key (or an admin's) may complete, fail or heartbeat it;
another worker key gets 409, as a stale holder would.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from octoqueue.api import jobschema
from octoqueue.api.auth import AdminKey, Principal, ProducerKey, ReaderKey, Role, WorkerKey
from octoqueue.api.context import Runtime, RuntimeDep
from octoqueue.api.models import (
    Attempt,
    Count,
    IdempotencyKey,
    JsonObject,
    JsonValue,
    Milliseconds,
    PriorityLevel,
    RequestBody,
    Retries,
    Seconds,
    check_text,
    errors,
    status_of,
)
from octoqueue.api.queues import QueueConfig, QueueExists, QueueName, queue_label
from octoqueue.api.ratelimit import rate_limit
from octoqueue.errors import InvalidTransition, JobTooLarge, LeaseLost, OctoqueueError, StateConflict
from octoqueue.job import Job
from octoqueue.queue import check_data_size
from octoqueue.sealing import content_digest
from octoqueue.states import QUEUE_LABEL_PREFIX, JobState, has_labels, label_key
from octoqueue.stores.base import Store

router = APIRouter(prefix="/api/v1", tags=["workers"])

QueuePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=44)]
JobIdPath = Annotated[
    str, Path(pattern=r"^[0-9]{1,15}(\.[0-9]{1,9})?$", description="'<job>.<attempt>' as the claim returned it.")
]
WorkerName = Annotated[
    str | None,
    Header(alias="X-Worker-Id", max_length=100, pattern=r"^[\x21-\x7e]+$", description="Names the claimer."),
]
StatusFilter = Literal["pending", "processing", "claimed", "completed", "failed", "cancelled"]
Description = Annotated[str, StringConstraints(max_length=1000, pattern=r"^[^\x00]*$"), AfterValidator(check_text)]


# -- shapes ----------------------------------------------------------------------------------------------------
class QueueCreate(RequestBody):
    name: QueueName
    description: Description = ""
    max_retries: Retries = Field(3, description="Retries after the first attempt fails.")
    claim_timeout: Seconds = Field(300, description="Seconds a claim holds a job (the lease).")
    dedupe: bool = Field(False, description="Skip payloads identical to a job already in the queue.")
    job_schema: JsonObject | None = Field(
        None, description="A JSON Schema the queue's payloads must match (the admin schema does not apply here)."
    )


class QueueInfo(BaseModel):
    name: str
    description: str = ""
    max_retries: int
    claim_timeout: int
    dedupe: bool
    job_schema: dict[str, Any] | None = Field(None, description="The schema payloads must match; null: any.")
    label: str = Field(description="The label that puts a job in this queue.")
    pending: int = 0
    processing: int = 0
    length: int = Field(0, description="Jobs not finished: pending + processing.")
    completed: int | None = Field(None, description="Only with ?full=true (it reads every finished job).")
    failed: int | None = None
    cancelled: int | None = None


class QueueList(BaseModel):
    queues: list[QueueInfo]


class QueueDeleted(BaseModel):
    status: Literal["deleted"] = "deleted"
    queue: str
    cancelled: int = Field(description="Pending jobs of the queue that were cancelled.")


class JobSubmit(RequestBody):
    payload: JsonObject = Field(default_factory=dict)
    priority: PriorityLevel = Field(2, description="0 (critical) ... 4 (bulk); lower runs first.")
    delay: float | None = Field(None, ge=0, le=366 * 86400, description="Seconds before the job may run.")


class JobSubmission(RequestBody):
    """One job (``payload``, ``priority``) or many (``jobs``)."""

    # Not both payload and jobs (as dependentSchemas: a top-level "not" shows in Swagger UI as type "never").
    model_config = ConfigDict(json_schema_extra={"dependentSchemas": {"payload": {"not": {"required": ["jobs"]}}}})

    payload: JsonObject | None = None
    priority: PriorityLevel = 2
    delay: float | None = Field(None, ge=0, le=366 * 86400)
    jobs: list[JobSubmit] | None = Field(None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_form(self) -> JobSubmission:
        if {"payload", "jobs"} <= self.model_fields_set:
            raise ValueError("give 'payload' for one job or 'jobs' for many, not both")
        return self

    def items(self) -> list[JobSubmit]:
        if self.jobs is not None:
            return self.jobs
        return [JobSubmit(payload=self.payload or {}, priority=self.priority, delay=self.delay)]


class WorkerJob(BaseModel):
    """A job as the HTTP worker API shows it: its id carries the attempt that fences the holder."""

    id: str = Field(description="'<job>.<attempt>': pass it back to complete, fail or heartbeat.")
    job_id: int = Field(description="The job (issue number).")
    queue: str
    status: str
    payload: Any = None
    result: Any = None
    error: str = ""
    attempt: int
    max_attempts: int
    retries: int = Field(description="Attempts before this one.")
    priority: int
    lease_expires_at: datetime | None = None
    run_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    url: str | None = None


class SubmitResponse(BaseModel):
    jobs: list[WorkerJob]
    submitted: int
    skipped: int = Field(description="Payloads de-duplicated against jobs already in the queue.")


class ClaimRequest(RequestBody):
    count: Count = Field(1, description="Claim up to this many jobs.")
    block_ms: Milliseconds = Field(0, description="Wait this long for a job (capped by the server).")


class ClaimResponse(BaseModel):
    jobs: list[WorkerJob]


class CompleteRequest(RequestBody):
    result: JsonValue = Field(default_factory=dict)
    attempt: Attempt | None = Field(None, description="The fencing token, when the id carries none.")


class FailRequest(RequestBody):
    error: Annotated[str, StringConstraints(max_length=20_000, pattern=r"^[^\x00]*$"), AfterValidator(check_text)] = ""
    retry: bool = Field(True, description="Retry after the backoff while attempts remain.")
    attempt: Attempt | None = None


class HeartbeatRequest(RequestBody):
    attempt: Attempt | None = None


class FinishResponse(BaseModel):
    status: str = Field(description="The job's state now: completed, pending (will retry), failed, processing.")
    job_id: str
    attempt: int
    attempts_left: int
    retry_at: datetime | None = None
    lease_expires_at: datetime | None = None


JobIdText = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,15}(\.[0-9]{1,9})?$")]


class CompleteItem(CompleteRequest):
    id: JobIdText = Field(description="'<job>.<attempt>' as the claim returned it.")


class FailItem(FailRequest):
    id: JobIdText


class HeartbeatItem(HeartbeatRequest):
    id: JobIdText


class CompleteBatch(RequestBody):
    jobs: list[CompleteItem] = Field(min_length=1, max_length=1000)


class FailBatch(RequestBody):
    jobs: list[FailItem] = Field(min_length=1, max_length=1000)


class HeartbeatBatch(RequestBody):
    jobs: list[HeartbeatItem] = Field(min_length=1, max_length=1000)


class ItemOutcome(BaseModel):
    """What became of one job of a batch: what its own endpoint would have answered."""

    id: str
    code: int = Field(description="The status its own endpoint would answer: 200, or 400, 404, 409 (stale), 413, 503.")
    detail: str = Field("", description="Why, when the code is not 200.")
    job: FinishResponse | None = Field(None, description="The job now, when the code is 200.")


class BatchResponse(BaseModel):
    results: list[ItemOutcome] = Field(description="One per job of the request, in its order.")
    done: int = Field(description="How many of them succeeded (code 200).")


class JobList(BaseModel):
    jobs: list[WorkerJob]
    cursor: str = Field("", description="Pass back as ?cursor= for the next page; empty on the last page.")
    has_more: bool = False


# -- helpers ---------------------------------------------------------------------------------------------------
def _worker_job(job: Job, queue: str) -> WorkerJob:
    return WorkerJob(
        id=f"{job.id}.{job.attempt}",
        job_id=job.id,
        queue=queue,
        status=job.status or "unlabelled",
        payload=job.data,
        result=job.result,
        error=job.last_error or "",
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        retries=max(0, job.attempts_used - 1),
        priority=job.priority,
        lease_expires_at=job.lease_expires_at,
        run_at=job.run_at,
        created_at=job.created_at,
        updated_at=job.updated_at,
        url=job.url,
    )


def _config(runtime: Runtime, name: str) -> QueueConfig:
    config = runtime.queues.get(name)
    if config is None:
        raise HTTPException(404, detail=f"Queue '{name}' not found")
    return config


def _info(config: QueueConfig, counts: Counter[JobState], full: bool) -> QueueInfo:
    info = QueueInfo(
        name=config.name,
        description=config.description,
        max_retries=config.max_retries,
        claim_timeout=config.claim_timeout,
        dedupe=config.dedupe,
        job_schema=config.job_schema,
        label=queue_label(config.name),
        pending=counts[JobState.PENDING],
        processing=counts[JobState.PROCESSING],
        length=counts[JobState.PENDING] + counts[JobState.PROCESSING],
    )
    if full:
        info.completed = counts[JobState.COMPLETED]
        info.failed = counts[JobState.FAILED]
        info.cancelled = counts[JobState.CANCELLED]
    return info


def _open_counts(runtime: Runtime, label: str | None = None) -> dict[str, Counter[JobState]]:
    """Pending/processing jobs per queue label, from one pass over the open jobs."""
    per_label: dict[str, Counter[JobState]] = {}
    labels = [label] if label else []
    for job in runtime.queue.store.iter_jobs(states=[JobState.PENDING, JobState.PROCESSING], labels=labels):
        if job.state is None:
            continue
        for name in map(label_key, job.labels):  # GitHub may spell a queue's label `Queue:Work`
            if name.startswith(QUEUE_LABEL_PREFIX):
                per_label.setdefault(name, Counter())[job.state] += 1
    return per_label


def key_tag(principal: Principal) -> str:
    """What a claim by ``principal`` appends to the worker's name: its key's tag, or '' without keys."""
    return f"@key-{principal.fingerprint[:8]}" if principal.fingerprint else ""


def claimed_by(worker: str, principal: Principal) -> str:
    """The ``worker`` a claim records: the name the caller gave, then (last, so no name can fake it) its key's tag."""
    return worker + key_tag(principal)


def _token(job_id: str, attempt: int | None) -> tuple[int, int]:
    number, _, in_id = job_id.partition(".")
    token = int(in_id) if in_id else None
    if token is not None and attempt is not None and token != attempt:
        raise HTTPException(400, detail=f"the id says attempt {token} but the body says {attempt}")
    chosen = token if token is not None else attempt
    if chosen is None:
        raise HTTPException(400, detail="give the id the claim returned ('<job>.<attempt>') or an 'attempt' field")
    return int(number), chosen


def _held(runtime: Runtime, name: str, job_id: str, attempt: int | None, principal: Principal) -> Job:
    number, token = _token(job_id, attempt)
    job = runtime.queue.get(number)
    if not has_labels(job.labels, [queue_label(name)]):
        raise HTTPException(404, detail=f"Job '{job_id}' not found in queue '{name}'")
    tag = key_tag(principal)
    if (
        tag
        and not principal.can(Role.ADMIN)
        and job.state is JobState.PROCESSING
        and not (job.worker or "").endswith(tag)
    ):
        runtime.metrics.stale.labels(name).inc()
        raise HTTPException(409, detail=f"job {number} is not held by a claim of this API key")
    # The caller's view of the job: the store refuses the change unless this attempt still holds it.
    return job.model_copy(update={"attempt": token})


def _dedupe_key(store: Store, queue: str, payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"starq:{queue}:{content_digest(store, canonical)}"


# -- queues ----------------------------------------------------------------------------------------------------
@router.post("/queues", response_model=QueueInfo, status_code=201, responses=errors(400, 401, 403, 409, 413, 503))
def create_queue(body: QueueCreate, runtime: RuntimeDep, principal: AdminKey) -> QueueInfo:
    """Define a queue (admin). 409 when it exists; 400 when its ``job_schema`` is not a usable JSON Schema (the
    admin schema's checks)."""
    if body.job_schema is not None:
        try:
            jobschema.check(body.job_schema)
        except jobschema.InvalidSchema as exc:
            raise HTTPException(400, detail=str(exc)) from None
    config = QueueConfig(**body.model_dump())
    try:
        runtime.queues.create(config)
    except QueueExists:
        raise HTTPException(409, detail=f"Queue '{body.name}' already exists") from None
    return _info(config, Counter(), full=False)


@router.get("/queues", response_model=QueueList, responses=errors(401, 503))
def list_queues(runtime: RuntimeDep, principal: ReaderKey) -> QueueList:
    """Every queue with its pending and processing counts."""
    configs = runtime.queues.list()
    counts = _open_counts(runtime) if configs else {}
    return QueueList(queues=[_info(c, counts.get(queue_label(c.name), Counter()), full=False) for c in configs])


@router.get("/queues/{name}", response_model=QueueInfo, responses=errors(401, 404, 503))
def get_queue(
    name: QueuePath,
    runtime: RuntimeDep,
    principal: ReaderKey,
    full: Annotated[bool, Query(description="Also count finished jobs (reads all of them).")] = False,
) -> QueueInfo:
    """The queue's definition and counts."""
    config = _config(runtime, name)
    label = queue_label(name)
    if full:
        counts: Counter[JobState] = Counter(
            job.state for job in runtime.queue.store.iter_jobs(labels=[label]) if job.state is not None
        )
    else:
        counts = _open_counts(runtime, label).get(label, Counter())
    return _info(config, counts, full)


@router.delete("/queues/{name}", response_model=QueueDeleted, responses=errors(401, 403, 404, 503))
def delete_queue(name: QueuePath, runtime: RuntimeDep, principal: AdminKey) -> QueueDeleted:
    """Remove the queue's definition and cancel its pending jobs (running ones may still finish; jobs stay
    in the store, as issues do on GitHub)."""
    _config(runtime, name)
    cancelled = 0
    for job in list(runtime.queue.store.iter_jobs(states=[JobState.PENDING], labels=[queue_label(name)])):
        try:
            runtime.queue.cancel(job.id, comment=f"Cancelled: queue '{name}' was deleted.")
            cancelled += 1
        except (StateConflict, InvalidTransition):
            pass  # claimed meanwhile
    runtime.queues.delete(name)
    return QueueDeleted(queue=name, cancelled=cancelled)


# -- jobs ------------------------------------------------------------------------------------------------------
@router.post(
    "/queues/{name}/jobs",
    response_model=SubmitResponse,
    dependencies=[Depends(rate_limit)],
    responses=errors(400, 401, 403, 404, 409, 413, 429, 503),
)
async def submit_jobs(
    name: QueuePath,
    body: JobSubmission,
    runtime: RuntimeDep,
    principal: ProducerKey,
    idempotency_key: IdempotencyKey = None,
) -> SubmitResponse:
    """Submit ``{"payload": {...}, "priority": 0}`` or ``{"jobs": [...]}``. Payloads must match the queue's
    ``job_schema`` when it has one. Every job is checked (schema, size) before any is created: one bad job
    refuses the whole batch. With an ``Idempotency-Key`` header a retry creates nothing and returns the same
    jobs (409 when the key was used for other payloads). On a ``dedupe`` queue a payload identical to a job
    already there is skipped — unless that job failed or was cancelled, which puts it back in the queue."""
    return await run_in_threadpool(_submit, runtime, name, body, idempotency_key)


def _check_batch(config: QueueConfig, items: list[JobSubmit], batch: bool) -> None:
    """Refuse the batch (400, 413) if any job in it would be refused, so that none is created."""
    for i, item in enumerate(items):
        where = f"jobs[{i}]: " if batch else ""
        try:
            jobschema.validate(config.job_schema, item.payload)
            check_data_size(item.payload)
        except jobschema.SchemaMismatch as exc:
            raise HTTPException(400, detail=f"{where}{exc}") from None
        except JobTooLarge as exc:
            raise HTTPException(413, detail=f"{where}{exc}") from None


def _submit(runtime: Runtime, name: str, body: JobSubmission, idempotency_key: str | None) -> SubmitResponse:
    config = _config(runtime, name)
    items = body.items()
    _check_batch(config, items, body.jobs is not None)
    queue = runtime.queue
    # A unique title tells a job this call created from an existing one returned for the key.
    title = f"{name}: job {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} ({secrets.token_hex(3)})"
    keys: list[str | None] = []
    for i, item in enumerate(items):
        if config.dedupe:
            keys.append(_dedupe_key(queue.store, name, item.payload))
        else:
            keys.append(None if idempotency_key is None else f"starq:{name}:batch:{idempotency_key}:{i}")
    # One enqueue_many per (priority, delay): a batch whose jobs share them (the usual case) is one store call.
    groups: dict[tuple[int, float | None], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault((item.priority, item.delay), []).append(i)
    made: dict[int, Job] = {}
    for (priority, delay), indexes in groups.items():
        jobs = queue.enqueue_many(
            [items[i].payload for i in indexes],
            title,
            idempotency_keys=[keys[i] for i in indexes],
            queue=name,
            priority=priority,
            delay=delay,
            max_attempts=config.max_retries + 1,
        )
        made.update(zip(indexes, jobs, strict=True))
    out: list[WorkerJob] = []
    skipped = 0
    seen: set[int] = set()
    for i, item in enumerate(items):
        job = made[i]
        if job.id in seen:  # a payload given twice in this batch on a dedupe queue: the first made the job
            skipped += 1
            continue
        seen.add(job.id)
        existing = job.title != title
        if existing and not config.dedupe:  # this batch's own retry
            if job.data != item.payload:
                raise HTTPException(
                    409, detail=f"Idempotency-Key {idempotency_key!r} was already used for other payloads (jobs[{i}])"
                )
            existing = False
        elif existing and job.state in (JobState.FAILED, JobState.CANCELLED):
            job = queue.requeue(job.id, comment="Submitted again: back in the queue.")
            existing = False
        if existing:
            skipped += 1
        else:
            out.append(_worker_job(job, name))
    runtime.metrics.created.labels("starq").inc(len(out))
    return SubmitResponse(jobs=out, submitted=len(out), skipped=skipped)


@router.post("/queues/{name}/jobs/claim", response_model=ClaimResponse, responses=errors(400, 401, 403, 404, 503))
async def claim_jobs(
    name: QueuePath,
    body: ClaimRequest,
    request: Request,
    runtime: RuntimeDep,
    principal: WorkerKey,
    worker: WorkerName = None,
) -> ClaimResponse:
    """Claim up to ``count`` jobs, waiting up to ``block_ms`` for one to arrive (long-poll: the answer comes as
    soon as a job is enqueued). Each job is leased for the queue's ``claim_timeout``."""
    started = time.monotonic()
    config = await run_in_threadpool(_config, runtime, name)
    settings = runtime.settings
    deadline = started + min(body.block_ms, settings.max_block_ms) / 1000
    who = claimed_by(worker or f"http:{request.client.host if request.client else 'unknown'}", principal)
    label = queue_label(name)
    jobs: list[Job] = []
    # In line for arrivals from before the first claim, so that one during it is not missed (see longpoll.py).
    with runtime.arrivals.waiter([label], body.count) as waiter:
        while True:
            waiter.claiming()
            jobs = await run_in_threadpool(
                runtime.queue.claim_batch, body.count, worker=who, lease=float(config.claim_timeout), labels=[label]
            )
            again = waiter.claimed(len(jobs))
            remaining = deadline - time.monotonic()
            if jobs or remaining <= 0:
                break
            if again:
                continue  # a job arrived while the claim ran
            await waiter.wait(min(remaining, settings.claim_poll_interval))
            if await request.is_disconnected():
                break  # claiming now would lease jobs to nobody; an arrival handed to this claim is passed on
    runtime.metrics.claim_wait.labels(name, "jobs" if jobs else "empty").observe(time.monotonic() - started)
    runtime.metrics.claims.labels(name).inc(len(jobs))
    return ClaimResponse(jobs=[_worker_job(job, name) for job in jobs])


def _finish_response(job: Job, job_id: str) -> FinishResponse:
    return FinishResponse(
        status=job.status or "unlabelled",
        job_id=job_id,
        attempt=job.attempt,
        attempts_left=job.attempts_left,
        retry_at=job.run_at if job.state is JobState.PENDING else None,
        lease_expires_at=job.lease_expires_at,
    )


def _fenced(runtime: Runtime, name: str, action: Any) -> Any:
    try:
        return action()
    except (LeaseLost, StateConflict, InvalidTransition):
        runtime.metrics.stale.labels(name).inc()
        raise


@router.put(
    "/queues/{name}/jobs/{job_id}/complete",
    response_model=FinishResponse,
    responses=errors(400, 401, 403, 404, 409, 413, 503),
)
async def complete_job(
    name: QueuePath, job_id: JobIdPath, runtime: RuntimeDep, principal: WorkerKey, body: CompleteRequest | None = None
) -> FinishResponse:
    """Complete a claimed job with its ``result``. 409 when the claim is stale (the lease expired and the job
    was claimed again, or it was cancelled)."""
    return await run_in_threadpool(_complete, runtime, name, job_id, body or CompleteRequest(), principal)


def _complete(runtime: Runtime, name: str, job_id: str, body: CompleteRequest, principal: Principal) -> FinishResponse:
    held = _held(runtime, name, job_id, body.attempt, principal)
    done = _fenced(runtime, name, lambda: runtime.queue.complete(held, result=body.result))
    runtime.metrics.completions.labels(name).inc()
    return _finish_response(done, job_id)


@router.put(
    "/queues/{name}/jobs/{job_id}/fail",
    response_model=FinishResponse,
    responses=errors(400, 401, 403, 404, 409, 413, 503),
)
async def fail_job(
    name: QueuePath, job_id: JobIdPath, runtime: RuntimeDep, principal: WorkerKey, body: FailRequest | None = None
) -> FinishResponse:
    """Fail a claimed job. With retries left (and ``retry`` true) it is pending again after the backoff;
    otherwise failed for good. 409 when the claim is stale."""
    return await run_in_threadpool(_fail, runtime, name, job_id, body or FailRequest(), principal)


def _fail(runtime: Runtime, name: str, job_id: str, body: FailRequest, principal: Principal) -> FinishResponse:
    held = _held(runtime, name, job_id, body.attempt, principal)
    error = body.error or "failed by the worker"
    new = _fenced(runtime, name, lambda: runtime.queue.fail(held, error=error, retry=body.retry))
    runtime.metrics.failures.labels(name, "retry" if new.state is JobState.PENDING else "failed").inc()
    return _finish_response(new, job_id)


@router.put(
    "/queues/{name}/jobs/{job_id}/heartbeat",
    response_model=FinishResponse,
    responses=errors(400, 401, 403, 404, 409, 503),
)
async def heartbeat_job(
    name: QueuePath, job_id: JobIdPath, runtime: RuntimeDep, principal: WorkerKey, body: HeartbeatRequest | None = None
) -> FinishResponse:
    """Extend the lease of a claimed job by the queue's ``claim_timeout`` (for jobs that run long)."""
    return await run_in_threadpool(_heartbeat, runtime, name, job_id, body, principal)


def _heartbeat(
    runtime: Runtime, name: str, job_id: str, body: HeartbeatRequest | None, principal: Principal
) -> FinishResponse:
    held = _held(runtime, name, job_id, body.attempt if body else None, principal)
    config = runtime.queues.get(name)
    lease = float(config.claim_timeout) if config else runtime.queue.lease
    renewed = _fenced(runtime, name, lambda: runtime.queue.heartbeat(held, lease))
    return _finish_response(renewed, job_id)


# -- batches: one request for the jobs a worker has in hand, each still fenced by its own attempt ----------------
@router.post(
    "/queues/{name}/jobs/complete", response_model=BatchResponse, responses=errors(400, 401, 403, 404, 413, 503)
)
async def complete_jobs(
    name: QueuePath, body: CompleteBatch, runtime: RuntimeDep, principal: WorkerKey
) -> BatchResponse:
    """Complete several claimed jobs, each with its ``result``, in one store round trip where the store batches
    transitions (PostgreSQL, Redis). Each job answers as its own ``complete`` would."""
    return await run_in_threadpool(_complete_many, runtime, name, body.jobs, principal)


def _complete_many(runtime: Runtime, name: str, items: list[CompleteItem], principal: Principal) -> BatchResponse:
    _config(runtime, name)
    outcomes, held = _held_items(runtime, name, items, principal)
    queue = runtime.queue
    if queue.store.batches_transitions:
        moved = queue.complete_many([job for _, job in held], [items[i].result for i, _ in held])
    else:  # one request a job anyway (GitHub): each patient with a rate limit, as the per-job endpoint is
        moved = [_outcome(partial(queue.complete, job, result=items[i].result)) for i, job in held]
    for (i, _), outcome in zip(held, moved, strict=True):
        outcomes[i] = outcome
    runtime.metrics.completions.labels(name).inc(sum(isinstance(o, Job) for o in outcomes))
    return _batch_response(runtime, name, items, outcomes)


def _held_items(
    runtime: Runtime, name: str, items: Sequence[CompleteItem | HeartbeatItem], principal: Principal
) -> tuple[list[Job | Exception | None], list[tuple[int, Job]]]:
    """Each item's job as its holder names it (by place), and the refusal for each item that is not held."""
    outcomes: list[Job | Exception | None] = [None] * len(items)
    held: list[tuple[int, Job]] = []
    for i, item in enumerate(items):
        try:
            held.append((i, _held(runtime, name, item.id, item.attempt, principal)))
        except (HTTPException, OctoqueueError) as exc:
            outcomes[i] = exc
    return outcomes, held


@router.post("/queues/{name}/jobs/fail", response_model=BatchResponse, responses=errors(400, 401, 403, 404, 413, 503))
async def fail_jobs(name: QueuePath, body: FailBatch, runtime: RuntimeDep, principal: WorkerKey) -> BatchResponse:
    """Fail several claimed jobs, each as its own ``fail`` would (retried after the backoff while retries
    remain, unless ``retry`` is false)."""
    return await run_in_threadpool(_fail_many, runtime, name, body.jobs, principal)


def _fail_many(runtime: Runtime, name: str, items: list[FailItem], principal: Principal) -> BatchResponse:
    _config(runtime, name)
    outcomes: list[Job | Exception | None] = []
    for item in items:
        try:
            held = _held(runtime, name, item.id, item.attempt, principal)
        except (HTTPException, OctoqueueError) as exc:
            outcomes.append(exc)
            continue
        error = item.error or "failed by the worker"
        new = _outcome(partial(runtime.queue.fail, held, error=error, retry=item.retry))
        if isinstance(new, Job):
            runtime.metrics.failures.labels(name, "retry" if new.state is JobState.PENDING else "failed").inc()
        outcomes.append(new)
    return _batch_response(runtime, name, items, outcomes)


@router.post(
    "/queues/{name}/jobs/heartbeat", response_model=BatchResponse, responses=errors(400, 401, 403, 404, 413, 503)
)
async def heartbeat_jobs(
    name: QueuePath, body: HeartbeatBatch, runtime: RuntimeDep, principal: WorkerKey
) -> BatchResponse:
    """Extend the leases of several claimed jobs by the queue's ``claim_timeout``: one store round trip where the
    store batches. Each job answers as its own ``heartbeat`` would."""
    return await run_in_threadpool(_heartbeat_many, runtime, name, body.jobs, principal)


def _heartbeat_many(runtime: Runtime, name: str, items: list[HeartbeatItem], principal: Principal) -> BatchResponse:
    config = _config(runtime, name)
    outcomes, held = _held_items(runtime, name, items, principal)
    renewed = runtime.queue.heartbeat_many([job for _, job in held], float(config.claim_timeout))
    for (i, _), outcome in zip(held, renewed, strict=True):
        outcomes[i] = outcome
    return _batch_response(runtime, name, items, outcomes)


def _outcome(action: Callable[[], Job]) -> Job | Exception:
    """One job's move of a batch: its record, or the library error that refused it (the others go on)."""
    try:
        return action()
    except OctoqueueError as exc:
        return exc


def _batch_response(
    runtime: Runtime, name: str, items: Sequence[CompleteItem | FailItem | HeartbeatItem], outcomes: list[Any]
) -> BatchResponse:
    results = []
    for item, outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, Job):
            results.append(ItemOutcome(id=item.id, code=200, job=_finish_response(outcome, item.id)))
        elif isinstance(outcome, HTTPException):
            results.append(ItemOutcome(id=item.id, code=outcome.status_code, detail=str(outcome.detail)))
        else:
            if isinstance(outcome, (LeaseLost, StateConflict, InvalidTransition)):
                runtime.metrics.stale.labels(name).inc()
            results.append(ItemOutcome(id=item.id, code=status_of(outcome), detail=str(outcome)))
    return BatchResponse(results=results, done=sum(r.code == 200 for r in results))


@router.get("/queues/{name}/jobs", response_model=JobList, responses=errors(400, 401, 404, 503))
def list_jobs(
    name: QueuePath,
    runtime: RuntimeDep,
    principal: ReaderKey,
    status: Annotated[
        StatusFilter | None, Query(description="Only jobs in this state ('claimed' = processing).")
    ] = None,
    count: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000, pattern=r"^[A-Za-z0-9_.=-]*$")] = None,
) -> JobList:
    """The queue's jobs, oldest first, a page at a time."""
    _config(runtime, name)
    states = None
    if status is not None:
        states = [JobState.PROCESSING if status == "claimed" else JobState(status)]
    try:
        store_cursor = runtime.cursors.open(cursor)
        page = runtime.queue.list_jobs(states=states, labels=[queue_label(name)], cursor=store_cursor, limit=count)
    except (ValueError, OverflowError):
        raise HTTPException(400, detail="invalid cursor: pass back the cursor a listing returned") from None
    return JobList(
        jobs=[_worker_job(job, name) for job in page.jobs],
        cursor=runtime.cursors.sign(page.cursor),
        has_more=page.cursor is not None,
    )


__all__ = ["router"]
