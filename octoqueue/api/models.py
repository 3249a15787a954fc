"""Shapes shared by the routers: the error body, documented error responses, and JSON-safe value types."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import Header
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StringConstraints

from octoqueue.errors import (
    AccessDenied,
    ConfigurationError,
    InvalidJobData,
    InvalidTransition,
    JobNotFound,
    JobTooLarge,
    RateLimited,
    ScheduleNotFound,
    StateConflict,
    StoreUnavailable,
)


class RequestBody(BaseModel):
    """Base of request bodies: strict types (no ``true`` for a number, no ``"5"`` for an integer)."""

    model_config = ConfigDict(strict=True)


#: Library errors -> HTTP status. The most specific class listed first wins.
_STATUS: list[tuple[type[Exception], int]] = [
    (JobNotFound, 404),
    (ScheduleNotFound, 404),
    (StateConflict, 409),  # LeaseLost included: a stale claim
    (InvalidTransition, 409),
    (JobTooLarge, 413),
    (InvalidJobData, 400),
    (RateLimited, 503),
    (StoreUnavailable, 503),
    (AccessDenied, 503),  # the store refuses the server's credentials: an operator must fix them
    (ConfigurationError, 500),
]


def status_of(exc: Exception) -> int:
    """The HTTP status that answers a library error (500 for one not listed)."""
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)


class ErrorResponse(BaseModel):
    """Every error the server answers (except request validation, 422) has this body."""

    detail: str


def check_json(value: Any) -> Any:
    # JSON from the wire may hold NaN/Infinity or lone UTF-16 surrogates ("\ud800"); neither can be stored
    # (GitHub and SQLite take UTF-8 text, and octoqueue writes strict JSON).
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as exc:
        raise ValueError(f"not storable as JSON text: {exc}") from None
    return value


def check_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone UTF-16 surrogate, which is not valid Unicode text") from None
    return value


#: Any JSON value octoqueue can store.
JsonValue = Annotated[Any, AfterValidator(check_json)]
#: A JSON object octoqueue can store.
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
# Integers are strict everywhere (not only inside a RequestBody): ``2``, never ``2.0``, ``"2"`` or ``true``.
PriorityLevel = Annotated[int, Strict(), Field(ge=0, le=4)]
Attempts = Annotated[int, Strict(), Field(ge=1, le=100)]
Attempt = Annotated[int, Strict(), Field(ge=1, le=1_000_000_000)]
Retries = Annotated[int, Strict(), Field(ge=0, le=100)]
Seconds = Annotated[int, Strict(), Field(ge=1, le=7 * 86400)]
Count = Annotated[int, Strict(), Field(ge=1, le=100)]
Milliseconds = Annotated[int, Strict(), Field(ge=0, le=300_000)]
#: Text octoqueue can store (GitHub takes no NUL characters).
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$"), AfterValidator(check_text)]
#: A label GitHub accepts: 1-50 characters, no comma (commas separate labels in GitHub's filters).
Label = Annotated[
    str, StringConstraints(min_length=1, max_length=50, pattern=r"^[^,\x00]+$"), AfterValidator(check_text)
]
PriorityName = Literal["critical", "high", "normal", "low", "bulk"]
#: A job's title (GitHub's issue titles are at most 256 characters).
Title = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]+$"), AfterValidator(check_text)
]
JobType = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00]+$"), AfterValidator(check_text)
]
#: The ``Idempotency-Key`` header: a retry with the same key creates nothing and returns what the first request made.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key returns the job(s) the first request created (see the docs).",
    ),
]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error status codes, each with :class:`ErrorResponse` as its body."""
    described = {
        400: "The request is malformed or the job data does not match the schema.",
        401: "No API key, or an unknown one.",
        403: "The API key lacks the role this call needs.",
        404: "No such job or queue.",
        409: "The job moved on (state or attempt changed): a stale claim, or a conflicting change.",
        413: "The request body is over the size limit, or the job would not fit in an issue body.",
        429: "Rate limit exceeded; see the Retry-After header.",
        503: "The store is unavailable (or GitHub's rate limit is spent); retry later.",
    }
    return {code: {"model": ErrorResponse, "description": described[code]} for code in codes}


__all__ = [
    "Attempt",
    "Attempts",
    "Count",
    "ErrorResponse",
    "IdempotencyKey",
    "JsonObject",
    "JsonValue",
    "Label",
    "Milliseconds",
    "PriorityLevel",
    "RequestBody",
    "Retries",
    "Seconds",
    "Text",
    "check_json",
    "check_text",
    "errors",
    "status_of",
]
