"""The immutable job record and the records stores exchange with the queue."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from octoqueue.states import JobState, Priority

#: Fields of a job that live in octoqueue's metadata and that :meth:`Store.transition` may change.
MUTABLE_FIELDS = frozenset(
    {
        "run_at",
        "lease_expires_at",
        "worker",
        "result",
        "last_error",
        "attempt_base",
        "max_attempts",
        "priority",
    }
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Job(BaseModel):
    """One job: an issue with a JSON body and a status label. Immutable; changes make new records."""

    model_config = ConfigDict(frozen=True)

    id: int
    title: str
    data: Any = None
    state: JobState | None
    labels: tuple[str, ...] = ()
    open: bool = True
    type: str | None = None
    priority: int = Priority.NORMAL
    run_at: datetime | None = None
    attempt: int = 0
    attempt_base: int = 0
    max_attempts: int = 1
    lease_expires_at: datetime | None = None
    #: When the latest attempt was claimed (the store's clock); kept after it ends, until the next claim.
    started_at: datetime | None = None
    worker: str | None = None
    result: Any = None
    last_error: str | None = None
    idempotency_key: str | None = None
    timeout: float | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    comments: int = 0
    body_error: str | None = None
    url: str | None = None

    @property
    def attempts_used(self) -> int:
        """Attempts counted against ``max_attempts`` (a manual requeue starts a fresh budget)."""
        return self.attempt - self.attempt_base

    @property
    def attempts_left(self) -> int:
        return max(0, self.max_attempts - self.attempts_used)

    @property
    def status(self) -> str | None:
        return self.state.value if self.state is not None else None

    def lease_expired(self, now: datetime) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at <= now

    def meta(self) -> dict[str, Any]:
        """octoqueue's metadata for the hidden block of the issue body (defaults left out)."""
        meta: dict[str, Any] = {"attempt": self.attempt, "max_attempts": self.max_attempts}
        optional = {
            "attempt_base": self.attempt_base or None,
            "priority": self.priority if self.priority != Priority.NORMAL else None,
            "type": self.type,
            "run_at": _iso(self.run_at),
            "lease_expires_at": _iso(self.lease_expires_at),
            "started_at": _iso(self.started_at),
            "worker": self.worker,
            "result": self.result,
            "last_error": self.last_error,
            "idempotency_key": self.idempotency_key,
            "timeout": self.timeout,
        }
        meta.update({k: v for k, v in optional.items() if v is not None})
        return meta


_JOB_FIELDS = frozenset(Job.model_fields)
M = TypeVar("M", bound=BaseModel)
#: The fields set of every trusted job, one set for all: a Job is frozen, so pydantic never changes it in place,
#: and ``model_copy`` gives the copy a set of its own before adding to it.
_ALL_FIELDS_SET = set(_JOB_FIELDS)


def trusted_job(fields: dict[str, Any]) -> Job:
    """A :class:`Job` from ``fields``, a value for every field, already valid (a store's own record read back):
    no validation and no copying, about 1 µs where ``model_copy`` costs about 10 µs and ``model_construct`` as
    much, which counts on a claim or completion path of a few tens of µs. ``fields`` becomes the job's own."""
    _check_job_fields(fields.keys())
    return _built_job(fields)


def _check_job_fields(names: Collection[str]) -> None:
    if set(names) != _JOB_FIELDS:
        raise ValueError(
            f"a trusted job needs exactly the fields of Job; differs on {sorted(set(names) ^ _JOB_FIELDS)}"
        )


def trusted_job_builder(names: Collection[str]) -> Callable[[dict[str, Any]], Job]:
    """:func:`trusted_job` for a caller whose ``fields`` always have exactly the keys ``names`` (code generated from
    a column list): the keys are checked here, once, instead of at each call (~0.4 µs a job)."""
    _check_job_fields(names)
    return _built_job


def _unvalidated(cls: type[M], fields: dict[str, Any], fields_set: set[str], private: dict[str, Any] | None) -> M:
    """An instance of the pydantic model ``cls`` holding ``fields`` as they are: no validation, no copy."""
    record = object.__new__(cls)
    object.__setattr__(record, "__dict__", fields)
    object.__setattr__(record, "__pydantic_fields_set__", fields_set)
    object.__setattr__(record, "__pydantic_extra__", None)
    object.__setattr__(record, "__pydantic_private__", private)
    return record


def _built_job(fields: dict[str, Any]) -> Job:
    return _unvalidated(Job, fields, _ALL_FIELDS_SET, None)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


