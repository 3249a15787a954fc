"""The SQLite store's ``jobs`` columns, each once: what it holds, how a job's value is stored in it and read back,
and whether creating or changing a job writes it. The SELECT list, the row → :class:`~octoqueue.job.Job` mapping,
the INSERT and the UPDATE are all made from :data:`COLUMNS`, so a new job field is one entry here (and the
migration step that adds its column, in ``_sqlite_migrations``).

Conversions see values, never NULL: NULL reads as None and None is stored as NULL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from octoqueue.job import Job, NewJob
from octoqueue.states import JobState

Convert = Callable[[Any], Any]

#: One JSON encoding for every JSON column: compact, text kept as text.
_dump = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def _timestamp(value: datetime) -> float:
    return value.timestamp()


def _datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _store_state(value: JobState) -> str:
    return value.value


_STATES = {state.value: state for state in JobState}


def _load_state(value: str) -> JobState:
    return _STATES[value] if value in _STATES else JobState(value)


def _store_labels(value: tuple[str, ...]) -> str:
    return _dump(list(value))


def _load_labels(value: str) -> tuple[str, ...]:
    return tuple(json.loads(value)) if value != "[]" else ()  # most jobs have none: skip the parser


@dataclass(frozen=True)
class Column:
    """A column of ``jobs`` and the :class:`~octoqueue.job.Job` field of the same name."""

    name: str
    #: the job's value → the stored value (None: stored as it is)
    store: Convert | None = None
    #: the stored value → the job's value (None: read as it is)
    load: Convert | None = None
    #: :meth:`SQLiteStore.create` writes it (from the NewJob field of the same name, or as :func:`insert_params`
    #: is told); otherwise the column's DEFAULT fills it
    inserted: bool = False
    #: a change of the job (transition, recovery) writes it
    updated: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("id"),
    Column("title", inserted=True),
    Column("data", store=_dump, load=json.loads, inserted=True),
    Column("state", store=_store_state, load=_load_state, inserted=True, updated=True),
    Column("open", store=int, load=bool, updated=True),
    Column("labels", store=_store_labels, load=_load_labels, inserted=True),
    Column("type", inserted=True),
    Column("priority", store=int, inserted=True, updated=True),
    Column("run_at", store=_timestamp, load=_datetime, inserted=True, updated=True),
    Column("attempt", updated=True),
    Column("attempt_base", updated=True),
    Column("max_attempts", inserted=True, updated=True),
    Column("lease_expires_at", store=_timestamp, load=_datetime, updated=True),
    Column("worker", updated=True),
    Column("result", store=_dump, load=json.loads, updated=True),
    Column("last_error", updated=True),
    Column("idempotency_key", inserted=True),
    Column("timeout", inserted=True),
    Column("created_at", store=_timestamp, load=_datetime, inserted=True),
    Column("updated_at", store=_timestamp, load=_datetime, inserted=True, updated=True),
    Column("comments"),
    Column("body_error"),
)

_BY_NAME = {column.name: column for column in COLUMNS}
_NAMES = tuple(column.name for column in COLUMNS)
_LOADS = tuple((column.name, column.load) for column in COLUMNS if column.load is not None)
_INSERTED = tuple(column for column in COLUMNS if column.inserted)
_UPDATED = tuple(column for column in COLUMNS if column.updated)

#: Every column, in :func:`row_to_job`'s order: what a SELECT or RETURNING lists.
SELECT_LIST = ", ".join(_NAMES)

#: Creates a job from :func:`insert_params` and returns its row.
INSERT_SQL = (
    f"INSERT INTO jobs ({', '.join(c.name for c in _INSERTED)}) VALUES ({', '.join('?' * len(_INSERTED))}) "
    f"RETURNING {SELECT_LIST}"
)

#: Writes a changed job from :func:`update_params`.
UPDATE_SQL = f"UPDATE jobs SET {', '.join(f'{c.name} = ?' for c in _UPDATED)} WHERE id = ?"


def stored(name: str, value: Any) -> Any:
    """``value`` of the job field ``name`` as its column holds it."""
    convert = _BY_NAME[name].store
    return value if value is None or convert is None else convert(value)


def insert_params(new: NewJob, given: Mapping[str, Any]) -> list[Any]:
    """:data:`INSERT_SQL`'s parameters: each inserted column from ``given`` if named there, else from ``new``."""
    return [stored(c.name, given[c.name] if c.name in given else getattr(new, c.name)) for c in _INSERTED]


def update_params(job: Job) -> list[Any]:
    """:data:`UPDATE_SQL`'s parameters: the job's updated fields, then its id."""
    return [stored(c.name, getattr(job, c.name)) for c in _UPDATED] + [job.id]


#: Every row becomes a copy of this record with all its fields replaced: pydantic's model_copy is the cheapest
#: public way to build a model from trusted values (model_construct walks every field's defaults and aliases).
_TEMPLATE = Job.model_construct(id=0, title="", state=None, created_at=_datetime(0), updated_at=_datetime(0))


def row_to_job(row: tuple[Any, ...]) -> Job:
    """The job a row of :data:`SELECT_LIST` holds. Not validated: the row was valid when written, and this runs for
    every job claimed and completed."""
    fields = dict(zip(_NAMES, row, strict=True))
    for name, load in _LOADS:
        value = fields[name]
        if value is not None:
            fields[name] = load(value)
    fields["url"] = None
    return _TEMPLATE.model_copy(update=fields)
