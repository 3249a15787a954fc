"""The emulator's clock: wall time plus an offset tests can advance instead of sleeping."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Seconds since the epoch, shifted by :meth:`advance` so rate-limit windows can expire instantly."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The emulated current time (epoch seconds)."""
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move emulated time forward; timestamps and limit windows follow, real sleeps are not affected."""
        with self._lock:
            self._offset += seconds


def iso(ts: float | None) -> str | None:
    """GitHub's timestamp format: ISO 8601, UTC, whole seconds, ``Z`` suffix."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_date(ts: float) -> str:
    """RFC 7231 date, as in ``date`` and ``last-modified`` headers."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parse_iso(value: str) -> float:
    """Parse an ISO 8601 timestamp (``since=`` parameters); raises ValueError when malformed."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_http_date(value: str) -> float | None:
    """Parse an ``If-Modified-Since`` header; None when malformed (the header is then ignored, per RFC 7232)."""
    try:
        return datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