#: Job data as the stores write it: compact JSON, text kept as text (no ASCII escapes). One encoder for every call
#: (``json.dumps`` with options builds a new one each time).
encode_data = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class NewJob(BaseModel):
    """What :meth:`Store.create` needs to make a job."""

    model_config = ConfigDict(frozen=True)

    data: Any
    title: str
    labels: tuple[str, ...] = ()
    type: str | None = None
    priority: int = Priority.NORMAL
    run_at: datetime | None = None
    max_attempts: int = 1
    idempotency_key: str | None = None
    timeout: float | None = None
    #: ``(data, its JSON)`` when the queue already encoded ``data`` to check it (see :meth:`data_json`).
    _data_text: tuple[Any, str] | None = PrivateAttr(default=None)

    def data_json(self) -> str:
        """``data`` as the stores write it (:data:`encode_data`). The text the queue made when it checked the data
        (:meth:`with_data_json`) is reused while ``data`` is still that object; a copy with other data (a sealed
        store's, :meth:`model_copy`) is encoded afresh."""
        private = self.__pydantic_private__  # a slot: reading the attribute goes through pydantic's __getattr__
        known = private.get("_data_text") if private else None
        if known is not None and known[0] is self.data:
            return known[1]
        return encode_data(self.data)

    def with_data_json(self, text: str) -> NewJob:
        """This record, remembering that ``text`` is its data encoded by :data:`encode_data` (the caller's word)."""
        self._data_text = (self.data, text)
        return self

    @classmethod
    def of(cls, fields: dict[str, Any], text: str) -> NewJob:
        """The record of ``fields`` (a value for every field) whose data's :data:`encode_data` text is ``text``.
        When each value already has its field's exact type (``title`` a str, ``labels`` a tuple of str,
        ``priority`` and ``max_attempts`` ints, ``type`` / ``idempotency_key`` a str or None, ``run_at`` a datetime
        or None, ``timeout`` a float or None) the record is built without pydantic's validation, which would keep
        every value as it is (~1 µs where validating costs ~5, on every enqueue); any other value is validated (and
        converted or refused) as the constructor does."""
        kind, key, run_at, timeout = fields["type"], fields["idempotency_key"], fields["run_at"], fields["timeout"]
        if not (
            len(fields) == _NEW_JOB_FIELD_COUNT
            and fields["title"].__class__ is str
            and fields["priority"].__class__ is int
            and fields["max_attempts"].__class__ is int
            and (kind is None or kind.__class__ is str)
            and (key is None or key.__class__ is str)
            and (run_at is None or run_at.__class__ is datetime)
            and (timeout is None or timeout.__class__ is float)
            and fields["labels"].__class__ is tuple
            and (not fields["labels"] or all(label.__class__ is str for label in fields["labels"]))
        ):
            return cls(**fields).with_data_json(text)
        return _unvalidated(cls, fields, set(_NEW_JOB_FIELDS), {"_data_text": (fields["data"], text)})

    def for_item(self, data: Any, idempotency_key: str | None, text: str) -> NewJob:
        """A copy with ``data`` (whose :data:`encode_data` text is ``text``) and ``idempotency_key`` (a str or None,
        already checked): one item of a batch whose other fields were validated once, in this record. Built without
        validation or pydantic's copy (~1 µs, where ``model_copy`` costs ~8)."""
        fields = dict(self.__dict__)
        fields["data"] = data
        fields["idempotency_key"] = idempotency_key
        fields_set = self.__pydantic_fields_set__ | {"data", "idempotency_key"}
        return _unvalidated(NewJob, fields, fields_set, {"_data_text": (data, text)})

    def created(self, job_id: int, now: datetime) -> Job:
        """The record a read of this job returns right after a store created it as ``job_id`` at ``now``: pending,
        open, no attempt yet. Built without validation (:func:`trusted_job`): this record's values were checked."""
        fields = _FRESH.copy()
        fields.update(self.__dict__)
        fields["id"] = job_id
        fields["created_at"] = fields["updated_at"] = now
        return _built_job(fields)

    def to_job(self, job_id: int, now: datetime) -> Job:
        return Job(
            id=job_id,
            title=self.title,
            data=self.data,
            state=JobState.PENDING,
            labels=self.labels,
            type=self.type,
            priority=self.priority,
            run_at=self.run_at,
            max_attempts=self.max_attempts,
            idempotency_key=self.idempotency_key,
            timeout=self.timeout,
            created_at=now,
            updated_at=now,
        )


_NEW_JOB_FIELDS = frozenset(NewJob.model_fields)
#: A created job's fields that its NewJob does not give (:meth:`NewJob.created` fills in the rest).
_FRESH: dict[str, Any] = {
    "id": 0,
    "state": JobState.PENDING,
    "created_at": None,
    "updated_at": None,
    "open": True,
    "attempt": 0,
    "attempt_base": 0,
    "lease_expires_at": None,
    "started_at": None,
    "worker": None,
    "result": None,
    "last_error": None,
    "comments": 0,
    "body_error": None,
    "url": None,
}
if _FRESH.keys() | _NEW_JOB_FIELDS != _JOB_FIELDS:
    raise TypeError("NewJob.created would not give a Job every field")
_NEW_JOB_FIELD_COUNT = len(_NEW_JOB_FIELDS)


class Comment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    job_id: int
    body: str
    author: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Page(BaseModel):
    """One page of a listing; pass ``cursor`` back to get the next one (None: this was the last)."""

    model_config = ConfigDict(frozen=True)

    jobs: list[Job]
    cursor: str | None = None
