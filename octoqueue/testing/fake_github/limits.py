"""GitHub's rate limits: the primary hourly budget, and the secondary limits on writes and concurrency."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from octoqueue.testing.fake_github.clock import Clock

#: Methods GitHub counts as "content-creating" for its secondary limits.
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass
class LimitSettings:
    """The limits in force; change them at run time through ``FakeGitHub.set_limits``."""

    rate_limit: int = 5000
    rate_limit_window: float = 3600.0
    secondary_writes_per_minute: int = 80
    secondary_writes_per_hour: int = 500
    max_concurrency: int = 100
    enforce_secondary: bool = True


class RateLimits:
    """Counts requests against the limits. One bucket: the emulator stands for one token."""

    def __init__(self, settings: LimitSettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._used = 0
        self._reset_at = clock.now() + settings.rate_limit_window
        self._writes: deque[float] = deque()
        self._in_flight = 0

    # -- primary -------------------------------------------------------------------------------------------
    def _roll(self, now: float) -> None:
        # GitHub's window is fixed: it starts with the first request after the previous one ran out.
        if now >= self._reset_at:
            self._used = 0
            self._reset_at = now + self.settings.rate_limit_window

    def consume(self) -> bool:
        """Take one request from the primary budget; False (nothing taken) when it is spent."""
        with self._lock:
            self._roll(self._clock.now())
            if self._used >= self.settings.rate_limit:
                return False
            self._used += 1
            return True

    def refund(self) -> None:
        """Give back a request taken by :meth:`consume` (a 304 does not count against the budget)."""
        with self._lock:
            self._used = max(0, self._used - 1)

    def core(self) -> dict[str, Any]:
        """The ``core`` bucket as ``GET /rate_limit`` and the ``x-ratelimit-*`` headers report it."""
        with self._lock:
            self._roll(self._clock.now())
            limit = self.settings.rate_limit
            return {
                "limit": limit,
                "used": self._used,
                "remaining": max(0, limit - self._used),
                "reset": math.ceil(self._reset_at),
                "resource": "core",
            }

    # -- secondary -----------------------------------------------------------------------------------------
    def admit_write(self) -> int | None:
        """Record a content-creating request; returns seconds to wait (``retry-after``) when over a limit."""
        s = self.settings
        if not s.enforce_secondary:
            return None
        with self._lock:
            now = self._clock.now()
            while self._writes and self._writes[0] <= now - 3600:
                self._writes.popleft()
            last_minute = [t for t in self._writes if t > now - 60]
            wait = 0.0
            if len(last_minute) >= s.secondary_writes_per_minute:
                wait = last_minute[-s.secondary_writes_per_minute] + 60 - now
            if len(self._writes) >= s.secondary_writes_per_hour:
                wait = max(wait, self._writes[-s.secondary_writes_per_hour] + 3600 - now)
            if wait > 0:
                return max(1, math.ceil(wait))
            self._writes.append(now)
            return None

    def enter(self) -> bool:
        """Start a request; False when ``max_concurrency`` requests are already in flight."""
        with self._lock:
            if self.settings.enforce_secondary and self._in_flight >= self.settings.max_concurrency:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        """End a request started by a successful :meth:`enter`."""
        with self._lock:
            self._in_flight -= 1

    def reset(self) -> None:
        """Forget all usage: a fresh primary window and no recorded writes."""
        with self._lock:
            self._used = 0
            self._reset_at = self._clock.now() + self.settings.rate_limit_window
            self._writes.clear()
