"""The S3 server's clock, read from the ``Date`` header of every response.

Leases and delays are measured on the server's clock, not on a worker's (as oq does). ``Date`` has a resolution of
one second, so one response only bounds the offset between the server's clock and this host's monotonic clock:
the server stamped the response at some instant between sending the request and receiving the answer, and its
clock then read between ``Date`` and ``Date + 1 s``. Each response narrows the bounds; after a few seconds of
traffic (responses straddling a second boundary) they are as narrow as the round trip. Within the bounds the
estimate is the point nearest this host's wall clock: a host in step with the server (NTP) reads exactly its own
clock, which never jumps as the bounds narrow; a host whose clock is off reads the server's time to within the
bounds, whatever its own wall clock says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime


class ServerClock:
    """Server time = this host's monotonic clock + an offset bounded by the ``Date`` headers observed."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._low: float | None = None  # the offset is at least this ...
        self._high: float | None = None  # ... and less than this
        self._last = 0.0

    def observe(self, date_header: str | None, sent: float, received: float) -> None:
        """Narrow the offset with one response's ``Date``; ``sent``/``received`` are monotonic readings."""
        if not date_header:
            return
        try:
            stamped = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            return
        low = stamped - received
        high = stamped + 1.0 - sent
        with self._lock:
            if self._low is None or self._high is None or low > self._high or high < self._low:
                # First reading, or the server's clock was set (the old bounds contradict this one): start over.
                self._low, self._high = low, high
                return
            self._low = max(self._low, low)
            self._high = min(self._high, high)

    @property
    def synced(self) -> bool:
        return self._low is not None

    def now(self) -> datetime:
        """The server's time now (never earlier than a previous reading of this clock)."""
        with self._lock:
            offset = self._wall() - self._monotonic()
            if self._low is not None and self._high is not None:
                offset = min(max(offset, self._low), self._high)
            reading = max(self._last, self._monotonic() + offset)
            self._last = reading
        return datetime.fromtimestamp(reading, UTC)

    def uncertainty(self) -> timedelta:
        """Half the width of the bounds: how far :meth:`now` may be from the server's clock."""
        with self._lock:
            if self._low is None or self._high is None:
                return timedelta(seconds=1)
            return timedelta(seconds=(self._high - self._low) / 2)
