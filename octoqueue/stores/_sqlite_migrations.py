"""The SQLite store's schema, as the steps that build it: ``PRAGMA user_version`` says how many a file has had.

A new file runs every step; a file written by an earlier release runs the steps it lacks, all in one transaction,
when the first store of a process opens it (the version is read again under the write lock, so stores opening it at
once migrate it once). A file whose version is above :func:`latest` was written by a newer octoqueue and is refused:
this code would not know its columns.

To change the schema, append a step (``ALTER TABLE jobs ADD COLUMN ...``, a new index, a table); never edit a step
that has shipped. A new column of ``jobs`` also gets its entry in ``_sqlite_columns.COLUMNS``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence

from octoqueue.errors import ConfigurationError, StoreUnavailable

#: One step: SQL statements run in order, or a function given the connection (inside the migration's transaction).
Step = Sequence[str] | Callable[[sqlite3.Connection], None]

# Version 1: the layout of the releases before versions were counted (whose files say 0) and the first that
# counted. Every statement tolerates what such a file already has. A file from before pending_labels gets the table,
# its triggers and its rows for the jobs already pending; a file from before jobs_finished loses jobs_state.
_V1: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS jobs (
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
    )""",
    # Pending jobs in claim order.
    "CREATE INDEX IF NOT EXISTS jobs_runnable ON jobs (priority, id) WHERE state = 'pending'",
    "CREATE INDEX IF NOT EXISTS jobs_leases ON jobs (lease_expires_at) WHERE state = 'processing'",
    # Finished jobs by state and age, for purge and count; it replaced jobs_state, which held every job.
    "DROP INDEX IF EXISTS jobs_state",
    """CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (state, updated_at)
        WHERE state IN ('completed', 'failed', 'cancelled')""",
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS comments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL,
        body TEXT NOT NULL,
        author TEXT,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS comments_job ON comments (job_id, id)",
    "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # The pending jobs of each extra label in claim order, so a claim for a label walks only that label's pending
    # jobs. A job has a row per label while it is pending; the triggers keep the table in step with jobs in the
    # statement that changes the job (a job's labels never change in this store; the update trigger watches them
    # all the same). Rows leave by the job's id (pending_labels_job).
    """CREATE TABLE IF NOT EXISTS pending_labels (
        label TEXT NOT NULL,
        priority INTEGER NOT NULL,
        id INTEGER NOT NULL,
        PRIMARY KEY (label, priority, id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS pending_labels_job ON pending_labels (id)",
    """CREATE TRIGGER IF NOT EXISTS pending_labels_insert AFTER INSERT ON jobs
        WHEN NEW.state = 'pending' AND NEW.labels != '[]'
    BEGIN
        INSERT OR IGNORE INTO pending_labels (label, priority, id)
            SELECT value, NEW.priority, NEW.id FROM json_each(NEW.labels);
    END""",
    """CREATE TRIGGER IF NOT EXISTS pending_labels_update AFTER UPDATE OF state, priority, labels ON jobs
        WHEN (OLD.state = 'pending' OR NEW.state = 'pending') AND (OLD.labels != '[]' OR NEW.labels != '[]')
            AND (OLD.state IS NOT NEW.state OR OLD.priority != NEW.priority OR OLD.labels != NEW.labels)
    BEGIN
        DELETE FROM pending_labels WHERE OLD.state = 'pending' AND id = OLD.id;
        INSERT OR IGNORE INTO pending_labels (label, priority, id)
            SELECT value, NEW.priority, NEW.id FROM json_each(NEW.labels) WHERE NEW.state = 'pending';
    END""",
    """CREATE TRIGGER IF NOT EXISTS pending_labels_delete AFTER DELETE ON jobs
        WHEN OLD.state = 'pending' AND OLD.labels != '[]'
    BEGIN
        DELETE FROM pending_labels WHERE id = OLD.id;
    END""",
    "DELETE FROM pending_labels",
    """INSERT OR IGNORE INTO pending_labels (label, priority, id)
        SELECT value, jobs.priority, jobs.id FROM jobs, json_each(jobs.labels)
        WHERE jobs.state = 'pending' AND jobs.labels != '[]'""",
)

# Version 2: label names compare without regard to case, as on GitHub. pending_labels keys each label by lower()
# (SQLite's, ASCII only, on both sides of every comparison), so its triggers are made again and its rows rebuilt.
_V2: tuple[str, ...] = (
    "DROP TRIGGER IF EXISTS pending_labels_insert",
    "DROP TRIGGER IF EXISTS pending_labels_update",
    """CREATE TRIGGER pending_labels_insert AFTER INSERT ON jobs
        WHEN NEW.state = 'pending' AND NEW.labels != '[]'
    BEGIN
        INSERT OR IGNORE INTO pending_labels (label, priority, id)
            SELECT lower(value), NEW.priority, NEW.id FROM json_each(NEW.labels);
    END""",
    """CREATE TRIGGER pending_labels_update AFTER UPDATE OF state, priority, labels ON jobs
        WHEN (OLD.state = 'pending' OR NEW.state = 'pending') AND (OLD.labels != '[]' OR NEW.labels != '[]')
            AND (OLD.state IS NOT NEW.state OR OLD.priority != NEW.priority OR OLD.labels != NEW.labels)
    BEGIN
        DELETE FROM pending_labels WHERE OLD.state = 'pending' AND id = OLD.id;
        INSERT OR IGNORE INTO pending_labels (label, priority, id)
            SELECT lower(value), NEW.priority, NEW.id FROM json_each(NEW.labels) WHERE NEW.state = 'pending';
    END""",
    "DELETE FROM pending_labels",
    """INSERT OR IGNORE INTO pending_labels (label, priority, id)
        SELECT lower(value), jobs.priority, jobs.id FROM jobs, json_each(jobs.labels)
        WHERE jobs.state = 'pending' AND jobs.labels != '[]'""",
)


def _v3(conn: sqlite3.Connection) -> None:
    """Version 3: when the latest attempt was claimed (``Job.started_at``, for a job's history). A file that says
    version 0 may already have the column (its layout is read, not its number), as every step of version 1 allows."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    if "started_at" not in columns:
        conn.execute("ALTER TABLE jobs ADD COLUMN started_at REAL")


# Version 4: ids without AUTOINCREMENT, whose sqlite_sequence row was one more page written (one more WAL frame, ~1/3
# of a single-job commit's) by every INSERT. Ids are still never given twice, even after the newest job is purged:
# jobs_top keeps the highest id ever given once the job holding it is deleted (its trigger), and the INSERT takes the
# id after both the highest job's and that (``_sqlite_columns.INSERT_SQL``). The table is rebuilt from its own
# definition without the keyword (SQLite cannot drop it otherwise), its rows, ids, indexes and triggers as they were.
_AUTOINCREMENT = re.compile(r"\s+AUTOINCREMENT\b", re.IGNORECASE)
_TABLE_NAME = re.compile(r'^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"?jobs"?', re.IGNORECASE)
#: What dropping the old table drops with it, made again on the new one: its indexes (version 1) and triggers
#: (versions 1 and 2), as those steps wrote them.
_JOBS_V4_AFTER: tuple[str, ...] = (
    *(s for s in _V1 if s.startswith("CREATE INDEX IF NOT EXISTS jobs_") or s.startswith("CREATE UNIQUE INDEX")),
    *(s for s in _V2 if s.startswith("CREATE TRIGGER")),
    *(s for s in _V1 if "TRIGGER IF NOT EXISTS pending_labels_delete" in s),
    """CREATE TRIGGER jobs_top_kept AFTER DELETE ON jobs
        WHEN OLD.id > ifnull((SELECT max(id) FROM jobs), 0)
    BEGIN
        UPDATE jobs_top SET id = OLD.id WHERE id < OLD.id;
    END""",
)


def _v4(conn: sqlite3.Connection) -> None:
    """Version 4 (above): the highest id given so far goes into jobs_top (sqlite_sequence's, which dropping the table
    forgets, or the highest job's, or jobs_top's own on a file that says version 0 but has it), then the rebuild."""
    conn.execute("CREATE TABLE IF NOT EXISTS jobs_top (id INTEGER NOT NULL)")
    known = [row[0] for row in conn.execute("SELECT id FROM jobs_top")]
    known.append(conn.execute("SELECT ifnull(max(id), 0) FROM jobs").fetchone()[0])
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone() is not None:
        known.extend(row[0] for row in conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'"))
    conn.execute("DELETE FROM jobs_top")
    conn.execute("INSERT INTO jobs_top (id) VALUES (?)", (max(int(top) for top in known),))
    (definition,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
    rebuilt = _TABLE_NAME.sub("CREATE TABLE jobs_v4", _AUTOINCREMENT.sub("", definition, count=1), count=1)
    if rebuilt == definition or "AUTOINCREMENT" in rebuilt.upper():
        raise StoreUnavailable(f"cannot rebuild the jobs table without AUTOINCREMENT from: {definition}")
    columns = ", ".join(f'"{row[1]}"' for row in conn.execute("PRAGMA table_info(jobs)"))
    conn.execute("DROP TABLE IF EXISTS jobs_v4")
    conn.execute(rebuilt)
    conn.execute(f"INSERT INTO jobs_v4 ({columns}) SELECT {columns} FROM jobs")
    conn.execute("DROP TABLE jobs")  # its indexes and triggers too; no DELETE trigger fires
    conn.execute("ALTER TABLE jobs_v4 RENAME TO jobs")
    for statement in _JOBS_V4_AFTER:
        conn.execute(statement)


#: Step n (counting from 1) takes a file from version n - 1 to n. Read when a store opens, not when this is imported.
STEPS: tuple[Step, ...] = (_V1, _V2, _v3, _v4)


def latest() -> int:
    """The version this code writes and reads: the number of steps."""
    return len(STEPS)


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_known(path: str, found: int) -> None:
    """Refuse a file written by a newer octoqueue."""
    if found > latest():
        raise ConfigurationError(
            f"the SQLite store {path} has schema version {found}, written by a newer octoqueue; this one reads "
            f"versions up to {latest()}: upgrade octoqueue to open it"
        )


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Run the steps the file lacks on ``conn``, which must hold the write lock in a transaction (so the version
    read here is the file's current one, and a failing step leaves the file as it was); return the version the file
    had."""
    steps = STEPS
    found = version(conn)
    check_known(path, found)
    for number, step in enumerate(steps[found:], start=found + 1):
        try:
            if callable(step):
                step(conn)
            else:
                for statement in step:
                    conn.execute(statement)
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"cannot bring the SQLite store {path} from schema version {found} to {len(steps)}: step {number} "
                f"failed: {exc}"
            ) from exc
    if found < len(steps):
        conn.execute(f"PRAGMA user_version = {len(steps)}")
    return found
