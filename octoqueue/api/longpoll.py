"""Waking long-polling claims without parking a thread per waiter, and without waking them all for one job.

A waiting claim is a coroutine holding a :class:`Waiter`: it makes a short, non-blocking claim in the threadpool,
and when nothing is runnable it parks until :class:`ArrivalSignal` hands it an arrival (or its poll interval
passes, for jobs another process enqueued into a store that cannot report them). The server's
:class:`~octoqueue.queue.Queue` announces every job that may have become runnable through it — enqueue, retry,
requeue, lease recovery — with the job's record, and those the store reports from other processes;
:class:`QueueWatcher` relays each onto the event loop with ``call_soon_threadsafe`` (a job that may run only later
at its ``run_at``). A thousand waiting workers cost a thousand small coroutines, not a thousand threads.

**One arrival, one claim.** An arrival wakes one waiter whose labels the job carries (a queue's claims wait on
``queue:<name>``), the one parked longest, not every waiter of every queue: all but one of those would have made
a claim — a thread hop and a store write — for nothing. A woken waiter with room for more jobs (``count`` > 1)
that has not claimed yet takes the next arrivals too. An arrival that finds no parked waiter goes to one whose
claim is running (that claim may have read the store before the job was there), or nowhere when no claim is
waiting at all: a claim that starts later reads the store after the job was written.

**No arrival is lost.** A woken waiter passes the wake on when it cannot use it: when it leaves without claiming
(the client went away, an error), when it returns jobs while holding arrivals that came during its claim, and
when its claim took fewer jobs than it was woken for (someone else took them — or, with a store whose claim can
come back short, they are still there); that last pass is made once per arrival, so a job another claimer took
costs at most two claims, not a claim per waiter. A waiter woken while its claim runs, whose claim took nothing,
claims again at once instead of parking.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from octoqueue.job import Job
from octoqueue.queue import Queue
from octoqueue.states import JobState, label_key
from octoqueue.stores.base import Arrival

_CLAIMING, _PARKED, _WOKEN = "claiming", "parked", "woken"


@dataclass(frozen=True, slots=True)
class _Wake:
    """One arrival handed to a waiter: the arrived job's labels (None: unknown, any waiter may take it)."""

    labels: frozenset[str] | None
    passed: bool = False  # already passed on once after a claim that came back short


class _Group:
    """The waiters keyed under one label, in the order they entered each state (oldest first)."""

    __slots__ = ("claiming", "members", "parked", "spare")

    def __init__(self) -> None:
        self.members: dict[Waiter, None] = {}
        self.parked: dict[Waiter, None] = {}  # waiting for an arrival
        self.spare: dict[Waiter, None] = {}  # woken, not claiming yet, room for more arrivals
        self.claiming: dict[Waiter, None] = {}  # claim running, room for more arrivals that come meanwhile


