"""What a queue looks like now, read through the Store contract only (so every store can be watched).

A :class:`Snapshot` costs the store :data:`QUERIES_PER_SNAPSHOT` calls: ``count()``, the oldest
:data:`PENDING_SAMPLED` pending jobs (the first is the oldest pending; their labels and types give the pending counts
per label and type, exact when no more are pending), up to :data:`PROCESSING_SHOWN` processing jobs (their
``worker`` fields name the workers and the jobs they hold; with the pending ones, the per-label counts) and the latest
failures (``recently_changed``), the ``workers`` setting where workers register themselves
(:mod:`octoqueue.registry`: idle workers show too) and the ``paused`` setting (:mod:`octoqueue.pauses`). Throughput
is not stored anywhere: :class:`Rates` derives it from the finished counts of successive snapshots, so it needs two
of them (``octoqueue info --watch``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from octoqueue.job import Job, utcnow
from octoqueue.pauses import SETTING as PAUSES_SETTING
from octoqueue.pauses import Pauses
from octoqueue.registry import WORKERS_SETTING, WorkerRecord, live_workers
from octoqueue.states import JobState
from octoqueue.stores.base import Store

#: Store calls one snapshot makes.
QUERIES_PER_SNAPSHOT = 6
#: Processing jobs read per snapshot (their workers are the live workers shown).
PROCESSING_SHOWN = 100
#: Oldest pending jobs read per snapshot (one page of a GitHub listing): the per-label and per-type counts of
#: pending jobs are taken from them.
PENDING_SAMPLED = 100
#: Latest failures read per snapshot.
FAILURES_SHOWN = 5

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class WorkerView:
    """A live worker: its name (``host:pid:tag`` for octoqueue's workers), the jobs it holds, and its last sign of
    life (its record in the ``workers`` setting, or claiming or renewing a job it holds)."""

    name: str
    job_ids: tuple[int, ...]
    last_seen: datetime
    #: The host its record names; None for a worker seen only holding jobs (its name's first part is shown).
    registered_host: str | None = None

    @property
    def host(self) -> str:
        return self.registered_host or self.name.split(":", 1)[0]


@dataclass(frozen=True)
class Budget:
    """A GitHub store's rate limit as its latest response told it (no request is made to read it), and the HTTP
    requests the snapshot cost (``not_modified``: answered 304 from the ETag cache, which GitHub does not count)."""

    remaining: int | None
    limit: int | None
    reset: datetime | None
    requests: int
    not_modified: int


@dataclass(frozen=True)
class Tally:
    """Pending and processing jobs carrying one label (``kind`` "label") or of one type (``kind`` "type")."""

    kind: str
    name: str
    pending: int
    processing: int


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    store_url: str
    counts: dict[JobState, int]
    oldest_pending: Job | None
    processing: list[Job]
    recent_failures: list[Job]
    budget: Budget | None = None
    #: The oldest :data:`PENDING_SAMPLED` pending jobs (the per-label and per-type counts of pending jobs).
    pending: list[Job] = field(default_factory=list)
    #: The live records of the ``workers`` setting.
    registered: list[WorkerRecord] = field(default_factory=list)
    #: What is paused (the ``paused`` setting).
    pauses: Pauses = field(default_factory=Pauses)

    @classmethod
    def take(cls, store: Store, clock: Clock = utcnow) -> Snapshot:
        before = _request_stats(store)
        counts = store.count()
        pending = store.list_jobs(states=[JobState.PENDING], limit=PENDING_SAMPLED).jobs
        processing = store.list_jobs(states=[JobState.PROCESSING], limit=PROCESSING_SHOWN).jobs
        failures = store.recently_changed([JobState.FAILED], limit=FAILURES_SHOWN)
        registered = live_workers(store.get_setting(WORKERS_SETTING), store.now())
        pauses = Pauses.from_setting(store.get_setting(PAUSES_SETTING))
        return cls(
            taken_at=clock(),
            store_url=store.url,
            counts={state: counts.get(state, 0) for state in JobState},
            oldest_pending=pending[0] if pending else None,
            processing=processing,
            recent_failures=failures,
            budget=_budget(store, before),
            pending=pending,
            registered=registered,
            pauses=pauses,
        )

    @property
    def oldest_pending_age(self) -> timedelta | None:
        return None if self.oldest_pending is None else self.taken_at - self.oldest_pending.created_at

    @property
    def finished(self) -> tuple[int, int]:
        """(completed, failed) so far."""
        return self.counts[JobState.COMPLETED], self.counts[JobState.FAILED]

    def workers(self) -> list[WorkerView]:
        """Registered workers (idle ones too) and workers seen holding jobs; for a worker both, the jobs listed
        (fresher than its record) and the later sign of life."""
        held: dict[str, list[Job]] = {}
        for job in self.processing:
            held.setdefault(job.worker or "(unknown)", []).append(job)
        views = {
            name: WorkerView(name, tuple(sorted(j.id for j in jobs)), max(j.updated_at for j in jobs))
            for name, jobs in held.items()
        }
        listed_all = self.counts[JobState.PROCESSING] <= len(self.processing)
        for record in self.registered:
            seen = views.get(record.name)
            # A record is up to REGISTER_EVERY seconds old: the listing, when it holds every processing job, is newer.
            jobs = seen.job_ids if seen is not None else () if listed_all else record.job_ids
            views[record.name] = WorkerView(
                record.name,
                jobs,
                record.seen if seen is None else max(record.seen, seen.last_seen),
                record.host,
            )
        return sorted(views.values(), key=lambda w: w.name)

    def breakdown(self) -> list[Tally]:
        """Pending and processing jobs per label (``queue:<name>`` included) and per type, from the jobs read."""
        tallies: dict[tuple[str, str], dict[JobState, int]] = {}
        for state, jobs in ((JobState.PENDING, self.pending), (JobState.PROCESSING, self.processing)):
            for job in jobs:
                keys = [("label", label) for label in job.labels] + [("type", job.type or "(none)")]
                for key in keys:
                    counted = tallies.setdefault(key, {})
                    counted[state] = counted.get(state, 0) + 1
        return [
            Tally(kind, name, counted.get(JobState.PENDING, 0), counted.get(JobState.PROCESSING, 0))
            for (kind, name), counted in sorted(tallies.items())
        ]

    @property
    def breakdown_sampled(self) -> bool:
        """True when more jobs are pending or processing than were read, so the breakdown counts only those read."""
        return self.counts[JobState.PENDING] > len(self.pending) or self.counts[JobState.PROCESSING] > len(
            self.processing
        )

    def as_dict(self, rates: RateView | None = None) -> dict[str, Any]:
        age = self.oldest_pending_age
        tallies = self.breakdown()
        return {
            "taken_at": self.taken_at.isoformat(),
            "store": self.store_url,
            "counts": {state.value: n for state, n in self.counts.items()},
            "oldest_pending": None if self.oldest_pending is None else self.oldest_pending.id,
            "oldest_pending_age_seconds": None if age is None else round(age.total_seconds(), 3),
            "paused": self.pauses.as_dict(),
            "workers": [
                {"name": w.name, "host": w.host, "jobs": list(w.job_ids), "last_seen": w.last_seen.isoformat()}
                for w in self.workers()
            ],
            "breakdown": {
                "counts_only_jobs_read": self.breakdown_sampled,
                "pending_read": len(self.pending),
                "processing_read": len(self.processing),
                **{
                    f"by_{kind}": {
                        t.name: {"pending": t.pending, "processing": t.processing} for t in tallies if t.kind == kind
                    }
                    for kind in ("label", "type")
                },
            },
            "recent_failures": [
                {"id": j.id, "title": j.title, "failed_at": j.updated_at.isoformat(), "error": j.last_error}
                for j in self.recent_failures
            ],
            "rates": None if rates is None else rates.as_dict(),
            "github": None
            if self.budget is None
            else {
                "rate_limit_remaining": self.budget.remaining,
                "rate_limit": self.budget.limit,
                "rate_limit_reset": None if self.budget.reset is None else self.budget.reset.isoformat(),
                "requests": self.budget.requests,
                "not_modified": self.budget.not_modified,
            },
        }


def _request_stats(store: Store) -> dict[str, int] | None:
    # Optional store extras, not part of the Store contract: only a GitHub store has them.
    stats = getattr(store, "request_stats", None)
    return dict(stats) if isinstance(stats, dict) else None


def _budget(store: Store, before: dict[str, int] | None) -> Budget | None:
    after = _request_stats(store)
    limit = getattr(store, "rate_limit", None)
    if after is None or before is None or limit is None:
        return None
    return Budget(
        remaining=getattr(limit, "remaining", None),
        limit=getattr(limit, "limit", None),
        reset=getattr(limit, "reset", None),
        requests=after.get("requests", 0) - before.get("requests", 0),
        not_modified=after.get("not_modified", 0) - before.get("not_modified", 0),
    )


@dataclass(frozen=True)
class RateView:
    """Jobs finished per second over the last ``seconds`` (None before two snapshots)."""

    seconds: float
    completed_per_second: float
    failed_per_second: float

    @property
    def failure_rate(self) -> float | None:
        """Failed / finished in the window; None when nothing finished."""
        total = self.completed_per_second + self.failed_per_second
        return None if total == 0 else self.failed_per_second / total

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_seconds": round(self.seconds, 3),
            "completed_per_second": round(self.completed_per_second, 3),
            "failed_per_second": round(self.failed_per_second, 3),
            "failure_rate": None if self.failure_rate is None else round(self.failure_rate, 4),
        }


@dataclass
class Rates:
    """Throughput from the finished counts of the snapshots of the last ``window`` seconds."""

    window: float = 300.0
    _history: deque[tuple[datetime, tuple[int, int]]] = field(default_factory=deque)

    def add(self, snapshot: Snapshot) -> RateView | None:
        self._history.append((snapshot.taken_at, snapshot.finished))
        horizon = snapshot.taken_at - timedelta(seconds=self.window)
        while len(self._history) > 2 and self._history[1][0] <= horizon:
            self._history.popleft()
        (first_at, (done0, failed0)), (last_at, (done1, failed1)) = self._history[0], self._history[-1]
        span = (last_at - first_at).total_seconds()
        if span <= 0:
            return None
        # Purging finished jobs lowers the counts: a drop is not negative work.
        return RateView(span, max(0, done1 - done0) / span, max(0, failed1 - failed0) / span)


__all__ = [
    "FAILURES_SHOWN",
    "PENDING_SAMPLED",
    "PROCESSING_SHOWN",
    "QUERIES_PER_SNAPSHOT",
    "Budget",
    "RateView",
    "Rates",
    "Snapshot",
    "Tally",
    "WorkerView",
]
