"""A clock that tests move by hand, for stores (``Store(clock=...)``) and the contract kit.

A store reads the time only through its clock (:meth:`octoqueue.stores.base.Store.now`), so lease expiry, delays
and retry backoff can be tested by moving a :class:`ManualClock` instead of sleeping::

    clock = ManualClock()
    store = MemoryStore(clock=clock)
    ...
    clock.advance(60)   # every lease shorter than a minute has now expired
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class ManualClock:
    """A callable returning a timezone-aware UTC ``datetime`` that changes only when told to. Thread-safe.

    It starts at ``start``, by default the real time when it is made: a store whose server stamps some times
    itself (GitHub's ``created_at``/``updated_at``) then agrees with it until the test moves it.

    Time never goes back: :meth:`advance` refuses a negative step and :meth:`set` a moment in the past, because no
    store promises anything when its clock runs backwards.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = datetime.now(UTC) if start is None else start
        if start.tzinfo is None:
            raise ValueError("a ManualClock starts at a timezone-aware moment (e.g. datetime.now(UTC))")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move the clock ``seconds`` forward; return the new time."""
        step = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if step < timedelta(0):
            raise ValueError(f"a ManualClock only moves forward, not by {step.total_seconds()} seconds")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        """Move the clock to ``when`` (timezone-aware, not before the current time)."""
        if when.tzinfo is None:
            raise ValueError("set the ManualClock to a timezone-aware moment")
        with self._lock:
            if when < self._now:
                raise ValueError(f"a ManualClock only moves forward: {when.isoformat()} is before {self._now}")
            self._now = when.astimezone(UTC)

    def __repr__(self) -> str:
        return f"ManualClock({self().isoformat()})"


__all__ = ["ManualClock"]