class Waiter:
    """One long-polling claim's place in line; made by :meth:`ArrivalSignal.waiter`. Call :meth:`claiming` before
    each claim, :meth:`claimed` after it, :meth:`wait` to park. Used from the event loop only."""

    def __init__(self, signal: ArrivalSignal, labels: Collection[str], count: int) -> None:
        self.labels = frozenset(label_key(name) for name in labels)  # GitHub's label names ignore case
        self.count = max(1, int(count))
        self.key = min(self.labels) if self.labels else None
        self._signal = signal
        self._event = asyncio.Event()
        self.state = _CLAIMING  # registered just before its first claim
        self._covered: list[_Wake] = []  # arrivals handed over before the next claim starts: it will see them
        self._spending: list[_Wake] = []  # arrivals handed over before the running claim started
        self._late: list[_Wake] = []  # arrivals handed over while a claim ran: it may not have seen them

    def __repr__(self) -> str:
        return f"Waiter({sorted(self.labels)}, count={self.count}, {self.state})"

    @property
    def woken(self) -> bool:
        """An arrival is waiting for this waiter's next claim."""
        return bool(self._covered or self._late)

    def claiming(self) -> None:
        """A claim starts now: the arrivals handed over so far are in the store, and it will see them."""
        self._signal._unlist(self)
        self._spending, self._covered = self._covered, []
        self.state = _CLAIMING
        self._signal._list(self)

    def claimed(self, jobs: int) -> bool:
        """The claim took ``jobs`` jobs. True when the waiter should claim again at once: it took nothing, and an
        arrival came while it ran."""
        short, self._spending = self._spending[jobs:], []
        if jobs == 0 and self._late:
            # The claim may have read the store before those arrivals were in it: the next one covers them all.
            self._signal._unlist(self)
            self._covered, self._late = self._late + short, []
            self._signal._list(self)
            return True
        for wake in short:  # took fewer jobs than it was woken for
            if not wake.passed:
                self._signal._hand_on(_Wake(wake.labels, passed=True), self)
        return False

    async def wait(self, timeout: float) -> bool:
        """Park until an arrival is handed over or ``timeout`` seconds pass; True when one was."""
        if not self.woken:
            self._signal._unlist(self)
            self.state = _PARKED
            self._event.clear()
            self._signal._list(self)
            # asyncio.timeout, not wait_for: no task per wait, and (on 3.11) a cancellation that comes as the event
            # is set is not swallowed.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._event.wait()
        return self.woken

    def _leave(self) -> None:
        """Hand every arrival this waiter holds but did not use to another waiter."""
        unused = self._covered + self._spending + self._late
        self._covered, self._spending, self._late = [], [], []
        for wake in unused:
            self._signal._hand_on(wake, self)

    def _take(self, wake: _Wake) -> None:
        signal = self._signal
        signal._unlist(self)
        if self.state == _CLAIMING:
            self._late.append(wake)
        else:
            if self.state == _PARKED:
                self.state = _WOKEN
                self._event.set()
            self._covered.append(wake)
        signal._list(self)


