"""The PostgreSQL store: one row per job, state changes as conditional statements, the database's clock.

A claim is one ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)``: concurrent claimers skip each other's rows
instead of queueing on them, and a row whose state another transaction changed is re-checked before it is taken,
so a job is never handed out twice. The usual transition (complete, fail, heartbeat) is one ``UPDATE ... WHERE id
AND state AND attempt RETURNING``; anything it does not match is read ``FOR UPDATE`` in a short transaction and
judged by the shared rules (:func:`~octoqueue.stores.base.apply_transition`), which raise the contract's exception.
Every timestamp is the database's ``now()``. Statements that make jobs pending NOTIFY, in their own transaction,
the store objects of other processes that watch arrivals (:mod:`octoqueue.stores.postgres.arrivals`).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Self
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from octoqueue.errors import (
    ConfigurationError,
    InvalidJobData,
    InvalidTransition,
    JobNotFound,
    StateConflict,
    StoreUnavailable,
)
from octoqueue.job import Comment, Job, NewJob, Page, trusted_job
from octoqueue.states import FINISHED, TRANSITIONS, JobState, LabelScheme, label_key
from octoqueue.stores.base import (
    Arrival,
    Clock,
    Move,
    Store,
    apply_transition,
    check_changes,
    expected_set,
    expire,
)
from octoqueue.stores.grouping import GroupSender
from octoqueue.stores.postgres.arrivals import ArrivalListener, AsyncArrivalListener
from octoqueue.stores.postgres.schema import check_schema_name, migrate

try:
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ConfigurationError(
        "the PostgreSQL store needs psycopg 3 and psycopg_pool: pip install 'octoqueue[postgres]'"
    ) from exc

_COLUMNS = (
    "id, title, data, state, open, labels, type, priority, run_at, attempt, attempt_base, max_attempts, "
    "lease_expires_at, worker, result, last_error, idempotency_key, timeout, created_at, updated_at, comments, "
    "body_error, started_at"
)


def _qualified(prefix: str) -> str:
    return ", ".join(f"{prefix}.{name.strip()}" for name in _COLUMNS.split(","))


#: Each mutable field: its column's SQL type, and how a value is written to it.
_FIELD_TYPES: dict[str, str] = {
    "run_at": "timestamptz",
    "lease_expires_at": "timestamptz",
    "worker": "text",
    "result": "text",
    "last_error": "text",
    "attempt_base": "integer",
    "max_attempts": "integer",
    "priority": "integer",
}

#: Every column a saved record writes, with its SQL type (for ``unnest`` of arrays).
_SAVED: tuple[tuple[str, str], ...] = (
    ("state", "text"),
    ("open", "boolean"),
    ("priority", "integer"),
    ("run_at", "timestamptz"),
    ("attempt", "integer"),
    ("attempt_base", "integer"),
    ("max_attempts", "integer"),
    ("lease_expires_at", "timestamptz"),
    ("worker", "text"),
    ("result", "text"),
    ("last_error", "text"),
    ("updated_at", "timestamptz"),
)

#: The columns create_many writes from each item, in the order of its statement, with their SQL types.
_CREATED: tuple[tuple[str, str], ...] = (
    ("title", "text"),
    ("data", "text"),
    ("labels", "text[]"),
    ("type", "text"),
    ("priority", "integer"),
    ("run_at", "timestamptz"),
    ("max_attempts", "integer"),
    ("idempotency_key", "text"),
    ("timeout", "float8"),
)

#: Our own query options; every other one goes to libpq (sslmode, connect_timeout, application_name, ...).
_OPTIONS = {"schema", "pool_min", "pool_max", "pool_timeout"}

#: Errors after which the work is known not to have taken effect, so it is safe to send once more: the server ended
#: the session (aborting what ran in it) or refused it, or rolled the transaction back as a deadlock victim (two
#: batches of transitions locking shared jobs in opposite orders) or a serialization failure.
_RETRYABLE_SQLSTATES = {"57P01", "57P02", "57P03", "40P01", "40001"}

#: The store's time in SQL: the database's ``now()``, unless the store was given a clock (tests move a ManualClock
#: instead of sleeping), whose reading each call sets as the session's ``octoqueue.now``.
_NOW = "coalesce(nullif(current_setting('octoqueue.now', true), '')::timestamptz, now())"

#: How many finished jobs one purge transaction deletes.
PURGE_BATCH = 1_000


def _field_value(name: str, value: Any) -> Any:
    if name == "result":
        return json.dumps(value, ensure_ascii=False) if value is not None else None
    if name == "priority":
        return int(value)
    return value


_STATES = {state.value: state for state in JobState}


def _row_to_job(row: Sequence[Any]) -> Job:
    (
        job_id,
        title,
        data,
        state,
        open_,
        labels,
        type_,
        priority,
        run_at,
        attempt,
        attempt_base,
        max_attempts,
        lease,
        worker,
        result,
        last_error,
        key,
        timeout,
        created,
        updated,
        comments,
        body_error,
        started,
    ) = row[:23]
    return trusted_job(  # the row was validated when it was written
        {
            "id": job_id,
            "title": title,
            "data": json.loads(data) if data is not None else None,
            "state": _STATES[state] if state is not None else None,
            "labels": tuple(labels),
            "open": open_,
            "type": type_,
            "priority": priority,
            "run_at": run_at,
            "attempt": attempt,
            "attempt_base": attempt_base,
            "max_attempts": max_attempts,
            "lease_expires_at": lease,
            "worker": worker,
            "result": json.loads(result) if result is not None else None,
            "last_error": last_error,
            "idempotency_key": key,
            "timeout": timeout,
            "created_at": created,
            "updated_at": updated,
            "comments": comments,
            "body_error": body_error,
            "started_at": started,
            "url": None,
        }
    )


def _array(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal (``{"a",NULL,2}``) of strings, numbers, booleans, datetimes or None, strings
    quoted and escaped; the statement casts it to its type. Sent as one string: psycopg dumps a list of a thousand
    values ~15 times slower than this builds it."""
    if len(values) > 1 and values.count(values[0]) == len(values):
        # One value for every job (a batch's shared title, type, priority, ...): quoted once. list.count compares in
        # C (identity first), so the check costs a small part of quoting each value again.
        return "{" + ",".join([_element(values[0])] * len(values)) + "}"
    return "{" + ",".join(map(_element, values)) + "}"


