"""The SQLite store's ``jobs`` columns, each once: what it holds, how a job's value is stored in it and read back,
and whether creating or changing a job writes it. The SELECT list, the row → :class:`~octoqueue.job.Job` mapping,
the INSERT and the UPDATE are all made from :data:`COLUMNS`, so a new job field is one entry here (and the
migration step that adds its column, in ``_sqlite_migrations``).

Conversions see values, never NULL: NULL reads as None and None is stored as NULL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from octoqueue.job import Job, NewJob, encode_data, trusted_job_builder
from octoqueue.states import JobState

Convert = Callable[[Any], Any]

#: One JSON encoding for every JSON column: compact, text kept as text (the encoder of job data, made once).
_dump = encode_data


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
    return _dump(list(value)) if value else "[]"  # most jobs have none: skip the encoder


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
    #: what a new row holds when :meth:`SQLiteStore.create` does not write the column: its ``DEFAULT`` in the
    #: schema (``_sqlite_migrations``), as stored
    default: Any = None


COLUMNS: tuple[Column, ...] = (
    Column("id"),
    Column("title", inserted=True),
    Column("data", store=_dump, load=json.loads, inserted=True),
    Column("state", store=_store_state, load=_load_state, inserted=True, updated=True),
    Column("open", store=int, load=bool, updated=True, default=1),
    Column("labels", store=_store_labels, load=_load_labels, inserted=True),
    Column("type", inserted=True),
    Column("priority", store=int, inserted=True, updated=True),
    Column("run_at", store=_timestamp, load=_datetime, inserted=True, updated=True),
    Column("attempt", updated=True, default=0),
    Column("attempt_base", updated=True, default=0),
    Column("max_attempts", inserted=True, updated=True),
    Column("lease_expires_at", store=_timestamp, load=_datetime, updated=True),
    Column("started_at", store=_timestamp, load=_datetime, updated=True),
    Column("worker", updated=True),
    Column("result", store=_dump, load=json.loads, updated=True),
    Column("last_error", updated=True),
    Column("idempotency_key", inserted=True),
    Column("timeout", inserted=True),
    Column("created_at", store=_timestamp, load=_datetime, inserted=True),
    Column("updated_at", store=_timestamp, load=_datetime, inserted=True, updated=True),
    Column("comments", default=0),
    Column("body_error"),
)

_BY_NAME = {column.name: column for column in COLUMNS}
_INSERTED = tuple(column for column in COLUMNS if column.inserted)
_UPDATED = tuple(column for column in COLUMNS if column.updated)

#: Every column, in :func:`row_to_job`'s order: what a SELECT or RETURNING lists.
SELECT_LIST = ", ".join(column.name for column in COLUMNS)

#: The id a new job gets: the one after the highest job's and after jobs_top's, the highest ever given once the job
#: holding it was deleted (schema version 4, ``_sqlite_migrations``), so no id is ever given twice. Read in the
#: INSERT, which holds the write lock from its start.
_NEXT_ID = "max(ifnull((SELECT max(id) FROM jobs), 0), ifnull((SELECT id FROM jobs_top), 0)) + 1"

#: Creates a job from :func:`insert_params`; its id is the cursor's ``lastrowid`` (:func:`created_job` makes the rest
#: of the record from the parameters: reading back every column cost ~8 µs more per job, ``RETURNING id`` ~1.5).
INSERT_SQL = (
    f"INSERT INTO jobs (id, {', '.join(c.name for c in _INSERTED)}) "
    f"VALUES ({_NEXT_ID}, {', '.join('?' * len(_INSERTED))})"
)

#: Writes a whole job, its id included (an import; see :func:`import_params`).
IMPORT_SQL = f"INSERT INTO jobs ({SELECT_LIST}) VALUES ({', '.join('?' * len(COLUMNS))}) RETURNING {SELECT_LIST}"


def import_params(job: Job, comments: int) -> list[Any]:
    """:data:`IMPORT_SQL`'s parameters: every field of ``job`` as its column holds it, ``comments`` as the count."""
    return [comments if c.name == "comments" else stored(c.name, getattr(job, c.name)) for c in COLUMNS]


#: Writes a changed job from :func:`update_params`.
UPDATE_SQL = f"UPDATE jobs SET {', '.join(f'{c.name} = ?' for c in _UPDATED)} WHERE id = ?"


def stored(name: str, value: Any) -> Any:
    """``value`` of the job field ``name`` as its column holds it."""
    convert = _BY_NAME[name].store
    return value if value is None or convert is None else convert(value)


#: Every row and every created job becomes a Job through this, unvalidated (each value is a column's, as a read gives;
#: pydantic's ``model_copy`` of a template cost ~5 µs more a row): the generated functions below give it every column
#: and ``url``, and that key list is checked once, here.
_trusted_job = trusted_job_builder([*(column.name for column in COLUMNS), "url"])

