"""The embedded default: one SQLite file, safe for many threads and processes on one host.

WAL journal so readers never block the writer; every write takes SQLite's write lock before it reads (``BEGIN
IMMEDIATE``, or a single statement), so two processes cannot both read a pending job and then both claim it. A claim
is one ``UPDATE ... RETURNING`` over the runnable index; the usual transition (complete, fail, heartbeat) is one
conditional ``UPDATE ... RETURNING`` that checks the state and the fencing attempt itself. Within a process, threads
write in turn through one connection, and statements queued meanwhile share a commit (group commit).
``synchronous=NORMAL``: a committed job survives a crash of the process; a power cut may lose the last transactions
(set ``?synchronous=FULL`` in the URL for that too).
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from octoqueue.errors import ConfigurationError, JobNotFound, StoreUnavailable
from octoqueue.job import Comment, Job, NewJob, Page
from octoqueue.states import FINISHED, TRANSITIONS, JobState, LabelScheme
from octoqueue.stores.base import Store, apply_transition, check_changes, expected_set, expire

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    data TEXT,
    state TEXT,
    open INTEGER NOT NULL DEFAULT 1,
    labels TEXT NOT NULL DEFAULT '[]',
    type TEXT,
    priority INTEGER NOT NULL DEFAULT 2,
    run_at REAL,
    attempt INTEGER NOT NULL DEFAULT 0,
    attempt_base INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    lease_expires_at REAL,
    worker TEXT,
    result TEXT,
    last_error TEXT,
    idempotency_key TEXT,
    timeout REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    comments INTEGER NOT NULL DEFAULT 0,
    body_error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_runnable ON jobs (priority, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs (lease_expires_at) WHERE state = 'processing';
-- Finished jobs by state and age, for purge and count. (This was jobs_state (state, updated_at) over every job: each
-- claim and each completion then moved the job's entry across that index, more pages written to the WAL per commit.)
DROP INDEX IF EXISTS jobs_state;
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (state, updated_at)
    WHERE state IN ('completed', 'failed', 'cancelled');
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    author TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_job ON comments (job_id, id);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- The pending jobs of each extra label in claim order: a claim for a label (every queue's claim on the server)
-- walks only that label's pending jobs. Through jobs_runnable it walked every pending job, testing each one's
-- labels, past the jobs of all other queues. A job has a row per label while it is pending; the triggers keep the
-- table in step with jobs, in the statement that changes the job (a job's labels never change in this store; the
-- update trigger watches them all the same). The rows leave by the job's id (pending_labels_job): a DELETE of the
-- labels listed by json_each(OLD.labels), run from the claim's trigger, cost ~0.15 ms, more than the claim itself.
CREATE TABLE IF NOT EXISTS pending_labels (
    label TEXT NOT NULL,
    priority INTEGER NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (label, priority, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_labels_job ON pending_labels (id);
CREATE TRIGGER IF NOT EXISTS pending_labels_insert AFTER INSERT ON jobs
    WHEN NEW.state = 'pending' AND NEW.labels != '[]'
BEGIN
    INSERT OR IGNORE INTO pending_labels (label, priority, id)
        SELECT value, NEW.priority, NEW.id FROM json_each(NEW.labels);
END;
CREATE TRIGGER IF NOT EXISTS pending_labels_update AFTER UPDATE OF state, priority, labels ON jobs
    WHEN (OLD.state = 'pending' OR NEW.state = 'pending') AND (OLD.labels != '[]' OR NEW.labels != '[]')
        AND (OLD.state IS NOT NEW.state OR OLD.priority != NEW.priority OR OLD.labels != NEW.labels)
BEGIN
    DELETE FROM pending_labels WHERE OLD.state = 'pending' AND id = OLD.id;
    INSERT OR IGNORE INTO pending_labels (label, priority, id)
        SELECT value, NEW.priority, NEW.id FROM json_each(NEW.labels) WHERE NEW.state = 'pending';
END;
CREATE TRIGGER IF NOT EXISTS pending_labels_delete AFTER DELETE ON jobs
    WHEN OLD.state = 'pending' AND OLD.labels != '[]'
BEGIN
    DELETE FROM pending_labels WHERE id = OLD.id;
END;
"""

