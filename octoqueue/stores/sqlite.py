"""The embedded default: one SQLite file, safe for many threads and processes on one host.

WAL journal so readers never block the writer; every write takes SQLite's write lock before it reads (``BEGIN
IMMEDIATE``, or a single statement), so two processes cannot both read a pending job and then both claim it. A claim
is one ``UPDATE ... RETURNING`` over the runnable index; the usual transition (complete, fail, heartbeat) is one
conditional ``UPDATE ... RETURNING`` that checks the state and the fencing attempt itself; ``transition_many`` runs
those in one transaction (so the Worker's batched completions cost one commit), and ``transition_and_claim`` adds
the claim to that transaction (a worker's finished jobs and its next ones: one commit). Every write of a process
goes through one connection in turn, and writes queued meanwhile share a commit (``_sqlite_group_commit``).
``synchronous=NORMAL``: a committed job survives a crash of the process; a power cut may lose the last transactions
(set ``?synchronous=FULL`` in the URL for that too).

The columns of a job and their conversions are in ``_sqlite_columns``, the schema and its migrations (keyed by
``PRAGMA user_version``) in ``_sqlite_migrations``. Why the SQL is shaped as it is, with the timings that chose it:
docs/benchmarks.md.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from octoqueue.errors import ConfigurationError, InvalidTransition, JobNotFound, StateConflict, StoreUnavailable
from octoqueue.job import Comment, Job, NewJob, Page
from octoqueue.states import FINISHED, TRANSITIONS, JobState, LabelScheme
from octoqueue.stores._sqlite_checkpoint import Checkpointer, safety_net
from octoqueue.stores._sqlite_columns import (
    IMPORT_SQL,
    INSERT_SQL,
    SELECT_LIST,
    UPDATE_SQL,
    created_job,
    import_params,
    insert_params,
    row_to_job,
    stored,
    update_params,
)
from octoqueue.stores._sqlite_group_commit import GroupCommit, inserted_id
from octoqueue.stores._sqlite_migrations import check_known, latest, migrate, version
from octoqueue.stores.base import (
    Clock,
    Move,
    Store,
    apply_transition,
    check_changes,
    checked_setting,
    expected_set,
    expire,
)

_FINISHED_SQL = "state IN ('completed', 'failed', 'cancelled')"

#: Counts per state, each from the partial index that holds that state's jobs.
_COUNT_SQL = (
    "SELECT 'pending', COUNT(*) FROM jobs WHERE state = 'pending' "
    "UNION ALL SELECT 'processing', COUNT(*) FROM jobs WHERE state = 'processing' "
    f"UNION ALL SELECT state, COUNT(*) FROM jobs WHERE {_FINISHED_SQL} GROUP BY state"
)

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SQLiteStore(Store):
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``; query options ``synchronous``
    (OFF, NORMAL, FULL or EXTRA), ``busy_timeout`` (ms)."""

    def __init__(
        self,
        path: str | Path = "octoqueue.db",
        *,
        labels: LabelScheme | None = None,
        synchronous: str = "NORMAL",
        busy_timeout: int = 30_000,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(labels, clock=clock)
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ConfigurationError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        if busy_timeout < 0:
            raise ConfigurationError(f"busy_timeout is in milliseconds, 0 or more, not {busy_timeout!r}")
        self.path = str(path)
        if "\x00" in self.path:
            raise ConfigurationError(f"the SQLite store's path {self.path!r} holds a NUL character")
        self.url = f"sqlite:///{self.path}"
        self._synchronous = synchronous.upper()
        # FULL and EXTRA fsync each commit: writes from many threads then share one (GroupCommit); one after another
        # on one thread, each would wait for its own.
        self.quick_writes = self._synchronous in ("OFF", "NORMAL")
        self._busy_timeout = int(busy_timeout)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._fast_sql: dict[tuple[Any, ...], str] = {}
        self._writer_conn: sqlite3.Connection | None = None
        # Checkpoints run on a thread of their own (``_sqlite_checkpoint``), not inside the commit that fills the WAL.
        self.checkpointer: Checkpointer | None = None
        if self.path != ":memory:":
            self.checkpointer = Checkpointer(self._open, self.path, writes_held=lambda: self._writes.held())
        self._writes = GroupCommit(
            self._writer, self.path, None if self.checkpointer is None else self.checkpointer.wrote
        )
        if self.path != ":memory:":
            parent = Path(self.path).parent
            try:
                found = parent.is_dir()
            except OSError as exc:
                raise ConfigurationError(f"the folder for the SQLite store cannot be read: {parent}: {exc}") from exc
            if not found:
                raise ConfigurationError(f"the folder for the SQLite store does not exist: {parent}")
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        parts = urlsplit(url)
        path = unquote(parts.netloc + parts.path)
        if path.startswith("/"):
            path = path[1:]  # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
        if not path:
            raise ConfigurationError(f"{url!r} names no file: use sqlite:///octoqueue.db")
        if "\x00" in path:
            raise ConfigurationError(f"{url!r} names a file with a NUL byte in its name")
        query = dict(parse_qsl(parts.query))
        unknown = sorted(set(query) - {"synchronous", "busy_timeout"})
        if unknown:
            raise ConfigurationError(
                f"{url!r}: unknown SQLite store option {', '.join(map(repr, unknown))}; "
                "the options are synchronous and busy_timeout"
            )
        kwargs: dict[str, Any] = {}
        if "synchronous" in query:
            kwargs["synchronous"] = query["synchronous"]
        if "busy_timeout" in query:
            try:
                kwargs["busy_timeout"] = int(query["busy_timeout"])
            except ValueError:
                raise ConfigurationError(
                    f"{url!r}: busy_timeout is a whole number of milliseconds, not {query['busy_timeout']!r}"
                ) from None
        kwargs.update(options)
        return cls(path, **kwargs)

    def _migrate(self) -> None:
        """Bring the file to this code's schema (``_sqlite_migrations``), or refuse a file from a newer octoqueue.
        The version is read without the write lock first: a current file, the usual case, takes no lock. Processes
        still running the previous code meanwhile keep pending_labels in step through the triggers, which live in
        the file."""
        found = version(self._conn())
        check_known(self.path, found)
        if found < latest():
            self._writes.transaction(lambda db: migrate(db, self.path))

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
        """The connection every write of this process goes through (see ``_sqlite_group_commit``)."""
        if self.path == ":memory:":
            return self._conn()  # every connection to :memory: is a database of its own
        conn = self._writer_conn
        if conn is None:
            conn = self._open()
            safety_net(conn)
            self._writer_conn = conn
        return conn

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
        self._writer_conn = None

    # -- jobs -------------------------------------------------------------------------------------------------
    def create(self, new: NewJob) -> Job:
        now = self.now()
        params = insert_params(new, state=JobState.PENDING, created_at=now, updated_at=now)
        key = new.idempotency_key
        if key is None:
            return created_job(self._writes.insert(INSERT_SQL, params), params, new.data)

        def create_once(db: sqlite3.Connection) -> Job:
            row = db.execute(f"SELECT {SELECT_LIST} FROM jobs WHERE idempotency_key = ?", (key,)).fetchone()
            if row is not None:
                return row_to_job(row)
            return created_job(inserted_id(db.execute(INSERT_SQL, params)), params, new.data)

        return self._writes.transaction(create_once)

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        def write(db: sqlite3.Connection) -> Job:
            rows = [(job.id, note.body, note.author, note.created_at.timestamp()) for note in comments]
            db.executemany("INSERT INTO comments (job_id, body, author, created_at) VALUES (?, ?, ?, ?)", rows)
            (count,) = db.execute("SELECT COUNT(*) FROM comments WHERE job_id = ?", (job.id,)).fetchone()
            db.execute("DELETE FROM jobs WHERE id = ?", (job.id,))  # its triggers clear the old pending_labels rows
            try:
                return row_to_job(db.execute(IMPORT_SQL, import_params(job, count)).fetchone())
            except sqlite3.IntegrityError as exc:
                raise StateConflict(job.id, f"cannot import it: {exc}") from exc

        return self._writes.transaction(write)

    def get(self, job_id: int) -> Job:
        row = self._conn().execute(f"SELECT {SELECT_LIST} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return row_to_job(row)

    def list_jobs(
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
            where.append("id IN (SELECT id FROM pending_labels WHERE label = lower(?))")
            params.append(wanted.pop(0))
        for label in wanted:
            where.append("EXISTS (SELECT 1 FROM json_each(jobs.labels) WHERE lower(value) = lower(?))")
            params.append(label)
        params.append(limit + 1)
        rows = (
            self._conn()
            .execute(f"SELECT {SELECT_LIST} FROM jobs WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", params)
            .fetchall()
        )
        jobs = [row_to_job(r) for r in rows[:limit]]
        return Page(jobs=jobs, cursor=str(jobs[-1].id) if len(rows) > limit else None)

    def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]:
        wanted = [s.value for s in states]
        if not wanted:
            return []
        rows = (
            self._conn()
            .execute(
                f"SELECT {SELECT_LIST} FROM jobs WHERE state IN ({','.join('?' * len(wanted))}) "
                "ORDER BY updated_at DESC, id DESC LIMIT ?",
                [*wanted, limit],
            )
            .fetchall()
        )
        return [row_to_job(r) for r in rows]

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
        statement = self._claim_statement(worker, lease, limit, labels, types, ids, exclude_labels, exclude_types)
        if statement is None:
            return []
        # One statement: the write lock is taken before the pending rows are read, so two claimers never take the
        # same job.
        return _claimed(self._writes.statement(*statement, many=True))

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
        """The moves as :meth:`transition_many` makes them, then the claim's statement, in one transaction: one
        commit (one fsync at ``synchronous=FULL``) for a worker's finished jobs and the ones it runs next."""
        statement = self._claim_statement(worker, lease, limit, labels, types, ids, exclude_labels, exclude_types)
        if statement is None:
            return self.transition_many(moves), []
        apply_all = self._moves_work(moves)

        def both(db: sqlite3.Connection) -> tuple[list[Job | Exception], list[Job]]:
            moved = apply_all(db)
            return moved, _claimed(db.execute(*statement).fetchall())

        return self._writes.transaction(both)

    def _claim_statement(
        self,
        worker: str,
        lease: float,
        limit: int,
        labels: Collection[str],
        types: Collection[str] | None,
        ids: Collection[int] | None,
        exclude_labels: Collection[str],
        exclude_types: Collection[str],
    ) -> tuple[str, list[Any]] | None:
        """The one ``UPDATE ... RETURNING`` that claims up to ``limit`` jobs, or None when the claim can take none
        (no type or no id asked for)."""
        now = self.now().timestamp()
        params: list[Any] = [worker, now + lease, now, now]
        wanted = list(dict.fromkeys(labels))
        if ids is None and wanted:
            # Walk the first label's pending jobs in claim order (pending_labels' primary key), each job found by
            # its id; the other labels are looked up in the same key. Jobs of other labels are never read.
            source = "pending_labels AS l CROSS JOIN jobs ON jobs.id = l.id"
            where = ["l.label = lower(?)", "jobs.state = 'pending'", "(jobs.run_at IS NULL OR jobs.run_at <= ?)"]
            params += [wanted[0], now]
            for label in wanted[1:]:
                where.append(
                    "EXISTS (SELECT 1 FROM pending_labels AS m WHERE m.label = lower(?) AND m.priority = l.priority "
                    "AND m.id = l.id)"
                )
                params.append(label)
            key, order = "l.id", "l.priority, l.id"
        else:
            # Without labels: walk the partial index of pending jobs in claim order. Without stored statistics the
            # planner may prefer another index and sort every pending row on each claim (docs/benchmarks.md). A
            # claim for given ids is left to the planner, which looks them up by primary key.
            source = "jobs" if ids is not None else "jobs INDEXED BY jobs_runnable"
            where = ["state = 'pending'", "(run_at IS NULL OR run_at <= ?)"]
            params.append(now)
            for label in wanted:
                where.append("EXISTS (SELECT 1 FROM json_each(jobs.labels) WHERE lower(value) = lower(?))")
                params.append(label)
            key, order = "id", "priority, id"
        if types is not None:
            types = list(types)
            if not types:
                return None
            where.append(f"jobs.type IN ({','.join('?' * len(types))})")
            params.extend(types)
        if ids is not None:
            ids = [int(i) for i in ids]
            if not ids:
                return None
            where.append(f"jobs.id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if exclude_labels:
            unwanted = list(dict.fromkeys(exclude_labels))
            where.append(
                "NOT EXISTS (SELECT 1 FROM json_each(jobs.labels) WHERE lower(value) IN "
                f"({','.join('lower(?)' for _ in unwanted)}))"
            )
            params.extend(unwanted)
        if exclude_types:
            unwanted = list(dict.fromkeys(exclude_types))
            where.append(f"(jobs.type IS NULL OR jobs.type NOT IN ({','.join('?' * len(unwanted))}))")
            params.extend(unwanted)
        params.append(limit)
        return (
            "UPDATE jobs SET state = 'processing', open = 1, attempt = attempt + 1, worker = ?, "
            f"lease_expires_at = ?, started_at = ?, updated_at = ? WHERE id IN (SELECT {key} FROM {source} WHERE "
            f"{' AND '.join(where)} ORDER BY {order} LIMIT ?) RETURNING {SELECT_LIST}",
            params,
        )

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
        move = Move(job_id, expected, target, attempt, changes)
        fast = self._fast_update(move)
        if fast is not None:
            # One conditional UPDATE (atomic on its own) does the check and the write. When it matches no row, the
            # read-check-write below raises the contract's exact exception (or, if the job moved into an expected
            # state in between, performs the transition).
            rows = self._writes.statement(*fast)
            if rows:
                return row_to_job(rows[0])
        return self._writes.transaction(lambda db: self._read_check_write(db, move))

    batches_transitions = True

    def transition_many(self, moves: Sequence[Move]) -> list[Job | Exception]:
        """Every move in one transaction (one commit, so one fsync at ``synchronous=FULL``), each as
        :meth:`transition` does it: its conditional UPDATE, fenced by its attempt, then the read-check-write when
        that matched no row. A move the rules refuse gives its exception; the others still apply."""
        apply_all = self._moves_work(moves)
        return self._writes.transaction(apply_all) if moves else []

    def _moves_work(self, moves: Sequence[Move]) -> Callable[[sqlite3.Connection], list[Job | Exception]]:
        """What :meth:`transition_many` runs in its transaction (the moves checked first)."""
        moves = list(moves)
        for move in moves:
            check_changes(move.changes)
        updates = [self._fast_update(move) for move in moves]

        def apply_all(db: sqlite3.Connection) -> list[Job | Exception]:
            outcomes: list[Job | Exception] = []
            for move, fast in zip(moves, updates, strict=True):
                row = db.execute(*fast).fetchone() if fast is not None else None
                if row is not None:
                    outcomes.append(row_to_job(row))
                    continue
                try:
                    outcomes.append(self._read_check_write(db, move))
                except (StateConflict, JobNotFound, InvalidTransition) as exc:  # checked before anything is written
                    outcomes.append(exc)
            return outcomes

        return apply_all

    def _read_check_write(self, db: sqlite3.Connection, move: Move) -> Job:
        """``move`` by the shared rules (``apply_transition``) on the row as read, inside a write transaction."""
        row = db.execute(f"SELECT {SELECT_LIST} FROM jobs WHERE id = ?", (move.job_id,)).fetchone()
        if row is None:
            raise JobNotFound(move.job_id)
        new = apply_transition(
            row_to_job(row),
            expected=move.expected,
            target=move.target,
            attempt=move.attempt,
            changes=dict(move.changes),
            now=self.now(),
        )
        db.execute(UPDATE_SQL, update_params(new))
        return new

    def _fast_update(self, move: Move) -> tuple[str, list[Any]] | None:
        """The one conditional ``UPDATE ... RETURNING`` that performs ``move`` when the job is in an expected state
        (and, when fenced, at the attempt): None when some expected state may not move to the target, which only
        the read-check-write can judge."""
        wanted = expected_set(move.expected)
        target, attempt, changes = move.target, move.attempt, move.changes
        if not wanted or not all(target in TRANSITIONS[state] for state in wanted):
            return None
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
            sql = (
                f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND state IN ({states}){fence} RETURNING {SELECT_LIST}"
            )
            self._fast_sql[key] = sql
        params: list[Any] = [target.value, int(target.is_open), self.now().timestamp()]
        params.extend(stored(column, value) for column, value in changes.items())
        params.append(move.job_id)
        if attempt is not None:
            params.append(attempt)
        return sql, params

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        def recover(db: sqlite3.Connection) -> list[Job]:
            now = self.now()
            rows = db.execute(
                f"SELECT {SELECT_LIST} FROM jobs WHERE state = 'processing' AND lease_expires_at <= ? "
                "ORDER BY id LIMIT ?",
                (now.timestamp(), limit),
            ).fetchall()
            recovered = [expire(row_to_job(row), now) for row in rows]
            db.executemany(UPDATE_SQL, [update_params(job) for job in recovered])
            return recovered

        return self._writes.transaction(recover)

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

        def delete(db: sqlite3.Connection) -> int:
            db.execute(f"DELETE FROM comments WHERE job_id IN (SELECT id FROM jobs WHERE {where})", params)
            return db.execute(f"DELETE FROM jobs WHERE {where}", params).rowcount

        return self._writes.transaction(delete)

    # -- comments ---------------------------------------------------------------------------------------------
    def comment(self, job_id: int, body: str) -> Comment:
        now = self.now()

        def add(db: sqlite3.Connection) -> int:
            if db.execute("UPDATE jobs SET comments = comments + 1 WHERE id = ?", (job_id,)).rowcount == 0:
                raise JobNotFound(job_id)
            return int(
                db.execute(
                    "INSERT INTO comments (job_id, body, created_at) VALUES (?, ?, ?) RETURNING id",
                    (job_id, body, now.timestamp()),
                ).fetchone()[0]
            )

        return Comment(id=self._writes.transaction(add), job_id=job_id, body=body, created_at=now)

    def comments(self, job_id: int) -> list[Comment]:
        self.get(job_id)
        rows = self._conn().execute(
            "SELECT id, job_id, body, author, created_at FROM comments WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
        return [
            Comment(id=i, job_id=j, body=b, author=a, created_at=datetime.fromtimestamp(at, UTC))
            for i, j, b, a, at in rows
        ]

    # -- settings ---------------------------------------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        row = self._conn().execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        def write(db: sqlite3.Connection) -> Any:  # the write lock is held from the read on: no lost update
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            value = checked_setting(key, update(json.loads(row[0]) if row is not None else None))
            if value is None:
                db.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                db.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, json.dumps(value)),
                )
            return value

        return self._writes.transaction(write)


def _claimed(rows: list[tuple[Any, ...]]) -> list[Job]:
    """The jobs a claim's statement returned, in claim order (highest priority, then oldest, first)."""
    jobs = [row_to_job(r) for r in rows]
    jobs.sort(key=lambda j: (j.priority, j.id))
    return jobs