# The three functions below run for every job created, claimed and completed, so they are written out from
# COLUMNS when this module is imported, as dataclasses writes __init__ (a loop over the columns at each call cost
# ~15 % more CPU per row, see docs/benchmarks.md). Each column's value is a local of the column's name; each
# converter is called by name (_store_<column>, _load_<column>).
_CONVERTERS: dict[str, Convert] = {
    **{f"_store_{c.name}": c.store for c in COLUMNS if c.store is not None},
    **{f"_load_{c.name}": c.load for c in COLUMNS if c.load is not None},
}


def _converted(direction: str, column: Column) -> str:
    """Source for the local ``column.name`` stored into or loaded from the column; None stays None."""
    convert = column.store if direction == "store" else column.load
    name = column.name
    return name if convert is None else f"(None if {name} is None else _{direction}_{name}({name}))"


_RESERVED = {"new", "job", "row", "params", "row_to_job", "trusted_job"}  # the generated functions' own names
_bad = [c.name for c in COLUMNS if not c.name.isidentifier() or c.name in _RESERVED]
if _bad:
    raise ValueError(f"column names the generated functions cannot hold in a local: {_bad}")


def _compile(name: str, source: str, **names: Any) -> Callable[..., Any]:
    namespace: dict[str, Any] = {**_CONVERTERS, **names}
    exec(compile(source, f"<octoqueue.stores._sqlite_columns.{name}>", "exec"), namespace)
    function: Callable[..., Any] = namespace[name]
    function.__doc__ = source  # what runs, for a reader in a debugger
    return function


_FROM_NEW = [c.name for c in _INSERTED if c.name in NewJob.model_fields]


def _inserted(column: Column) -> str:
    """Source for ``column``'s parameter of the INSERT; the data is the text :meth:`NewJob.data_json` gives (the
    queue encoded it once, to check it), which is what the column's converter makes of it."""
    if column.name == "data":
        return "(None if data is None else new.data_json())"
    return _converted("store", column)


if _BY_NAME["data"].store is not _dump:
    raise ValueError("the data column must be stored as NewJob.data_json encodes it")

#: ``insert_params(new, *, <inserted columns NewJob lacks>)``: :data:`INSERT_SQL`'s parameters, each inserted column
#: from the NewJob field of its name, or else from the keyword argument of its name.
insert_params: Callable[..., list[Any]] = _compile(
    "insert_params",
    f"def insert_params(new, *, {', '.join(c.name for c in _INSERTED if c.name not in _FROM_NEW)}):\n"
    + "".join(f"    {name} = new.{name}\n" for name in _FROM_NEW)
    + f"    return [{', '.join(_inserted(c) for c in _INSERTED)}]\n",
)

#: ``update_params(job)``: :data:`UPDATE_SQL`'s parameters, the job's updated fields, then its id.
update_params: Callable[[Job], list[Any]] = _compile(
    "update_params",
    "def update_params(job):\n"
    + "".join(f"    {c.name} = job.{c.name}\n" for c in _UPDATED)
    + f"    return [{', '.join(_converted('store', c) for c in _UPDATED)}, job.id]\n",
)

#: ``row_to_job(row)``: the job a row of :data:`SELECT_LIST` holds. Not validated: the row was valid when written.
row_to_job: Callable[[tuple[Any, ...]], Job] = _compile(
    "row_to_job",
    "def row_to_job(row):\n"
    f"    ({', '.join(c.name for c in COLUMNS)},) = row\n"
    "    return trusted_job({"
    + ", ".join(f"{c.name!r}: {_converted('load', c)}" for c in COLUMNS)
    + ", 'url': None})\n",
    trusted_job=_trusted_job,
)

#: What a new row holds in each column the INSERT does not write, as read (loaded once, here).
_DEFAULTS = {
    f"_default_{c.name}": c.load(c.default) if c.load is not None and c.default is not None else c.default
    for c in COLUMNS
    if not c.inserted and c.name != "id"
}

#: ``created_job(id, params, data)``: the job :data:`INSERT_SQL` with ``params`` (from :func:`insert_params`) created
#: as ``id``: the row it wrote, the columns it did not write at their defaults, read as :func:`row_to_job` reads it,
#: except the data, which is ``data`` itself (the NewJob's: decoding the text just encoded from it made an equal
#: value at ~3 µs a job).
created_job: Callable[[int, list[Any], Any], Job] = _compile(
    "created_job",
    "def created_job(id, params, data):\n"
    f"    ({', '.join(c.name if c.name != 'data' else '_' for c in _INSERTED)},) = params\n"
    + "".join(f"    {c.name} = _default_{c.name}\n" for c in COLUMNS if not c.inserted and c.name != "id")
    + "    return trusted_job({"
    + ", ".join(f"{c.name!r}: {_converted('load', c) if c.inserted and c.name != 'data' else c.name}" for c in COLUMNS)
    + ", 'url': None})\n",
    trusted_job=_trusted_job,
    **_DEFAULTS,
)