#: ``PRAGMA user_version`` of a database whose derived tables are filled (1: pending_labels). A file made before
#: pending_labels existed gets the table from SCHEMA and its rows from :meth:`SQLiteStore._migrate`, once.
_USER_VERSION = 1

_FINISHED_SQL = "state IN ('completed', 'failed', 'cancelled')"

#: Counts per state, each from the partial index that holds that state's jobs.
_COUNT_SQL = (
    "SELECT 'pending', COUNT(*) FROM jobs WHERE state = 'pending' "
    "UNION ALL SELECT 'processing', COUNT(*) FROM jobs WHERE state = 'processing' "
    f"UNION ALL SELECT state, COUNT(*) FROM jobs WHERE {_FINISHED_SQL} GROUP BY state"
)

_COLUMNS = (
    "id, title, data, state, open, labels, type, priority, run_at, attempt, attempt_base, max_attempts, "
    "lease_expires_at, worker, result, last_error, idempotency_key, timeout, created_at, updated_at, comments, "
    "body_error"
)
_UPDATABLE = (
    "state",
    "open",
    "priority",
    "run_at",
    "attempt",
    "attempt_base",
    "max_attempts",
    "lease_expires_at",
    "worker",
    "result",
    "last_error",
    "updated_at",
)


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _column_value(column: str, value: Any) -> Any:
    """A :data:`~octoqueue.job.MUTABLE_FIELDS` value as its column stores it (as ``_save`` writes it)."""
    if column in ("run_at", "lease_expires_at"):
        return _ts(value)
    if column == "result":
        return json.dumps(value, ensure_ascii=False) if value is not None else None
    if column == "priority":
        return int(value)
    return value


class _Write:
    """One statement waiting for a group commit (see :meth:`SQLiteStore._group_write`)."""

    __slots__ = ("error", "lead", "many", "params", "ready", "rows", "sql")

    def __init__(self, sql: str, params: list[Any], many: bool) -> None:
        self.sql = sql
        self.params = params
        self.many = many
        self.ready = threading.Lock()  # held until the statement ran (a bare lock: cheaper than an Event)
        self.ready.acquire()
        self.lead = False
        self.rows: builtins.list[tuple[Any, ...]] = []
        self.error: BaseException | None = None

    def run(self, conn: sqlite3.Connection) -> None:
        try:
            cursor = conn.execute(self.sql, self.params)
            self.rows = cursor.fetchall() if self.many else [row for row in (cursor.fetchone(),) if row is not None]
        except sqlite3.OperationalError:
            raise  # busy or I/O: the whole transaction is gone
        except sqlite3.Error as exc:
            self.error = exc  # this statement only (bad parameter, ...): it changed nothing

    def outcome(self) -> builtins.list[tuple[Any, ...]]:
        if self.error is not None:
            raise self.error
        return self.rows


_STATES = {state.value: state for state in JobState}
#: Every row becomes a copy of this record with all its fields replaced: pydantic's model_copy is the cheapest
#: public way to build a model from trusted values (model_construct walks every field's defaults and aliases).
_TEMPLATE = Job.model_construct(
    id=0, title="", state=None, created_at=datetime.fromtimestamp(0, UTC), updated_at=datetime.fromtimestamp(0, UTC)
)


