"""Backoff between attempts."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Strategy = Literal["exponential", "linear", "constant"]

#: Tries a job gets when neither its enqueue nor its Queue says otherwise: a RetryableError (or, with the worker's
#: default ``on_failure="retry"``, any error) is retried twice with backoff, as GigQ, Starq and Celery's autoretry do.
DEFAULT_MAX_ATTEMPTS = 3


class RetryPolicy(BaseModel):
    """How long a failed job waits before its next attempt.

    ``exponential``: initial * multiplier**(n-1); ``linear``: initial * n; ``constant``: initial; each capped at
    ``max_interval`` and then spread by +/- ``jitter`` (a fraction) so that retries do not arrive in lockstep.
    """

    model_config = ConfigDict(frozen=True)

    strategy: Strategy = "exponential"
    initial: float = Field(default=1.0, ge=0)
    max_interval: float = Field(default=300.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.1, ge=0, le=1)

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        n = max(1, retry)
        if self.strategy == "exponential":
            base = self.initial * self.multiplier ** (n - 1)
        elif self.strategy == "linear":
            base = self.initial * n
        else:
            base = self.initial
        base = min(base, self.max_interval)
        if self.jitter:
            spread = base * self.jitter
            base += (rng or random).uniform(-spread, spread)
        return max(0.0, min(base, self.max_interval))