def _labels_arrays(labels: list[tuple[str, ...]]) -> list[str]:
    """Each job's labels as an array literal (:func:`_array`), each distinct set of labels quoted once."""
    quoted: dict[tuple[str, ...], str] = {}
    out = []
    for names in labels:
        text = quoted.get(names)
        if text is None:
            text = quoted[names] = _array(names)
        out.append(text)
    return out


#: What :func:`_joined` puts between the jobs' data: a control character, which JSON text never holds unescaped.
_SEPARATOR = "\x1e"


def _joined(texts: list[str]) -> str:
    """The jobs' data (JSON texts) as one text the statement splits with ``string_to_array(..., chr(30))``: one
    join, where an array literal quotes and escapes every text (its quotes) and the server unescapes it again."""
    joined = _SEPARATOR.join(texts)
    if joined.count(_SEPARATOR) != len(texts) - 1:
        raise InvalidJobData("job data must be JSON text: it holds an unescaped control character (U+001E)")
    return joined


def _element(value: Any) -> str:
    kind = type(value)
    if value is None:
        return "NULL"
    if kind is int or kind is float:
        return repr(value)
    if kind is bool:
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if '"' in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text + '"'


def _states_sql(states: Collection[JobState]) -> str:
    return ", ".join(f"'{state.value}'" for state in sorted(states))


def _claim_statement(
    worker: str,
    lease: float,
    limit: int,
    labels: Collection[str],
    types: Collection[str] | None,
    ids: Collection[int] | None,
    exclude_labels: Collection[str] = (),
    exclude_types: Collection[str] = (),
) -> tuple[str, list[Any]] | None:
    """The claim's ``UPDATE ... FOR UPDATE SKIP LOCKED`` and its parameters; None when it can take nothing."""
    if limit < 1 or (types is not None and not types) or (ids is not None and not ids):
        return None
    where = ["state = 'pending'", f"(run_at IS NULL OR run_at <= {_NOW})"]
    params: list[Any] = [worker, float(lease)]
    if labels:
        where.append("lower(labels::text)::text[] @> %s::text[]")  # label names ignore case, as on GitHub
        params.append([label_key(label) for label in labels])
    if types is not None:
        where.append("type = ANY(%s::text[])")
        params.append(list(types))
    if ids is not None:
        where.append("id = ANY(%s::bigint[])")
        params.append([int(i) for i in ids])
    if exclude_labels:
        where.append("NOT (lower(labels::text)::text[] && %s::text[])")
        params.append([label_key(label) for label in exclude_labels])
    if exclude_types:
        where.append("(type IS NULL OR NOT type = ANY(%s::text[]))")
        params.append(list(exclude_types))
    params.append(int(limit))
    sql = (
        "UPDATE jobs AS j SET state = 'processing', open = true, attempt = j.attempt + 1, worker = %s, "
        f"lease_expires_at = {_NOW} + make_interval(secs => %s), started_at = {_NOW}, updated_at = {_NOW} "
        f"FROM (SELECT id FROM jobs WHERE {' AND '.join(where)} ORDER BY priority, id LIMIT %s "
        f"FOR UPDATE SKIP LOCKED) AS picked WHERE j.id = picked.id RETURNING {_qualified('j')}"
    )
    return sql, params


