"""``/admin/schema``: the JSON Schema every new job's data must match. Admin key required.

Stored in the queue's store (setting ``job_schema``): it survives restarts and is shared by every server
process on the store; another process's change shows within ``OCTOQUEUE_SETTINGS_CACHE_SECONDS``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from octoqueue.api.auth import AdminKey
from octoqueue.api.context import RuntimeDep
from octoqueue.api.jobschema import InvalidSchema
from octoqueue.api.models import RequestBody, errors

router = APIRouter(prefix="/admin", tags=["admin"])


class SchemaUpdate(RequestBody):
    """``{"schema": {...}}`` (the README's form) or ``{"job_schema": {...}}`` (the original server's)."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={"oneOf": [{"required": ["schema"]}, {"required": ["job_schema"]}]},
    )

    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema", description="A JSON Schema for job data.")
    job_schema: dict[str, Any] = Field(default_factory=dict, description="Same as 'schema' (the original's name).")

    @model_validator(mode="after")
    def _exactly_one(self) -> SchemaUpdate:
        if len({"schema_", "job_schema"} & self.model_fields_set) != 1:
            raise ValueError("give the schema as 'schema' or as 'job_schema' (exactly one)")
        return self

    @property
    def document(self) -> dict[str, Any]:
        return self.schema_ if "schema_" in self.model_fields_set else self.job_schema


class SchemaUpdated(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Schema updated successfully"


class SchemaDocument(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: dict[str, Any] | None = Field(None, alias="schema", description="The schema, or null when none.")
    job_schema: dict[str, Any] | None = Field(None, description="The same schema (the original's field name).")


@router.post("/schema", response_model=SchemaUpdated, responses=errors(400, 401, 403, 413, 503))
def set_schema(body: SchemaUpdate, runtime: RuntimeDep, principal: AdminKey) -> SchemaUpdated:
    """Set the JSON Schema new jobs' data must match. An invalid JSON Schema is refused with 400."""
    try:
        runtime.job_schema.set(body.document)
    except InvalidSchema as exc:
        raise HTTPException(400, detail=str(exc)) from None
    return SchemaUpdated()


@router.get("/schema", response_model=SchemaDocument, responses=errors(401, 403, 503))
def get_schema(runtime: RuntimeDep, principal: AdminKey) -> SchemaDocument:
    """The current job-data schema (null when none is set)."""
    schema = runtime.job_schema.get()
    return SchemaDocument(schema=schema, job_schema=schema)


@router.delete("/schema", response_model=SchemaUpdated, responses=errors(401, 403, 503))
def delete_schema(runtime: RuntimeDep, principal: AdminKey) -> SchemaUpdated:
    """Remove the schema: job data is no longer validated."""
    runtime.job_schema.set(None)
    return SchemaUpdated(message="Schema removed")


__all__ = ["SchemaDocument", "SchemaUpdate", "SchemaUpdated", "router"]
