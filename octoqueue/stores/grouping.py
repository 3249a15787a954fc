"""Group commit: calls that threads of one process make at the same moment, written together.

A caller that finds nobody sending leads: it sends what is queued (its own call and any queued meanwhile) in one
batch, then hands the lead to the first call queued while it was sending. A lone call is sent at once; calls that
pile up behind a write share the next one (one transaction, one WAL flush) instead of each waiting for its own.
Each call gets its own result back; when the whole batch fails, each of its calls raises that error. The PostgreSQL
store groups its transitions this way (the SQLite store has its own, statement-level group commit in
``_sqlite_group_commit.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Signal(Protocol):
    """Wakes one waiting caller: :meth:`wait` returns once :meth:`set` was called (before or after)."""

    def wait(self) -> None: ...

    def set(self) -> None: ...


class ThreadSignal:
    """A :class:`Signal` between threads: a bare lock, held until set (cheaper than an Event)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wait(self) -> None:
        self._lock.acquire()

    def set(self) -> None:
        self._lock.release()


class _Call(Generic[Item, Result]):
    __slots__ = ("error", "item", "lead", "ready", "result")

    def __init__(self, item: Item, ready: Signal) -> None:
        self.item = item
        self.ready = ready  # set once the call was sent, or once it leads
        self.lead = False
        self.result: Result | None = None
        self.error: BaseException | None = None

    def outcome(self) -> Result:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupSender(Generic[Item, Result]):
    """Sends items through ``send`` (a batch in, one result per item out, in order), grouping concurrent calls.
    ``signal`` makes what a waiting caller waits on (threads by default; :mod:`octoqueue.aio` passes tasks')."""

    def __init__(
        self,
        send: Callable[[Sequence[Item]], Sequence[Result]],
        most: int = 500,
        signal: Callable[[], Signal] = ThreadSignal,
    ) -> None:
        self._send = send
        self._most = most
        self._signal = signal
        self._lock = threading.Lock()
        self._queued: list[_Call[Item, Result]] = []
        self._leading = False

    def __call__(self, item: Item) -> Result:
        call: _Call[Item, Result] = _Call(item, self._signal())
        with self._lock:
            self._queued.append(call)
            lead = not self._leading
            self._leading = True
        if not lead:
            call.ready.wait()  # sent by a leader, or made the leader
            if not call.lead:
                return call.outcome()
        try:
            with self._lock:
                batch, self._queued = self._queued[: self._most], self._queued[self._most :]
            try:
                results = self._send([c.item for c in batch])
                for queued, result in zip(batch, results, strict=True):
                    queued.result = result
            except BaseException as exc:
                for queued in batch:
                    queued.error = exc
            for queued in batch:
                if queued is not call:
                    queued.ready.set()
        finally:
            with self._lock:
                if self._queued:
                    successor = self._queued[0]
                    successor.lead = True
                    successor.ready.set()
                else:
                    self._leading = False
        return call.outcome()


__all__ = ["GroupSender", "Signal", "ThreadSignal"]
