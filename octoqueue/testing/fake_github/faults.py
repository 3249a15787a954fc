"""Injected faults: latency and server errors, drawn from a seeded random generator."""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass

from octoqueue.testing.fake_github.errors import GitHubError

_SERVER_ERRORS = {500: "Server Error", 502: "Server Error", 503: "Service Unavailable"}


@dataclass
class FaultSettings:
    """Faults in force; change them at run time through ``FakeGitHub.set_faults``.

    ``error_rate`` fails a request *before* it does any work, so retrying it is always safe.
    ``error_after_rate`` fails a write *after* it happened — the nasty case where a client sees a 5xx for a
    change that was made, and a blind retry makes it twice.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    error_after_rate: float = 0.0


class Faults:
    """Decides, per request, whether to fail it and how long to delay it."""

    def __init__(self, settings: FaultSettings, seed: int = 0) -> None:
        self.settings = settings
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def _draw(self, rate: float) -> GitHubError | None:
        if rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= rate:
                return None
            status = self._rng.choice(sorted(_SERVER_ERRORS))
        return GitHubError(status, _SERVER_ERRORS[status], documentation_url="https://docs.github.com/rest")

    def before(self) -> GitHubError | None:
        """A 5xx to answer instead of doing the work, or None."""
        return self._draw(self.settings.error_rate)

    def after(self) -> GitHubError | None:
        """A 5xx to answer although the write was done, or None."""
        return self._draw(self.settings.error_after_rate)

    async def pause(self) -> None:
        """Spend the configured latency without blocking the event loop, so concurrent requests overlap."""
        await asyncio.sleep(self.settings.latency)
