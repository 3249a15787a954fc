"""WAL checkpoints of a SQLite store, run by a thread of their own instead of inside an unlucky commit.

SQLite's default (``wal_autocheckpoint`` 1000 pages) makes the commit that takes the WAL past 1,000 pages copy the
WAL into the database and fsync both before it returns: under a steady stream of enqueues, one commit in ~300
waited 3-16 ms for it, and every request queued behind that write with it (docs/benchmarks.md, Server). Here
:class:`Checkpointer` runs a ``PASSIVE`` checkpoint from its own connection once the WAL holds ``pages`` frames not
yet copied: it never blocks a writer, and the writers never wait for its fsyncs.

A writer starts the WAL over from its beginning only when it finds every frame copied; under writes that never
pause, the frames committed during a checkpoint are still to copy when it ends, and the WAL would grow. So once it
holds ``cap`` pages, the thread copies those last frames with the process's writes held (``writes_held``: a short
checkpoint, most of the WAL being copied already), and the next write starts the WAL over. When readers keep it
from copying them all, it runs a ``TRUNCATE`` checkpoint, which waits at most ``TRUNCATE_WAIT_MS`` for them
(writers wait meanwhile). The writing connection keeps SQLite's own checkpoint, at twice ``cap`` pages
(:func:`safety_net`), for a thread that falls behind (at ``cap`` it would often run first, copying inside a commit
what the thread had not copied yet).

Durability is SQLite's own either way: a commit is in the WAL when it returns (fsynced at ``synchronous=FULL``), and
a checkpoint fsyncs the WAL before it copies it and the database after.

The frames waiting are read from the WAL index (the ``-shm`` file: ``mxFrame`` at byte 16 of its header,
``nBackfill`` at byte 96, https://sqlite.org/walformat.html), a read of a few bytes, so the thread looks at most
every ``interval`` seconds after a write and checkpoints only when there is enough to copy.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import struct
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

log = logging.getLogger("octoqueue.stores.sqlite")

#: Frames not yet copied into the database that start a checkpoint (SQLite's own default threshold).
PAGES = 1000
#: WAL size, in pages, at which the writing connection checkpoints itself and the thread falls back to TRUNCATE.
CAP = 4000
#: Shortest time between two looks at the WAL, in seconds.
INTERVAL = 0.05
#: Seconds without a write after which the thread ends (the next write starts another): a store left unclosed
#: keeps no thread, and is not kept alive by one.
IDLE = 2.0
#: Longest wait of the TRUNCATE fallback for readers to move on (writers wait with it).
TRUNCATE_WAIT_MS = 100

_FRAMES = struct.Struct("=I")  # the WAL index is in the machine's byte order


class Checkpointer:
    """Checkpoints the WAL of one SQLite file from a thread of its own, started by a :meth:`wrote` and ended after
    ``idle`` seconds without one."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        path: str,
        *,
        writes_held: Callable[[], AbstractContextManager[object]] | None = None,
        pages: int = PAGES,
        cap: int = CAP,
        interval: float = INTERVAL,
    ) -> None:
        if not 0 < pages <= cap:
            raise ValueError(f"pages must be above 0 and at most cap, not pages={pages}, cap={cap}")
        if interval < 0:
            raise ValueError(f"interval is in seconds, 0 or more, not {interval!r}")
        self._connect = connect
        self._writes_held = writes_held
        self._shm = path + "-shm"
        self.pages = pages
        self.cap = cap
        self.interval = interval
        self.idle = IDLE
        self._conn: sqlite3.Connection | None = None
        self._wrote = threading.Event()
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()
        #: Checkpoints run (PASSIVE and TRUNCATE), and the TRUNCATE ones among them.
        self.checkpoints = 0
        self.truncates = 0

    def wrote(self) -> None:
        """A commit added to the WAL: look at it soon. Called after every commit; cheap."""
        if self._thread is None:
            self._start()
        if not self._wrote.is_set():
            self._wrote.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                thread = threading.Thread(target=self._loop, name="octoqueue-sqlite-checkpoint", daemon=True)
                thread.start()
                self._thread = thread

    def waiting(self) -> int | None:
        """Frames in the WAL not yet copied into the database, as the WAL index says; None when it cannot be read."""
        index = self._index()
        return None if index is None else max(0, index[0] - index[1])

    def _index(self) -> tuple[int, int] | None:
        """The WAL's frames and those copied into the database, from the WAL index; None when it cannot be read."""
        try:
            with open(self._shm, "rb") as shm:
                head = shm.read(100)
        except OSError:
            return None
        if len(head) < 100:
            return None
        return _FRAMES.unpack_from(head, 16)[0], _FRAMES.unpack_from(head, 96)[0]

    def step(self) -> bool:
        """Checkpoint when ``pages`` frames wait (or the index cannot be read); once the WAL holds ``cap`` pages, copy
        the frames committed meanwhile with the writes held, or TRUNCATE when readers keep frames from being copied.
        Whether a checkpoint ran."""
        waiting = self.waiting()
        if waiting is not None and waiting < self.pages:
            return False
        if self._conn is None:
            self._conn = self._connect()
            self._conn.execute(f"PRAGMA busy_timeout = {TRUNCATE_WAIT_MS}")
        conn = self._conn
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        ran = 1
        index = self._index()
        if self._writes_held is not None and index is not None and index[0] >= self.cap and index[1] < index[0]:
            # Frames committed while it copied: copied with this process's writes held, so that the next write
            # finds the WAL all copied and starts it over.
            with self._writes_held():
                busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            ran += 1
        if frames >= self.cap and (busy or copied < frames):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()  # readers hold it: wait for them a little
            ran += 1
            self.truncates += 1
        with self._done:
            self.checkpoints += ran
            self._done.notify_all()
        return True

    def wait_for(self, checkpoints: int, timeout: float) -> bool:
        """Wait until at least ``checkpoints`` have run (for tests and tools); whether they have."""
        with self._done:
            return self._done.wait_for(lambda: self.checkpoints >= checkpoints, timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._wrote.wait(self.idle):
                with self._start_lock:
                    if not self._wrote.is_set():
                        self._thread = None
                        return
            if self._stop.is_set():
                break
            self._wrote.clear()
            try:
                self.step()
            except sqlite3.Error as exc:  # busy or failing: the next write brings another try
                log.warning("WAL checkpoint of %s failed: %s", self._shm[: -len("-shm")], exc)
            self._stop.wait(self.interval)

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and close its connection; a later write starts
        them again (as the store reopens its connections)."""
        with self._start_lock:
            self._stop.set()
            self._wrote.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        with self._start_lock:
            self._wrote.clear()
            self._stop.clear()


def safety_net(conn: sqlite3.Connection, pages: int = 2 * CAP) -> None:
    """Let the writing connection checkpoint itself only once the WAL holds ``pages`` pages (the thread starts the
    WAL over at ``CAP``); 0: never."""
    conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")


__all__ = ["CAP", "IDLE", "INTERVAL", "PAGES", "TRUNCATE_WAIT_MS", "Checkpointer", "safety_net"]
