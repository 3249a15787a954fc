"""``/admin/pause``, ``/admin/resume``, ``/admin/pauses``: stop and restart claims of the whole queue or of a label.
Admin key required. The state is the store's ``paused`` setting (:mod:`octoqueue.pauses`): every process on the
store, workers included, sees it within their pause check interval (5 s)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from octoqueue.api.auth import AdminKey
from octoqueue.api.context import RuntimeDep
from octoqueue.api.models import Label, RequestBody, errors
from octoqueue.pauses import Pauses

router = APIRouter(prefix="/admin", tags=["admin"])


class PauseRequest(RequestBody):
    label: Label | None = Field(
        None, description="Only the jobs carrying this label (a named queue q: 'queue:q'); null: the whole queue."
    )


class PauseState(BaseModel):
    queue: bool = Field(description="Whether claims of the whole queue are paused.")
    since: str | None = Field(None, description="When the whole queue was paused (the store's clock).")
    labels: dict[str, str] = Field(description="Paused labels, each with when it was paused.")

    @classmethod
    def of(cls, pauses: Pauses) -> PauseState:
        return cls.model_validate(pauses.as_dict())


@router.get("/pauses", response_model=PauseState, responses=errors(401, 403, 503))
async def get_pauses(runtime: RuntimeDep, principal: AdminKey) -> PauseState:
    """What is paused now."""
    return PauseState.of(await run_in_threadpool(runtime.queue.paused))


@router.post("/pause", response_model=PauseState, responses=errors(400, 401, 403, 503))
async def pause(runtime: RuntimeDep, principal: AdminKey, body: PauseRequest | None = None) -> PauseState:
    """Stop claims of every job, or of the jobs carrying ``label``. Enqueues are still taken; jobs in hand finish.
    Pausing what is paused changes nothing. Answers the new state."""
    label = body.label if body is not None else None
    return PauseState.of(await run_in_threadpool(runtime.queue.pause, label))


@router.post("/resume", response_model=PauseState, responses=errors(400, 401, 403, 503))
async def resume(runtime: RuntimeDep, principal: AdminKey, body: PauseRequest | None = None) -> PauseState:
    """Let claims run again: of the whole queue (label pauses stay), or of the jobs carrying ``label``. Answers
    what is still paused."""
    label = body.label if body is not None else None
    return PauseState.of(await run_in_threadpool(runtime.queue.resume, label))


__all__ = ["PauseRequest", "PauseState", "router"]