def _claimed(rows: list[Any]) -> list[Job]:
    """A claim's rows as jobs, in claim order."""
    jobs = [_row_to_job(r) for r in rows]
    jobs.sort(key=lambda j: (j.priority, j.id))
    return jobs


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """(libpq connection URL, :class:`PostgresStore` options) from a store URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = dict(query)
    kwargs: dict[str, Any] = {}
    if "schema" in ours:
        kwargs["schema"] = ours["schema"]
    for name, kind in (("pool_min", int), ("pool_max", int), ("pool_timeout", float)):
        if name in ours:
            try:
                kwargs[name] = kind(ours[name])
            except ValueError:
                raise ConfigurationError(f"store URL option {name}={ours[name]!r} is not a number") from None
    libpq = urlencode([(k, v) for k, v in query if k not in _OPTIONS])
    conninfo = parts._replace(scheme="postgresql", query=libpq, fragment="").geturl()
    user = f"{quote(unquote(parts.username))}@" if parts.username else ""  # the password is left out
    port = f":{parts.port}" if parts.port else ""
    schema = kwargs.get("schema", "octoqueue")
    kwargs["url"] = f"postgresql://{user}{parts.hostname or ''}{port}{parts.path}?schema={schema}"
    return conninfo, kwargs


def migrate_url(url: str) -> tuple[str, list[int]]:
    """Bring the schema the store URL names to this octoqueue's version; (schema, versions applied)."""
    conninfo, kwargs = parse_url(url)
    schema = check_schema_name(kwargs.get("schema", "octoqueue"))
    return schema, _migrate(conninfo, schema, kwargs["url"])


def _migrate(conninfo: str, schema: str, shown: str) -> list[int]:
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return migrate(conn, schema)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot open the PostgreSQL store {shown}: {exc}") from exc