def _row_to_job(row: tuple[Any, ...]) -> Job:
    (
        job_id, title, data, state, open_, labels, type_, priority, run_at, attempt, attempt_base, max_attempts,
        lease, worker, result, last_error, key, timeout, created, updated, comments, body_error,
    ) = row  # fmt: skip
    # No validation: the row was validated when it was written; this is the claim and completion hot path.
    return _TEMPLATE.model_copy(
        update={
            "id": job_id,
            "title": title,
            "data": json.loads(data) if data is not None else None,
            "state": _STATES[state] if state in _STATES else (JobState(state) if state is not None else None),
            "labels": tuple(json.loads(labels)) if labels != "[]" else (),
            "open": bool(open_),
            "type": type_,
            "priority": priority,
            "run_at": _dt(run_at),
            "attempt": attempt,
            "attempt_base": attempt_base,
            "max_attempts": max_attempts,
            "lease_expires_at": _dt(lease),
            "worker": worker,
            "result": json.loads(result) if result is not None else None,
            "last_error": last_error,
            "idempotency_key": key,
            "timeout": timeout,
            "created_at": datetime.fromtimestamp(created, UTC),
            "updated_at": datetime.fromtimestamp(updated, UTC),
            "comments": comments,
            "body_error": body_error,
            "url": None,
        }
    )