class ArrivalSignal:
    """The waiting claims of one server process, and the arrivals handed to them (on the event loop)."""

    def __init__(self) -> None:
        self._groups: dict[str | None, _Group] = {}
        self.handed = 0  # arrivals handed to a waiter (passes included); for tests and curiosity

    @contextlib.contextmanager
    def waiter(self, labels: Collection[str], count: int = 1) -> Iterator[Waiter]:
        """A place in line for a claim of up to ``count`` jobs carrying all ``labels``, from before its first
        claim (so an arrival during that claim is not missed) until it returns; arrivals it got and did not use
        are passed on when it leaves."""
        waiter = Waiter(self, labels, count)
        group = self._groups.get(waiter.key)
        if group is None:
            group = self._groups[waiter.key] = _Group()
        group.members[waiter] = None
        self._list(waiter)
        try:
            yield waiter
        finally:
            self._unlist(waiter)
            del group.members[waiter]
            if not group.members:
                del self._groups[waiter.key]
            waiter._leave()

    @property
    def anyone_waiting(self) -> bool:
        """Whether any claim is in line. Safe to read from any thread: a claim enters the line before it first reads
        the store, so a job written before this read False is seen by every claim that enters later."""
        return bool(self._groups)

    def waiting_for(self, labels: Collection[str]) -> bool:
        """Whether a claim in line would take a job carrying ``labels`` (the one an arrival of it wakes)."""
        carried = frozenset(labels)
        groups = [group for key in (*carried, None) if (group := self._groups.get(key)) is not None]
        return any(waiter.labels <= carried for group in groups for waiter in group.members)

    @property
    def waiters(self) -> int:
        """Claims in line (parked, woken or claiming)."""
        return sum(len(group.members) for group in list(self._groups.values()))

    @property
    def parked(self) -> int:
        """Claims parked, waiting for an arrival."""
        return sum(len(group.parked) for group in list(self._groups.values()))

    def arrive(self, labels: Collection[str] | None, delay: float = 0.0) -> None:
        """A job carrying ``labels`` may be runnable (after ``delay`` seconds): hand it to one waiter whose labels it
        carries. ``labels`` None: a job nobody knows — every waiter claims again (as :meth:`fire`)."""
        if delay > 0:
            asyncio.get_running_loop().call_later(delay + 0.001, self.arrive, labels)
            return
        if labels is None:
            self.fire()
        else:
            self._hand_on(_Wake(frozenset(label_key(name) for name in labels)), None)

    def fire(self) -> None:
        """Wake every waiter: each claims again (a broadcast, for arrivals that are not known one by one)."""
        for group in list(self._groups.values()):
            for waiter in list(group.members):
                if waiter.state == _PARKED or (waiter.state == _CLAIMING and not waiter._late):
                    self.handed += 1
                    waiter._take(_Wake(None))

    # -- internals ---------------------------------------------------------------------------------------------
    def _hand_on(self, wake: _Wake, source: Waiter | None) -> None:
        """Give ``wake`` to the first waiter that can use it: woken with room to spare, else parked, else claiming;
        drop it when no claim is waiting (every later claim reads the store after the job was written)."""
        if wake.labels is None:
            groups = list(self._groups.values())
        else:  # the groups keyed under one of the job's labels, and the claims for any label
            groups = [group for key in (*wake.labels, None) if (group := self._groups.get(key)) is not None]
        for state in ("spare", "parked", "claiming"):
            for group in groups:
                for waiter in getattr(group, state):
                    if waiter is not source and (wake.labels is None or waiter.labels <= wake.labels):
                        self.handed += 1
                        waiter._take(wake)
                        return

    def _unlist(self, waiter: Waiter) -> None:
        group = self._groups.get(waiter.key)
        if group is not None:
            group.parked.pop(waiter, None)
            group.spare.pop(waiter, None)
            group.claiming.pop(waiter, None)

    def _list(self, waiter: Waiter) -> None:
        """File the waiter under its state, if it can take another arrival there."""
        group = self._groups.get(waiter.key)
        if group is None or waiter not in group.members:
            return
        if waiter.state == _PARKED:
            group.parked[waiter] = None
        elif waiter.state == _WOKEN and len(waiter._covered) < waiter.count:
            group.spare[waiter] = None
        elif waiter.state == _CLAIMING and len(waiter._late) < waiter.count:
            group.claiming[waiter] = None


class QueueWatcher:
    """Relays the Queue's arrivals (:meth:`Queue.add_arrival_listener`, with the job) to an :class:`ArrivalSignal`."""

    def __init__(self, queue: Queue, signal: ArrivalSignal, loop: asyncio.AbstractEventLoop) -> None:
        self._queue = queue
        self._signal = signal
        self._loop = loop
        self._listening = False

    @property
    def active(self) -> bool:
        return self._listening

    def start(self) -> None:
        self._queue.add_arrival_listener(self._relay, with_job=True)
        self._listening = True

    def stop(self) -> None:
        if self._listening:
            self._queue.remove_arrival_listener(self._relay)
            self._listening = False

    def _relay(self, job: Job | Arrival | None = None) -> None:
        labels: tuple[str, ...] | None = None
        delay = 0.0
        if job is not None:
            if job.state is not JobState.PENDING:
                return  # an enqueue that found its idempotency key taken, by a job already claimed or finished
            labels = job.labels
            if job.run_at is not None:
                delay = (job.run_at - self._queue.store.now()).total_seconds()
        if delay <= 0 and not self._signal.anyone_waiting:
            # Nobody to wake, so no trip to the event loop: a claim that starts later reads the store, which holds
            # the job already. (A job due later is relayed all the same, for the claims that park before then.)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed
            self._loop.call_soon_threadsafe(self._signal.arrive, labels, delay)


__all__ = ["ArrivalSignal", "QueueWatcher", "Waiter"]