class PostgresStore(Store):
    """``postgresql://user@host:port/db?schema=octoqueue``; query options ``schema`` (default ``octoqueue``),
    ``pool_min`` / ``pool_max`` (connections, default 1 / 10), ``pool_timeout`` (seconds to wait for a free
    connection, default 30); any other option is passed to libpq (``sslmode``, ``connect_timeout``, ...)."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "octoqueue",
        labels: LabelScheme | None = None,
        pool_min: int = 1,
        pool_max: int = 10,
        pool_timeout: float = 30.0,
        url: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(labels, clock=clock)
        self._given_clock = clock
        self.schema = check_schema_name(schema)
        self.channel = f"octoqueue_{self.schema}"
        self.url = url or f"postgresql:///?schema={self.schema}"
        if not 1 <= pool_min <= pool_max:
            raise ConfigurationError(f"need 1 <= pool_min <= pool_max, got {pool_min} and {pool_max}")
        self._conninfo = conninfo
        self._source = uuid.uuid4().hex[:12]
        self._fast_sql: dict[tuple[Any, ...], str] = {}
        self._listener: ArrivalListener | None = None
        # Transitions made at once by this process's threads (workers' completions, heartbeats) share a transaction.
        self._transitions = self._group_transitions()
        _migrate(conninfo, self.schema, self.url)
        self._pool = self._open_pool(pool_min, pool_max, pool_timeout)

    def _group_transitions(self) -> Callable[[Move], Job | Exception]:
        """How a transition is sent: with the transitions other threads make at the same moment, in one transaction."""
        return GroupSender(self.transition_many)

    #: The connection pool's class (psycopg_pool's), and its name's prefix.
    _pool_class: Any = ConnectionPool
    _pool_name = "octoqueue"

    def _open_pool(self, pool_min: int, pool_max: int, pool_timeout: float) -> Any:
        return self._pool_class(
            self._conninfo,
            min_size=pool_min,
            max_size=pool_max,
            timeout=pool_timeout,
            kwargs=self._connect_options(),
            name=f"{self._pool_name}-{self.schema}",
            open=self._pool_class is ConnectionPool,  # an async pool opens on its event loop, at first use
        )

    def _connect_options(self) -> dict[str, Any]:
        # UTC so timestamps come back aware in UTC; the schema first on the path so statements name bare tables.
        return {"autocommit": True, "options": f"-c search_path={self.schema} -c TimeZone=UTC"}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        conninfo, kwargs = parse_url(url)
        kwargs.update(options)
        return cls(conninfo, **kwargs)

    # -- connections ------------------------------------------------------------------------------------------
    def _run(self, work: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        """``work(conn)``, sent once more on a fresh connection when the server ended the session before it ran
        (a terminated backend, a restart): the pool keeps idle connections that may have died meanwhile."""
        for tries_left in (1, 0):
            try:
                with self._connection() as conn:
                    if self._given_clock is not None:
                        now = self._given_clock().isoformat()
                        conn.execute("SELECT set_config('octoqueue.now', %s, false)", (now,))
                    return work(conn)
            except psycopg.OperationalError as exc:  # TransactionRollbackError (40P01, 40001) is one too
                if tries_left and exc.sqlstate in _RETRYABLE_SQLSTATES:
                    continue
                raise StoreUnavailable(f"PostgreSQL store {self.url}: {exc}") from exc
            except PoolTimeout as exc:
                raise StoreUnavailable(f"PostgreSQL store {self.url}: no free connection: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """A connection of the pool, for one piece of work."""
        return self._pool.connection()  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._pool.close()

    def now(self) -> datetime:
        if self._given_clock is not None:
            return self._given_clock()
        row = self._run(lambda conn: conn.execute("SELECT now()").fetchone())
        value: datetime = row[0]
        return value

    # -- arrivals ---------------------------------------------------------------------------------------------
    def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        if self._listener is None:
            options = self._connect_options()
            self._listener = ArrivalListener(
                lambda: psycopg.connect(self._conninfo, **options), self.channel, self._source
            )
        return self._listener.add(callback)

    def _loop_listener(self) -> AsyncArrivalListener:
        """A LISTEN task's listener for the running event loop, on a connection of its own."""
        options = self._connect_options()
        return AsyncArrivalListener(
            lambda: psycopg.AsyncConnection.connect(self._conninfo, **options), self.channel, self._source
        )

    async def watch_arrivals_on_loop(self, callback: Callable[[Arrival], None]) -> Callable[[], Awaitable[None]] | None:
        listener = self._loop_listener()
        remove = await listener.add(callback)

        async def stop() -> None:
            remove()
            await listener.close()

        return stop

    def _announcing(self, statement: str, returned: str = "changed.*") -> str:
        """``statement`` (one that changes jobs and returns their columns, ``state``, ``labels`` and ``run_at``
        among them) made to NOTIFY, in its transaction, the jobs it left pending: one payload per label set (see
        :mod:`~octoqueue.stores.postgres.arrivals`); it returns ``returned`` (columns of ``changed``). One more
        parameter follows the statement's own: this store object's source token."""
        return (
            f"WITH changed AS ({statement}), sent AS (SELECT pg_notify('{self.channel}', json_build_object("
            "'s', %s::text, 'l', labels, 'n', count(*), 'r', CASE WHEN bool_or(run_at IS NULL) THEN NULL "
            "ELSE extract(epoch FROM min(run_at)) END)::text) FROM changed WHERE state = 'pending' GROUP BY labels) "
            f"SELECT {returned} FROM changed, (SELECT count(*) FROM sent) AS announced"
        )

    # -- jobs -------------------------------------------------------------------------------------------------
    def create(self, new: NewJob) -> Job:
        return self.create_many([new])[0]

    def create_many(self, items: Sequence[NewJob]) -> list[Job]:
        """One ``INSERT ... SELECT FROM unnest(...)`` for all items (one round trip); jobs whose idempotency key is
        taken are read back in the same connection. New jobs' records are made from the items and the ids and
        times the insert returns, not read back.

        A column whose value every item shares (a batch's title, labels, priority, ...) is one parameter, not an
        array the server parses and unnests value by value; the data always travel as one text the server splits
        (:func:`_joined`). A batch without idempotency keys is a plain insert (no ``ON CONFLICT``, whose speculative
        insertion costs the server a lock and a WAL record a row) that cannot skip a row, so its arrival payloads are
        made here, one per label set, and the statement only sends them; with keys, the statement counts what it
        inserted and announces that."""
        items = list(items)
        if not items:
            return []
        labels = [item.labels for item in items]
        runs = [item.run_at for item in items]
        keyed = [item.idempotency_key for item in items]
        columns: tuple[list[Any], ...] = (  # in the order of _CREATED
            [item.title for item in items],
            [item.data_json() for item in items],
            labels,
            [item.type for item in items],
            [int(item.priority) for item in items],
            runs,
            [item.max_attempts for item in items],
            keyed,
            [item.timeout for item in items],
        )
        count = len(items)
        varying = tuple(
            name == "data" or values.count(values[0]) != count
            for (name, _), values in zip(_CREATED, columns, strict=True)
        )
        keys = {key for key in keyed if key is not None}
        sql = self._create_sql(varying, bool(keys))
        params: list[Any] = []
        arrays: list[Any] = []
        for (name, _), values, many in zip(_CREATED, columns, varying, strict=True):
            if name == "data":
                arrays.append(_joined(values))
            elif not many:
                params.append(_array(values[0]) if name == "labels" else values[0])
            else:
                arrays.append(_array(_labels_arrays(values) if name == "labels" else values))
        params.extend(arrays)
        params.append(self._source if keys else _array(self._arrival_payloads(labels, runs)))

        if not keys:
            made = sorted(self._run(lambda conn: conn.execute(sql, params).fetchall()))
            return [item.created(job_id, created) for item, (job_id, created) in zip(items, made, strict=True)]

        def work(conn: psycopg.Connection[Any]) -> tuple[list[Any], list[Any]]:
            made = conn.execute(sql, params).fetchall()
            taken = keys - {row[2] for row in made}
            existing = []
            if taken:
                existing = conn.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE idempotency_key = ANY(%s)", (sorted(taken),)
                ).fetchall()
            return made, existing

        made, existing = self._run(work)
        inserted = {row[2] for row in made if row[2] is not None}
        by_key = {row[16]: _row_to_job(row) for row in existing}
        fresh = iter(sorted(made))  # ids follow the items' order (the insert reads them in order)
        out: list[Job] = []
        for item in items:
            key = item.idempotency_key
            if key is not None and key in by_key:
                out.append(by_key[key])  # taken before, or by an earlier item of this batch
            elif key is None or key in inserted:
                job_id, created = next(fresh)[:2]
                job = item.created(job_id, created)
                if key is not None:
                    by_key[key] = job
                out.append(job)
            else:  # its first job was purged between the insert and the read: make it again
                out.append(self.create(item))
        return out

    def _create_sql(self, varying: tuple[bool, ...], keyed: bool) -> str:
        """:meth:`create_many`'s statement: the columns of :data:`_CREATED` that vary as arrays (``varying``), the
        others one parameter each, in that order; then this store's source (``keyed``) or its arrival payloads."""
        key = ("create", varying, keyed)
        sql = self._fast_sql.get(key)
        if sql is not None:
            return sql
        values, arrays, names = [], [], []
        for (name, kind), many in zip(_CREATED, varying, strict=True):
            if name == "data":  # one text, the jobs' JSON joined by a character JSON never holds (see _joined)
                values.append("v.data")
                arrays.append("string_to_array(%s::text, chr(30))")
                names.append(name)
            elif many:  # an array; labels as array literals, one a job (text[][] would need equal lengths)
                values.append(f"v.{name}::text[]" if kind == "text[]" else f"v.{name}")
                arrays.append("%s::text[]" if kind == "text[]" else f"%s::{kind}[]")
                names.append(name)
            else:
                values.append(f"%s::{kind}")
        insert = (
            f"INSERT INTO jobs ({', '.join(name for name, _ in _CREATED)}, state, created_at, updated_at) "
            f"SELECT {', '.join(values)}, 'pending', {_NOW}, {_NOW} FROM unnest({', '.join(arrays)}) WITH ORDINALITY "
            f"AS v({', '.join(names)}, ord) ORDER BY v.ord"
        )
        if keyed:
            sql = self._announcing(
                f"{insert} ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
                "RETURNING id, created_at, idempotency_key, state, labels, run_at",
                # what the records are made from; the rest is for the announcement only (not parsed a job each)
                "changed.id, changed.created_at, changed.idempotency_key",
            )
        else:
            sql = (
                f"WITH changed AS ({insert} RETURNING id, created_at), sent AS (SELECT pg_notify('{self.channel}', p) "
                "FROM unnest(%s::text[]) AS p) SELECT changed.id, changed.created_at FROM changed, "
                "(SELECT count(*) FROM sent) AS announced"
            )
        self._fast_sql[key] = sql
        return sql

    def _arrival_payloads(self, labels: list[tuple[str, ...]], runs: list[datetime | None]) -> list[str]:
        """The NOTIFY payloads of new pending jobs (their labels and run_at, job by job), as :meth:`_announcing`
        makes them in SQL: one per label set, its count and its earliest ``run_at`` (None when one may run now)."""
        sets: dict[tuple[str, ...], list[Any]]
        if labels.count(labels[0]) == len(labels):  # one label set (a batch's usual case): no loop in Python
            sets = {labels[0]: [len(runs), None if None in runs else min(runs)]}  # type: ignore[type-var]
        else:
            sets = {}
            for names, run_at in zip(labels, runs, strict=True):
                found = sets.get(names)
                if found is None:
                    sets[names] = [1, run_at]
                    continue
                found[0] += 1
                if found[1] is not None:
                    found[1] = None if run_at is None else min(found[1], run_at)
        return [
            json.dumps(
                {"s": self._source, "l": list(names), "n": n, "r": run_at.timestamp() if run_at is not None else None}
            )
            for names, (n, run_at) in sets.items()
        ]

    def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]:
        wanted = [state.value for state in states]
        if not wanted:
            return []
        rows = self._run(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state = ANY(%s) ORDER BY updated_at DESC, id DESC LIMIT %s",
                (wanted, limit),
            ).fetchall()
        )
        return [_row_to_job(row) for row in rows]

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        names = [name.strip() for name in _COLUMNS.split(",")]
        values: list[Any] = []
        for name in names:
            if name == "comments":
                values.append(0)
            elif name == "data":
                values.append(json.dumps(job.data, ensure_ascii=False, separators=(",", ":")))
            elif name == "state":
                values.append(job.state.value if job.state is not None else None)
            elif name == "labels":
                values.append(list(job.labels))
            else:
                values.append(_field_value(name, getattr(job, name)))
        updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in ("id", "comments"))
        upsert = self._announcing(
            f"INSERT INTO jobs ({_COLUMNS}) VALUES ({', '.join(['%s'] * len(names))}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates} RETURNING {_COLUMNS}"
        )
        notes = [
            job.id,
            _array([note.body for note in comments]),
            _array([note.author for note in comments]),
            _array([note.created_at for note in comments]),
        ]

        def work(conn: psycopg.Connection[Any]) -> Any:
            with conn.transaction():
                conn.execute(upsert, [*values, self._source])
                # Later creates take ids above the imported one (an identity column does not follow explicit ids).
                conn.execute(
                    "SELECT setval(seq, greatest(coalesce(pg_sequence_last_value(seq), 0), %s)) "
                    "FROM (SELECT pg_get_serial_sequence('jobs', 'id')::regclass AS seq) AS s",
                    (job.id,),
                )
                if comments:
                    conn.execute(
                        "INSERT INTO comments (job_id, body, author, created_at) SELECT %s, v.body, v.author, v.at "
                        "FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) WITH ORDINALITY "
                        "AS v(body, author, at, ord) ORDER BY v.ord",
                        notes,
                    )
                return conn.execute(
                    "UPDATE jobs SET comments = (SELECT count(*) FROM comments WHERE job_id = %s) WHERE id = %s "
                    f"RETURNING {_COLUMNS}",
                    (job.id, job.id),
                ).fetchone()

        try:
            return _row_to_job(self._run(work))
        except psycopg.errors.UniqueViolation as exc:
            raise StateConflict(job.id, f"cannot import it: {exc}") from exc

    def get(self, job_id: int) -> Job:
        row = self._run(lambda conn: conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = %s", (job_id,)).fetchone())
        if row is None:
            raise JobNotFound(job_id)
        return _row_to_job(row)

    def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Collection[str] = (),
        open: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        where = ["id > %s"]
        params: list[Any] = [int(cursor) if cursor else 0]
        if states is not None:
            if not states:
                return Page(jobs=[])
            where.append("state = ANY(%s)")
            params.append([state.value for state in states])
        if open is not None:
            where.append("open = %s")
            params.append(open)
        if labels:
            where.append("lower(labels::text)::text[] @> %s::text[]")  # label names ignore case, as on GitHub
            params.append([label_key(label) for label in labels])
        params.append(limit + 1)
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY id LIMIT %s"
        rows = self._run(lambda conn: conn.execute(sql, params).fetchall())
        jobs = [_row_to_job(r) for r in rows[:limit]]
        return Page(jobs=jobs, cursor=str(jobs[-1].id) if len(rows) > limit else None)

    def claim(
        self,
        *,
        worker: str,
        lease: float,
        limit: int = 1,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        exclude_labels: Collection[str] = (),
        exclude_types: Collection[str] = (),
    ) -> list[Job]:
        statement = _claim_statement(worker, lease, limit, labels, types, ids, exclude_labels, exclude_types)
        if statement is None:
            return []
        rows = self._run(lambda conn: conn.execute(*statement).fetchall())
        return _claimed(rows)

    batches_claims = True

    def transition_and_claim(
        self,
        moves: Sequence[Move],
        *,
        worker: str,
        lease: float,
        limit: int = 1,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        exclude_labels: Collection[str] = (),
        exclude_types: Collection[str] = (),
    ) -> tuple[list[Job | Exception], list[Job]]:
        """The moves as :meth:`transition_many` makes them and the claim's statement, in one transaction and one
        pipeline: one round trip."""
        statement = _claim_statement(worker, lease, limit, labels, types, ids, exclude_labels, exclude_types)
        if statement is None:
            return self.transition_many(moves), []
        moved, rows = self._transitions_then(moves, statement)
        return moved, _claimed(rows)

    def transition(
        self,
        job_id: int,
        *,
        expected: JobState | Collection[JobState] | None,
        target: JobState,
        attempt: int | None = None,
        **changes: Any,
    ) -> Job:
        check_changes(changes)
        result = self._transitions(Move(job_id, expected, target, attempt, changes))
        if isinstance(result, Exception):
            raise result
        return result

    batches_transitions = True

    def transition_many(self, moves: Sequence[Move]) -> list[Job | Exception]:
        """All moves in one transaction: the moves of one shape (target, expected states, fenced or not, fields
        changed) as one ``UPDATE ... FROM unnest(...)``, every shape's statement sent in one pipeline; a move its
        statement did not match is then judged by the shared rules on the row read ``FOR UPDATE``."""
        return self._transitions_then(moves, None)[0]

    def _transitions_then(
        self, moves: Sequence[Move], then: tuple[str, list[Any]] | None
    ) -> tuple[list[Job | Exception], list[Any]]:
        """:meth:`transition_many`, then the statement ``then`` in the same transaction and pipeline; its rows."""
        moves = list(moves)
        for move in moves:
            check_changes(move.changes)
        groups: dict[tuple[Any, ...], list[int]] = {}
        seen: set[int] = set()
        for index, move in enumerate(moves):
            wanted = expected_set(move.expected)
            if move.job_id in seen or not wanted or not all(move.target in TRANSITIONS[s] for s in wanted):
                continue  # a second move of one job waits for the first; an odd one goes straight to the rules
            seen.add(move.job_id)
            key = (move.target, wanted, move.attempt is None, tuple(sorted(move.changes)))
            groups.setdefault(key, []).append(index)
        for indexes in groups.values():
            indexes.sort(key=lambda i: moves[i].job_id)  # rows locked in id order: fewer deadlocks between batches
        statements = [self._group_statement(key, [moves[i] for i in indexes]) for key, indexes in groups.items()]
        results: list[Job | Exception | None] = [None] * len(moves)
        after: list[Any] = []

        def work(conn: psycopg.Connection[Any]) -> None:
            results[:] = [None] * len(moves)
            with conn.transaction():
                if statements or then is not None:
                    with conn.pipeline():
                        cursors = [conn.execute(sql, params) for sql, params in statements]
                        last = conn.execute(*then) if then is not None else None
                    for indexes, cursor in zip(groups.values(), cursors, strict=True):
                        done = {row[0]: _row_to_job(row) for row in cursor.fetchall()}
                        for i in indexes:
                            results[i] = done.get(moves[i].job_id)
                    after[:] = last.fetchall() if last is not None else []
                for i, move in enumerate(moves):
                    if results[i] is None:
                        results[i] = self._judge(conn, move)

        self._run(work)
        return [r for r in results if r is not None], after

    def _group_statement(self, key: tuple[Any, ...], moves: list[Move]) -> tuple[str, list[Any]]:
        target, wanted, unfenced, fields = key
        sql = self._fast_sql.get(key)
        if sql is None:
            is_open = "true" if target.is_open else "false"
            sets = [f"state = '{target.value}'", f"open = {is_open}", f"updated_at = {_NOW}"]
            if target is not JobState.PROCESSING and JobState.PROCESSING in wanted:
                for column in ("worker", "lease_expires_at"):  # leaving processing clears the lease holder
                    if column not in fields:
                        sets.append(f"{column} = CASE WHEN j.state = 'processing' THEN NULL ELSE j.{column} END")
            sets.extend(f"{name} = v.{name}" for name in fields)
            arrays = ["%s::bigint[]", "%s::integer[]"] + [f"%s::{_FIELD_TYPES[name]}[]" for name in fields]
            names = ["id", "attempt", *fields]
            fence = "" if unfenced else " AND j.attempt = v.attempt"
            sql = (
                f"UPDATE jobs AS j SET {', '.join(sets)} FROM unnest({', '.join(arrays)}) AS v({', '.join(names)}) "
                f"WHERE j.id = v.id AND j.state IN ({_states_sql(wanted)}){fence} RETURNING {_qualified('j')}"
            )
            if target is JobState.PENDING:
                sql = self._announcing(sql)
            self._fast_sql[key] = sql
        params: list[Any] = [_array([m.job_id for m in moves]), _array([m.attempt for m in moves])]
        params.extend(_array([_field_value(name, m.changes[name]) for m in moves]) for name in fields)
        if target is JobState.PENDING:
            params.append(self._source)
        return sql, params

    def _judge(self, conn: psycopg.Connection[Any], move: Move) -> Job | Exception:
        """One move by the shared rules, on the row locked ``FOR UPDATE`` (inside the caller's transaction)."""
        row = conn.execute(f"SELECT {_COLUMNS}, {_NOW} FROM jobs WHERE id = %s FOR UPDATE", (move.job_id,)).fetchone()
        if row is None:
            return JobNotFound(move.job_id)
        try:
            new = apply_transition(
                _row_to_job(row),
                expected=move.expected,
                target=move.target,
                attempt=move.attempt,
                changes=dict(move.changes),
                now=row[23],
            )
        except (StateConflict, InvalidTransition) as exc:
            return exc
        self._save(conn, [new])
        return new

    def _save(self, conn: psycopg.Connection[Any], jobs: list[Job]) -> None:
        """Write the records (inside the caller's transaction), and announce those that are pending."""
        names = [name for name, _ in _SAVED]
        arrays = ", ".join(["%s::bigint[]"] + [f"%s::{kind}[]" for _, kind in _SAVED])
        sets = ", ".join(f"{name} = v.{name}" for name in names)
        params: list[Any] = [_array([job.id for job in jobs])]
        for name in names:
            if name == "state":
                params.append(_array([job.state.value if job.state is not None else None for job in jobs]))
            else:
                params.append(_array([_field_value(name, getattr(job, name)) for job in jobs]))
        params.append(self._source)
        conn.execute(
            self._announcing(
                f"UPDATE jobs AS j SET {sets} FROM unnest({arrays}) AS v(id, {', '.join(names)}) WHERE j.id = v.id "
                f"RETURNING {_qualified('j')}"
            ),
            params,
        )

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        def work(conn: psycopg.Connection[Any]) -> list[Job]:
            with conn.transaction():
                rows = conn.execute(
                    f"SELECT {_COLUMNS}, {_NOW} FROM jobs WHERE state = 'processing' AND lease_expires_at <= {_NOW} "
                    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                    (limit,),
                ).fetchall()
                recovered = [expire(_row_to_job(row), row[23]) for row in rows]
                if recovered:
                    self._save(conn, recovered)
                return recovered

        result: list[Job] = self._run(work)
        return result

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        wanted = list(states) if states is not None else list(JobState)
        counts = dict.fromkeys(wanted, 0)
        if not wanted:
            return counts
        # One count per state, each over the partial index that holds that state's jobs.
        sql = " UNION ALL ".join(
            f"SELECT '{state.value}', count(*) FROM jobs WHERE state = '{state.value}'"
            + (f" AND state IN ({_states_sql(FINISHED)})" if state in FINISHED else "")
            for state in wanted
        )
        for state, n in self._run(lambda conn: conn.execute(sql).fetchall()):
            counts[JobState(state)] = n
        return counts

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        states = list(states)
        if not states:
            return 0
        finished = f"state IN ({_states_sql(FINISHED)}) AND " if set(states) <= FINISHED else ""
        # Bounded batches, each its own transaction: a purge of a million jobs never holds a long lock or a huge
        # transaction, and jobs being claimed meanwhile are skipped, not waited for. Comments go by cascade.
        sql = (
            f"DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE {finished}state = ANY(%s) AND updated_at < %s "
            "LIMIT %s FOR UPDATE SKIP LOCKED)"
        )
        params = ([state.value for state in states], older_than, PURGE_BATCH)
        total = 0
        while True:
            deleted: int = self._run(lambda conn: conn.execute(sql, params).rowcount)
            total += deleted
            if deleted < PURGE_BATCH:
                return total

    # -- comments ---------------------------------------------------------------------------------------------
    def comment(self, job_id: int, body: str) -> Comment:
        row = self._run(
            lambda conn: conn.execute(
                "WITH j AS (UPDATE jobs SET comments = comments + 1 WHERE id = %s RETURNING id) "
                f"INSERT INTO comments (job_id, body, created_at) SELECT id, %s, {_NOW} FROM j "
                "RETURNING id, created_at",
                (job_id, body),
            ).fetchone()
        )
        if row is None:
            raise JobNotFound(job_id)
        return Comment(id=row[0], job_id=job_id, body=body, created_at=row[1])

    def comments(self, job_id: int) -> list[Comment]:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT c.id, c.body, c.author, c.created_at FROM jobs AS j LEFT JOIN comments AS c "
                "ON c.job_id = j.id WHERE j.id = %s ORDER BY c.id",
                (job_id,),
            ).fetchall()
        )
        if not rows:
            raise JobNotFound(job_id)
        return [Comment(id=i, job_id=job_id, body=b, author=a, created_at=c) for i, b, a, c in rows if i is not None]

    # -- settings ---------------------------------------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        row = self._run(lambda conn: conn.execute("SELECT value FROM settings WHERE key = %s", (key,)).fetchone())
        return json.loads(row[0]) if row is not None else None

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        """One short transaction under an advisory lock on the key: racing updates of one key run one after the
        other, each on the value the previous one left (a row lock cannot serialise the first writes of a key
        that has no row yet)."""

        def work(conn: psycopg.Connection[Any]) -> Any:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(1869635954, hashtext(%s))", (key,))
                row = conn.execute("SELECT value FROM settings WHERE key = %s", (key,)).fetchone()
                value = update(json.loads(row[0]) if row is not None else None)
                if value is None:
                    conn.execute("DELETE FROM settings WHERE key = %s", (key,))
                    return None
                try:
                    text = json.dumps(value, allow_nan=False)
                except (TypeError, ValueError) as exc:
                    raise InvalidJobData(f"setting {key!r} must be JSON: {exc}") from exc
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, text),
                )
                return json.loads(text)

        return self._run(work)


__all__ = ["PURGE_BATCH", "PostgresStore", "migrate_url", "parse_url"]