class SQLiteStore(Store):
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``; query options ``synchronous``,
    ``busy_timeout`` (ms)."""

    def __init__(
        self,
        path: str | Path = "octoqueue.db",
        *,
        labels: LabelScheme | None = None,
        synchronous: str = "NORMAL",
        busy_timeout: int = 30_000,
    ) -> None:
        super().__init__(labels)
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigurationError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self._synchronous = synchronous.upper()
        self._busy_timeout = int(busy_timeout)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._fast_sql: dict[tuple[Any, ...], str] = {}
        # Threads of one process take turns to write. SQLite's own lock is for processes: a connection that
        # finds it taken sleeps in its busy handler (1 ms, 2 ms, 5 ms, ...), which wastes far more time than the
        # write itself when several worker threads complete jobs at once.
        self._write_lock = threading.Lock()
        self._writer_conn: sqlite3.Connection | None = None
        self._queue_lock = threading.Lock()
        self._queued: list[_Write] = []
        self._leading = False
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.exists():
                raise ConfigurationError(f"the folder for the SQLite store does not exist: {parent}")
        self._conn().executescript(SCHEMA)
        self._migrate()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        parts = urlsplit(url)
        path = unquote(parts.netloc + parts.path)
        if path.startswith("/"):
            path = path[1:]  # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
        if not path:
            raise ConfigurationError(f"{url!r} names no file: use sqlite:///octoqueue.db")
        query = dict(parse_qsl(parts.query))
        kwargs: dict[str, Any] = {}
        if "synchronous" in query:
            kwargs["synchronous"] = query["synchronous"]
        if "busy_timeout" in query:
            kwargs["busy_timeout"] = int(query["busy_timeout"])
        kwargs.update(options)
        return cls(path, **kwargs)

    def _migrate(self) -> None:
        """Fill what SCHEMA added to an older file: pending_labels' rows for the jobs already pending. One process
        does it (the version is read again under the write lock); writes by processes still running the previous
        code meanwhile are kept in step by the triggers, which live in the file."""
        if self._conn().execute("PRAGMA user_version").fetchone()[0] >= _USER_VERSION:
            return
        with self._write() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] >= _USER_VERSION:
                return
            db.execute("DELETE FROM pending_labels")
            db.execute(
                "INSERT OR IGNORE INTO pending_labels (label, priority, id) "
                "SELECT value, jobs.priority, jobs.id FROM jobs, json_each(jobs.labels) "
                "WHERE jobs.state = 'pending' AND jobs.labels != '[]'"
            )
            db.execute(f"PRAGMA user_version = {_USER_VERSION}")

    # -- connections ------------------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout / 1000,
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, for reads."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    def _writer(self) -> sqlite3.Connection:
        """The connection every thread of this process writes through, holding ``_write_lock``. One connection
        keeps its page cache: with one per thread, each commit made the other connections drop theirs and read
        the pages back before their next write."""
        if self.path == ":memory:":
            return self._conn()  # every connection to :memory: is a database of its own
        conn = self._writer_conn
        if conn is None:
            conn = self._writer_conn = self._open()
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._writer()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store {self.path} is busy: {exc}") from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
        self._writer_conn = None

    # -- jobs -------------------------------------------------------------------------------------------------
    def create(self, new: NewJob) -> Job:
        now = self.now()
        data = json.dumps(new.data, ensure_ascii=False, separators=(",", ":"))
        params = (
            new.title, data, JobState.PENDING.value, json.dumps(list(new.labels)), new.type, int(new.priority),
            _ts(new.run_at), new.max_attempts, new.idempotency_key, new.timeout, now.timestamp(), now.timestamp(),
        )  # fmt: skip
        insert = (
            "INSERT INTO jobs (title, data, state, labels, type, priority, run_at, max_attempts, "
            "idempotency_key, timeout, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
        )
        if new.idempotency_key is None:
            with self._write_lock:
                row = self._writer().execute(insert + f"RETURNING {_COLUMNS}", params).fetchone()
            return _row_to_job(row)
        with self._write() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE idempotency_key = ?", (new.idempotency_key,)
            ).fetchone()
            if row is None:
                row = db.execute(insert + f"RETURNING {_COLUMNS}", params).fetchone()
            return _row_to_job(row)

    def get(self, job_id: int) -> Job:
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _row_to_job(row)

    def list(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Collection[str] = (),
        open: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        where = ["id > ?"]
        params: list[Any] = [int(cursor) if cursor else 0]
        if states is not None:
            states = list(states)
            if not states:
                return Page(jobs=[])
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(s.value for s in states)
        if open is not None:
            where.append("open = ?")
            params.append(int(open))
        wanted = list(dict.fromkeys(labels))
        if wanted and states is not None and set(states) == {JobState.PENDING}:
            # Pending jobs with a label: their ids from pending_labels (that label's rows only), not a walk over
            # every job ever created.
            where.append("id IN (SELECT id FROM pending_labels WHERE label = ?)")
            params.append(wanted.pop(0))
        for label in wanted:
            where.append("EXISTS (SELECT 1 FROM json_each(jobs.labels) WHERE value = ?)")
            params.append(label)
        params.append(limit + 1)
        rows = (
            self._conn()
            .execute(f"SELECT {_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", params)
            .fetchall()
        )
        jobs = [_row_to_job(r) for r in rows[:limit]]
        return Page(jobs=jobs, cursor=str(jobs[-1].id) if len(rows) > limit else None)

    def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> builtins.list[Job]:
        wanted = [s.value for s in states]
        if not wanted:
            return []
        rows = (
            self._conn()
            .execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state IN ({','.join('?' * len(wanted))}) "
                "ORDER BY updated_at DESC, id DESC LIMIT ?",
                [*wanted, limit],
            )
            .fetchall()
        )
        return [_row_to_job(r) for r in rows]

    def claim(
        self,
        *,
        worker: str,
        lease: float,
        limit: int = 1,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
    ) -> builtins.list[Job]:
        now = self.now().timestamp()
        params: list[Any] = [worker, now + lease, now]
        wanted = list(dict.fromkeys(labels))
        if ids is None and wanted:
            # Walk the first label's pending jobs in claim order (pending_labels' primary key), each job found by
            # its id; the other labels are looked up in the same key. Jobs of other labels are never read.
            source = "pending_labels AS l CROSS JOIN jobs ON jobs.id = l.id"
            where = ["l.label = ?", "jobs.state = 'pending'", "(jobs.run_at IS NULL OR jobs.run_at <= ?)"]
            params += [wanted[0], now]
            for label in wanted[1:]:
                where.append(
                    "EXISTS (SELECT 1 FROM pending_labels AS m WHERE m.label = ? AND m.priority = l.priority "
                    "AND m.id = l.id)"
                )
                params.append(label)
            key, order = "l.id", "l.priority, l.id"
        else:
            # Without labels: walk the partial index of pending jobs in claim order. Without stored statistics the
            # planner may prefer another index and sort every pending row on each claim (8x slower with 3,000
            # pending). A claim for given ids is left to the planner, which looks them up by primary key.
            source = "jobs" if ids is not None else "jobs INDEXED BY jobs_runnable"
            where = ["state = 'pending'", "(run_at IS NULL OR run_at <= ?)"]
            params.append(now)
            for label in wanted:
                where.append("EXISTS (SELECT 1 FROM json_each(jobs.labels) WHERE value = ?)")
                params.append(label)
            key, order = "id", "priority, id"
        if types is not None:
            types = list(types)
            if not types:
                return []
            where.append(f"jobs.type IN ({','.join('?' * len(types))})")
            params.extend(types)
        if ids is not None:
            ids = [int(i) for i in ids]
            if not ids:
                return []
            where.append(f"jobs.id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        params.append(limit)
        # One statement: the write lock is taken before the pending rows are read, so two claimers never take the
        # same job.
        rows = self._group_write(
            "UPDATE jobs SET state = 'processing', open = 1, attempt = attempt + 1, worker = ?, "
            f"lease_expires_at = ?, updated_at = ? WHERE id IN (SELECT {key} FROM {source} WHERE "
            f"{' AND '.join(where)} ORDER BY {order} LIMIT ?) RETURNING {_COLUMNS}",
            params,
            many=True,
        )
        jobs = [_row_to_job(r) for r in rows]
        jobs.sort(key=lambda j: (j.priority, j.id))
        return jobs

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
        wanted = expected_set(expected)
        if wanted and all(target in TRANSITIONS[state] for state in wanted):
            # Fast path: one conditional UPDATE (atomic on its own) does the check and the write. When it matches
            # no row, the slow path below reads the job and raises the contract's exact exception (or, if the
            # job moved into an expected state in between, performs the transition).
            done = self._transition_fast(job_id, wanted, target, attempt, changes)
            if done is not None:
                return done
        with self._write() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            new = apply_transition(
                _row_to_job(row), expected=expected, target=target, attempt=attempt, changes=changes,
                now=self.now(),
            )  # fmt: skip
            self._save(db, new)
            return new

    def _transition_fast(
        self,
        job_id: int,
        wanted: frozenset[JobState],
        target: JobState,
        attempt: int | None,
        changes: dict[str, Any],
    ) -> Job | None:
        key = (target, wanted, attempt is None, tuple(changes))
        sql = self._fast_sql.get(key)
        if sql is None:
            sets = ["state = ?", "open = ?", "updated_at = ?"]
            if target is not JobState.PROCESSING and JobState.PROCESSING in wanted:
                # leaving processing clears the lease holder unless the caller sets it
                for column in ("worker", "lease_expires_at"):
                    if column not in changes:
                        sets.append(f"{column} = CASE WHEN state = 'processing' THEN NULL ELSE {column} END")
            sets.extend(f"{column} = ?" for column in changes)
            states = ", ".join(f"'{state.value}'" for state in sorted(wanted))
            fence = "" if attempt is None else " AND attempt = ?"
            sql = f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND state IN ({states}){fence} RETURNING {_COLUMNS}"
            self._fast_sql[key] = sql
        params: list[Any] = [target.value, int(target.is_open), self.now().timestamp()]
        params.extend(_column_value(column, value) for column, value in changes.items())
        params.append(job_id)
        if attempt is not None:
            params.append(attempt)
        rows = self._group_write(sql, params)
        return _row_to_job(rows[0]) if rows else None

    def _group_write(
        self, sql: str, params: builtins.list[Any], *, many: bool = False
    ) -> builtins.list[tuple[Any, ...]]:
        """Run one write statement (atomic on its own) and return the rows it returns (the first only unless
        ``many``), committed together with those other threads of this process queue meanwhile (group commit):
        each commit writes its dirty pages to the WAL, so completing three jobs in one transaction costs little
        more than completing one. Every statement keeps its own effect and result; the caller returns once its
        statement is committed."""
        request = _Write(sql, params, many)
        with self._queue_lock:
            self._queued.append(request)
            lead = not self._leading
            self._leading = True
        if not lead:
            request.ready.acquire()
            if not request.lead:
                return request.outcome()
        # This thread leads: commit everything queued so far, then hand the lead to the next waiter, if any.
        try:
            with self._queue_lock:
                batch, self._queued = self._queued, []
            self._run_batch(batch)
        finally:
            with self._queue_lock:
                if self._queued:
                    successor = self._queued[0]
                    successor.lead = True
                    successor.ready.release()
                else:
                    self._leading = False
        return request.outcome()

    def _run_batch(self, batch: builtins.list[_Write]) -> None:
        try:
            with self._write_lock:
                conn = self._writer()
                if len(batch) == 1:
                    batch[0].run(conn)  # one statement is its own transaction
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        for request in batch:
                            request.run(conn)
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            error = StoreUnavailable(f"SQLite store {self.path} is busy: {exc}")
            error.__cause__ = exc
            for request in batch:
                request.rows, request.error = [], error
        except BaseException as exc:
            for request in batch:
                request.rows, request.error = [], exc
        finally:
            for request in batch:
                if not request.lead:
                    request.ready.release()

    def _save(self, db: sqlite3.Connection, job: Job) -> None:
        values = {
            "state": job.state.value if job.state is not None else None,
            "open": int(job.open),
            "priority": int(job.priority),
            "run_at": _ts(job.run_at),
            "attempt": job.attempt,
            "attempt_base": job.attempt_base,
            "max_attempts": job.max_attempts,
            "lease_expires_at": _ts(job.lease_expires_at),
            "worker": job.worker,
            "result": json.dumps(job.result, ensure_ascii=False) if job.result is not None else None,
            "last_error": job.last_error,
            "updated_at": _ts(job.updated_at),
        }
        assignments = ", ".join(f"{name} = ?" for name in _UPDATABLE)
        db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [values[n] for n in _UPDATABLE] + [job.id])

    def recover_expired(self, *, limit: int = 100) -> builtins.list[Job]:
        with self._write() as db:
            now = self.now()
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state = 'processing' AND lease_expires_at <= ? ORDER BY id LIMIT ?",
                (now.timestamp(), limit),
            ).fetchall()
            recovered = []
            for row in rows:
                new = expire(_row_to_job(row), now)
                self._save(db, new)
                recovered.append(new)
            return recovered

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        wanted = list(states) if states is not None else list(JobState)
        counts = dict.fromkeys(wanted, 0)
        for state, n in self._conn().execute(_COUNT_SQL):
            if state is not None and JobState(state) in counts:
                counts[JobState(state)] = n
        return counts

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        states = list(states)
        if not states:
            return 0
        marks = ",".join("?" * len(states))
        params = [s.value for s in states] + [older_than.timestamp()]
        where = f"state IN ({marks}) AND updated_at < ?"
        if set(states) <= FINISHED:
            where = f"{_FINISHED_SQL} AND {where}"  # the jobs_finished index's own condition, so it is used
        with self._write() as db:
            db.execute(f"DELETE FROM comments WHERE job_id IN (SELECT id FROM jobs WHERE {where})", params)
            cur = db.execute(f"DELETE FROM jobs WHERE {where}", params)
            return cur.rowcount

    # -- comments ---------------------------------------------------------------------------------------------
    def comment(self, job_id: int, body: str) -> Comment:
        now = self.now()
        with self._write() as db:
            if db.execute("UPDATE jobs SET comments = comments + 1 WHERE id = ?", (job_id,)).rowcount == 0:
                raise JobNotFound(job_id)
            cur = db.execute(
                "INSERT INTO comments (job_id, body, created_at) VALUES (?, ?, ?) RETURNING id",
                (job_id, body, now.timestamp()),
            )
            comment_id = cur.fetchone()[0]
        return Comment(id=comment_id, job_id=job_id, body=body, created_at=now)

    def comments(self, job_id: int) -> builtins.list[Comment]:
        self.get(job_id)
        rows = self._conn().execute(
            "SELECT id, job_id, body, author, created_at FROM comments WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
        return [Comment(id=i, job_id=j, body=b, author=a, created_at=_dt(c) or self.now()) for i, j, b, a, c in rows]

    # -- settings ---------------------------------------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        row = self._conn().execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    def set_setting(self, key: str, value: Any) -> None:
        conn = self._conn()
        if value is None:
            conn.execute("DELETE FROM settings WHERE key = ?", (key,))
        else:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )
