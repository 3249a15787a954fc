"""Prometheus metrics, one registry per application (two apps in one process never share counters).

Job counts by state and GitHub's remaining rate-limit budget are read from the store when ``/metrics`` is
scraped — at most once per ``cache_seconds`` (``OCTOQUEUE_METRICS_CACHE_SECONDS``), however many scrapers come,
since counting costs GitHub requests; counters and histograms are updated as requests are served.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from octoqueue.jobmetrics import JobMetrics
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.base import ReportsRateLimit

log = logging.getLogger("octoqueue.api")

#: The methods a request is labelled with; any other (a client may send any token as its method) is "other", so
#: made-up methods cannot grow /metrics without bound.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The server's metrics. ``queue_source`` returns the running queue (None before startup); the store's job
    counts are reused for ``cache_seconds``."""

    def __init__(
        self,
        queue_source: Callable[[], Queue | None],
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Histogram(
            "octoqueue_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.claim_wait = Histogram(
            "octoqueue_claim_duration_seconds",
            "Time a claim request took, long-poll wait included.",
            ["queue", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.created = Counter("octoqueue_jobs_created", "Jobs created through the API.", ["source"], registry=r)
        self.claims = Counter("octoqueue_jobs_claimed", "Jobs handed to workers by the API.", ["queue"], registry=r)
        self.jobs = JobMetrics(r)  # completions, failures, handler durations, process_* gauges
        self.completions = self.jobs.completions
        self.failures = self.jobs.failures
        self.stale = Counter(
            "octoqueue_stale_results", "Completions or failures refused by fencing (409).", ["queue"], registry=r
        )
        self.recovered = Counter(
            "octoqueue_leases_recovered", "Jobs whose lease expired and were taken back.", registry=r
        )
        self.webhooks = Counter(
            "octoqueue_webhook_deliveries",
            "GitHub webhook deliveries, by event and outcome.",
            ["event", "outcome"],
            registry=r,
        )
        r.register(_StoreCollector(queue_source, cache_seconds, clock))


class _StoreCollector(Collector):
    def __init__(
        self, queue_source: Callable[[], Queue | None], cache_seconds: float, clock: Callable[[], float]
    ) -> None:
        self._queue_source = queue_source
        self._cache_seconds = cache_seconds
        self._clock = clock
        # One scrape counts at a time; the others wait and take its answer (a storm costs one store round).
        self._lock = threading.Lock()
        self._counted: tuple[float, Queue, dict[JobState, int] | None] | None = None

    def _counts(self, queue: Queue) -> dict[JobState, int] | None:
        """The job counts by state (None when the store failed), read at most once per ``cache_seconds``."""
        with self._lock:
            cached = self._counted
            if cached is not None and cached[1] is queue and self._clock() - cached[0] < self._cache_seconds:
                return cached[2]
            try:
                counts: dict[JobState, int] | None = dict(queue.counts())
            except Exception as exc:
                log.warning("metrics: could not count jobs: %s", exc)
                counts = None
            self._counted = (self._clock(), queue, counts)
            return counts

    def describe(self) -> Iterator[Metric]:
        # Described without samples so registering never touches the store.
        yield GaugeMetricFamily("octoqueue_jobs", "Jobs in the store, by state.", labels=["state"])
        yield GaugeMetricFamily("octoqueue_store_up", "1 when the store answered the last scrape.")
        yield from _rate_limit_families()

    def collect(self) -> Iterator[Metric]:
        queue = self._queue_source()
        if queue is None:
            return
        jobs = GaugeMetricFamily("octoqueue_jobs", "Jobs in the store, by state.", labels=["state"])
        up = GaugeMetricFamily("octoqueue_store_up", "1 when the store answered the last scrape.")
        counts = self._counts(queue)
        if counts is None:
            up.add_metric([], 0)
        else:
            for state in JobState:
                jobs.add_metric([state.value], counts.get(state, 0))
            up.add_metric([], 1)
            yield jobs
        yield up
        if isinstance(queue.store, ReportsRateLimit):
            budget = queue.store.rate_limit
            remaining, limit, reset = _rate_limit_families()
            values = [budget.remaining, budget.limit, budget.reset.timestamp() if budget.reset is not None else None]
            for family, value in zip((remaining, limit, reset), values, strict=True):
                if value is not None:
                    family.add_metric([], value)
                    yield family


def _rate_limit_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily("octoqueue_github_rate_limit_remaining", "GitHub API requests left in this window."),
        GaugeMetricFamily("octoqueue_github_rate_limit_limit", "GitHub API requests allowed per window."),
        GaugeMetricFamily(
            "octoqueue_github_rate_limit_reset_timestamp_seconds", "When GitHub's rate-limit window resets."
        ),
    )


class RequestMetricsMiddleware:
    """Times every HTTP request, labelled by route template (not the raw path, to bound cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _KNOWN_METHODS else "other"
            self.metrics.requests.labels(method, template, str(status)).observe(time.perf_counter() - started)


__all__ = ["Metrics", "RequestMetricsMiddleware"]
