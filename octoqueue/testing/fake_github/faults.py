"""Injected faults: latency, server errors and GitHub's unkinder habits, drawn from a seeded random generator."""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, fields
from typing import Any, Literal

from octoqueue.testing.fake_github.errors import GitHubError

_SERVER_ERRORS = {500: "Server Error", 502: "Server Error", 503: "Service Unavailable"}

#: When a transient ref failure strikes: before the ref is created, or after (the ref exists all the same).
RefFailure = Literal["before", "after"]


@dataclass
class FaultSettings:
    """Faults in force; change them at run time through ``FakeGitHub.set_faults`` or ``PATCH /_fake/faults``.

    ``error_rate`` fails a request *before* it does any work, so retrying it is always safe.
    ``error_after_rate`` fails a write *after* it happened — the nasty case where a client sees a 5xx for a
    change that was made, and a blind retry makes it twice.
    ``read_lag`` (seconds, on the emulator's clock) serves ``GET`` of an issue, issue listings and comment
    listings from a replica that shows the state as it was that long ago, as GitHub's read replicas can.
    ``ref_failure_rate`` answers that fraction of ``POST /git/refs`` with 422 "Reference update failed", half
    of them after the ref was created.
    ``push_access=False`` makes the token's user one without push access: GitHub then silently drops
    ``labels`` and ``assignees`` from issue creates and edits (and still answers 201/200).
    """

    latency: float = 0.0
    error_rate: float = 0.0
    error_after_rate: float = 0.0
    read_lag: float = 0.0
    ref_failure_rate: float = 0.0
    push_access: bool = True

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (field name → value), checked first so a bad one changes nothing."""
        kinds = {f.name: f.type for f in fields(self)}
        for key, value in changes.items():
            if key not in kinds:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(kinds)}")
            if kinds[key] == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key} must be a number ≥ 0")
            elif key.endswith("_rate") and value > 1:
                raise ValueError(f"{key} is a fraction between 0 and 1")
        for key, value in changes.items():
            setattr(self, key, value)


class Faults:
    """Decides, per request, whether to fail it and how long to delay it."""

    def __init__(self, settings: FaultSettings, seed: int = 0) -> None:
        self.settings = settings
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def _hit(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def _draw(self, rate: float) -> GitHubError | None:
        if not self._hit(rate):
            return None
        with self._lock:
            status = self._rng.choice(sorted(_SERVER_ERRORS))
        return GitHubError(status, _SERVER_ERRORS[status], documentation_url="https://docs.github.com/rest")

    def before(self) -> GitHubError | None:
        """A 5xx to answer instead of doing the work, or None."""
        return self._draw(self.settings.error_rate)

    def after(self) -> GitHubError | None:
        """A 5xx to answer although the write was done, or None."""
        return self._draw(self.settings.error_after_rate)

    def ref_failure(self) -> RefFailure | None:
        """Whether this ref creation answers 422 "Reference update failed", and if so before or after it."""
        if not self._hit(self.settings.ref_failure_rate):
            return None
        return "after" if self._hit(0.5) else "before"

    async def pause(self) -> None:
        """Spend the configured latency without blocking the event loop, so concurrent requests overlap."""
        await asyncio.sleep(self.settings.latency)
