"""Arrivals from other processes: one LISTEN connection per store object, and the NOTIFY payloads it reads.

Every statement that makes jobs pending (create, a retry, a requeue, a release, a lease recovery) sends, in the same
transaction, one NOTIFY per label set it touched: ``{"s": source, "l": labels, "n": how many, "r": the earliest
run_at as epoch seconds, null when one may run now}``.
PostgreSQL delivers it at commit, so a woken claimer finds the jobs. The source is the sending store object's
token: a store does not report its own arrivals (the Queue that made them already told its listeners).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from octoqueue.stores.base import Arrival

log = logging.getLogger(__name__)


def read_payload(payload: str) -> tuple[str, Arrival] | None:
    """(source, arrival) from a payload; None when it is not one of ours."""
    try:
        fields = json.loads(payload)
        labels = fields["l"]
        run_at = fields["r"]
        return str(fields["s"]), Arrival(
            labels=tuple(str(label) for label in labels) if labels is not None else None,
            count=max(1, int(fields["n"])),
            run_at=datetime.fromtimestamp(float(run_at), UTC) if run_at is not None else None,
        )
    except (ValueError, TypeError, KeyError):
        return None


class _Callbacks:
    """The callbacks a listener calls with each :class:`Arrival` from another store object."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._callbacks: list[Callable[[Arrival], None]] = []
        self._lock = threading.Lock()

    def _remover(self, callback: Callable[[Arrival], None]) -> Callable[[], None]:
        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def _heard(self, payload: str) -> None:
        read = read_payload(payload)
        if read is not None and read[0] != self._source:
            self._deliver(read[1])

    def _deliver(self, arrival: Arrival) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(arrival)
            except Exception:
                log.exception("arrival callback %r failed", callback)


class ArrivalListener(_Callbacks):
    """A thread holding a LISTEN connection; calls every callback with each :class:`Arrival` from another store
    object. When the connection drops it reconnects (backing off up to 2 s) and reports an arrival of unknown labels,
    since NOTIFYs sent meanwhile are gone."""

    def __init__(self, connect: Callable[[], Any], channel: str, source: str) -> None:
        super().__init__(source)
        self._connect = connect
        self._channel = channel
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None

    def add(self, callback: Callable[[Arrival], None]) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="octoqueue-pg-listen", daemon=True)
                self._thread.start()
        # Return once LISTEN is in place: a job committed after this is announced to the callback.
        self._ready.wait(10.0)
        return self._remover(callback)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def _run(self) -> None:
        backoff = 0.05
        first = True
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except Exception as exc:
                log.warning("LISTEN connection failed, retrying in %.2f s: %s", backoff, exc)
                self._stop.wait(backoff)
                backoff = min(2.0, backoff * 2)
                continue
            try:
                conn.execute(f"LISTEN {self._channel}")
                self._ready.set()
                backoff = 0.05
                if not first:
                    self._deliver(Arrival(labels=None))  # what was sent while we were away is lost: look again
                first = False
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=0.5):
                        self._heard(note.payload)
            except Exception as exc:
                if not self._stop.is_set():
                    log.warning("LISTEN connection lost, reconnecting: %s", exc)
            finally:
                conn.close()


class AsyncArrivalListener(_Callbacks):
    """:class:`ArrivalListener` on an event loop: a task holding an ``AsyncConnection``'s LISTEN (reconnecting, and
    reporting an arrival of unknown labels after, as the thread does)."""

    def __init__(self, connect: Callable[[], Awaitable[Any]], channel: str, source: str) -> None:
        super().__init__(source)
        self._connect = connect
        self._channel = channel
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def add(self, callback: Callable[[Arrival], None]) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="octoqueue-pg-listen")
        with contextlib.suppress(TimeoutError):  # as the thread: a claim that cannot listen yet still polls
            await asyncio.wait_for(self._ready.wait(), 10.0)  # LISTEN is in place: later commits are heard
        return self._remover(callback)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        pause = 0.05
        while True:
            try:
                async with await self._connect() as conn:
                    await conn.execute(f"LISTEN {self._channel}")
                    if self._ready.is_set():
                        self._deliver(Arrival(labels=None))  # back after a drop: what was sent meanwhile is lost
                    self._ready.set()
                    pause = 0.05
                    async for note in conn.notifies():
                        self._heard(note.payload)
            except Exception as exc:
                log.warning("LISTEN connection lost, reconnecting in %.2f s: %s", pause, exc)
                await asyncio.sleep(pause)
                pause = min(2.0, pause * 2)


__all__ = ["ArrivalListener", "AsyncArrivalListener", "read_payload"]
