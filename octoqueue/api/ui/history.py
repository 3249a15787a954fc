"""What the dashboard's charts show: the queue's counts sampled over time, in this server's memory."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from octoqueue.states import JobState


@dataclass(frozen=True)
class Sample:
    at: float  # wall-clock seconds
    counts: dict[JobState, int]


class CountHistory:
    """Counts taken at most every ``every`` seconds (on demand: a page view or a live-update tick), the last
    ``keep`` of them. Serves many viewers with one store query per interval."""

    def __init__(self, read: Callable[[], dict[JobState, int]], *, every: float = 2.0, keep: int = 1800) -> None:
        self._read = read
        self.every = every
        self.samples: deque[Sample] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def latest(self) -> Sample:
        """The newest sample, taken now when the last one is older than ``every``."""
        with self._lock:
            if self.samples and time.time() - self.samples[-1].at < self.every:
                return self.samples[-1]
            sample = Sample(time.time(), dict(self._read()))
            self.samples.append(sample)
            return sample

    def series(self, state: JobState, *, window: float = 1800.0) -> list[tuple[float, int]]:
        """(time, count) of ``state`` over the last ``window`` seconds."""
        since = time.time() - window
        return [(s.at, s.counts.get(state, 0)) for s in list(self.samples) if s.at >= since]

    def per_minute(self, state: JobState, *, window: float = 300.0) -> float | None:
        """How many jobs reached ``state`` per minute over the last ``window`` seconds (None: too few samples)."""
        points = self.series(state, window=window)
        if len(points) < 2 or points[-1][0] - points[0][0] < 1:
            return None
        gained = max(0, points[-1][1] - points[0][1])
        return gained * 60.0 / (points[-1][0] - points[0][0])


def sparkline(points: list[tuple[float, int]], *, width: int = 240, height: int = 48) -> str:
    """An SVG ``points`` attribute for a polyline of ``points`` scaled into width x height."""
    if len(points) < 2:
        return ""
    t0, t1 = points[0][0], points[-1][0]
    top = max(1, max(v for _, v in points))
    span = max(t1 - t0, 1e-9)
    return " ".join(f"{(t - t0) / span * width:.1f},{height - v / top * (height - 2) - 1:.1f}" for t, v in points)
