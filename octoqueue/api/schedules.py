"""``/schedules``: cron schedules over HTTP. Reading needs a read key; defining, changing and deleting need the
admin role (a schedule makes jobs with no producer in the loop); triggering one needs the producer role."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from octoqueue.api.auth import AdminKey, ProducerKey, ReaderKey
from octoqueue.api.context import Runtime, RuntimeDep
from octoqueue.api.jobschema import SchemaMismatch
from octoqueue.api.models import (
    Attempts,
    JobType,
    JsonValue,
    Label,
    PriorityLevel,
    PriorityName,
    RequestBody,
    Title,
    errors,
)
from octoqueue.api.ratelimit import rate_limit
from octoqueue.schedules import MAX_CATCHUP, Schedule, find

router = APIRouter(prefix="/schedules", tags=["schedules"])

ScheduleId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", description="The schedule's id.")]


class ScheduleDefinition(RequestBody):
    model_config = ConfigDict(strict=True, extra="forbid")  # a misspelt field would silently change nothing

    cron: str = Field(max_length=200, description="Cron expression: 5 fields (a 6th for seconds) or '@daily' etc.")
    data: JsonValue = Field(None, description="The data of every job the schedule makes.")
    title: Title | None = Field(None, description="Title of its jobs; default '<id> <tick time>'.")
    type: JobType | None = Field(None, description="Job type: which handler runs its jobs.")
    labels: list[Label] = Field(default_factory=list, max_length=20, description="Extra labels of its jobs.")
    priority: PriorityLevel | PriorityName = Field(2, description="0 (critical) ... 4 (bulk), or the level's name.")
    max_attempts: Attempts | None = Field(None, description="Tries before a job is failed for good.")
    timeout: float | None = Field(None, gt=0, le=7 * 86400, description="Seconds a handler may run.")
    timezone: str = Field("UTC", max_length=64, description="IANA time zone the cron expression is read in.")
    catchup: int = Field(0, ge=0, le=MAX_CATCHUP, strict=True, description="Missed ticks also fired after an outage.")
    enabled: bool = Field(True, description="Whether the schedule fires.")


class ScheduleView(BaseModel):
    id: str
    cron: str
    data: Any = None
    title: str | None
    type: str | None
    labels: list[str]
    priority: int
    max_attempts: int | None
    timeout: float | None
    timezone: str
    catchup: int
    enabled: bool
    created_at: datetime
    updated_at: datetime
    last_run: datetime | None = Field(description="The newest tick that fired.")
    last_job_id: int | None = Field(description="The job that tick made.")
    next_run: datetime | None = Field(description="The next tick (null while disabled or once the timetable ended).")


class Triggered(BaseModel):
    job_id: int
    status: str


def _view(schedule: Schedule, now: datetime) -> ScheduleView:
    fields = schedule.model_dump()
    fields["labels"] = list(schedule.labels)
    return ScheduleView(**fields, next_run=schedule.next_run(now) if schedule.enabled else None)


@router.get("", response_model=list[ScheduleView], responses=errors(401, 403, 503))
def list_schedules(runtime: RuntimeDep, principal: ReaderKey) -> list[ScheduleView]:
    """Every schedule, by id, with its last and next run."""
    now = runtime.queue.store.now()
    return [_view(schedule, now) for schedule in runtime.schedules()]


@router.get("/{schedule_id}", response_model=ScheduleView, responses=errors(401, 403, 404, 503))
def get_schedule(schedule_id: ScheduleId, runtime: RuntimeDep, principal: ReaderKey) -> ScheduleView:
    """One schedule, with its last and next run."""
    return _view(find(runtime.schedules(), schedule_id), runtime.queue.store.now())


def _changed(runtime: Runtime) -> None:
    """This process changed a schedule: read it afresh, and let the in-process scheduler look again."""
    runtime.schedule_reads.forget()
    if runtime.scheduler is not None:
        runtime.scheduler.wake()


def _define(runtime: Runtime, schedule_id: str, body: ScheduleDefinition) -> Schedule:
    try:
        runtime.job_schema.validate(body.data)  # its jobs will not pass /create-job's checks: check them now
    except SchemaMismatch as exc:
        raise HTTPException(400, detail=str(exc)) from None
    return runtime.queue.create_schedule(
        schedule_id,
        body.data,
        body.cron,
        title=body.title,
        type=body.type,
        labels=body.labels,
        priority=body.priority,
        max_attempts=body.max_attempts,
        timeout=body.timeout,
        timezone=body.timezone,
        catchup=body.catchup,
        enabled=body.enabled,
    )


@router.put("/{schedule_id}", response_model=ScheduleView, responses=errors(400, 401, 403, 413, 503))
async def put_schedule(
    schedule_id: ScheduleId, body: ScheduleDefinition, runtime: RuntimeDep, principal: AdminKey
) -> ScheduleView:
    """Define or redefine a schedule. Redefining keeps its last run, so no tick fires twice; its data must match
    the admin schema as a /create-job job's would."""
    schedule = await run_in_threadpool(_define, runtime, schedule_id, body)
    _changed(runtime)
    return _view(schedule, runtime.queue.store.now())


@router.post("/{schedule_id}/enable", response_model=ScheduleView, responses=errors(401, 403, 404, 503))
def enable_schedule(schedule_id: ScheduleId, runtime: RuntimeDep, principal: AdminKey) -> ScheduleView:
    """Fire again from the next tick on (ticks missed while disabled do not fire)."""
    schedule = runtime.queue.enable_schedule(schedule_id)
    _changed(runtime)
    return _view(schedule, runtime.queue.store.now())


@router.post("/{schedule_id}/disable", response_model=ScheduleView, responses=errors(401, 403, 404, 503))
def disable_schedule(schedule_id: ScheduleId, runtime: RuntimeDep, principal: AdminKey) -> ScheduleView:
    """Stop firing the schedule (it is kept, and can be enabled again)."""
    schedule = runtime.queue.disable_schedule(schedule_id)
    _changed(runtime)
    return _view(schedule, runtime.queue.store.now())


@router.delete("/{schedule_id}", status_code=204, responses=errors(401, 403, 404, 503))
def delete_schedule(schedule_id: ScheduleId, runtime: RuntimeDep, principal: AdminKey) -> None:
    """Remove the schedule (jobs it already made stay)."""
    runtime.queue.delete_schedule(schedule_id)
    _changed(runtime)


@router.post(
    "/{schedule_id}/trigger",
    status_code=201,
    response_model=Triggered,
    responses=errors(401, 403, 404, 429, 503),
    dependencies=[Depends(rate_limit)],  # it makes a job, as /create-job does: the same producer limit
)
def trigger_schedule(schedule_id: ScheduleId, runtime: RuntimeDep, principal: ProducerKey) -> Triggered:
    """Enqueue the schedule's job now, outside its timetable (which is unchanged)."""
    job = runtime.queue.trigger_schedule(schedule_id)
    runtime.metrics.created.labels("schedule").inc()
    return Triggered(job_id=job.id, status=job.status or "pending")


__all__ = ["ScheduleDefinition", "ScheduleView", "router"]
