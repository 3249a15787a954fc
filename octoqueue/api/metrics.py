"""Prometheus metrics, one registry per application (two apps in one process never share counters).

Job counts by state and GitHub's remaining rate-limit budget are read from the store when ``/metrics`` is
scraped; counters and histograms are updated as requests are served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from octoqueue.queue import Queue
from octoqueue.states import JobState

log = logging.getLogger("octoqueue.api")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The server's metrics. ``queue_source`` returns the running queue (None before startup)."""

    def __init__(self, queue_source: Callable[[], Queue | None]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Histogram(
            "octoqueue_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["method", "route", "status"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.claim_wait = Histogram(
            "octoqueue_claim_duration_seconds", "Time a claim request took, long-poll wait included.",
            ["queue", "outcome"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.created = Counter("octoqueue_jobs_created", "Jobs created through the API.", ["source"], registry=r)
        self.claims = Counter("octoqueue_jobs_claimed", "Jobs handed to workers by the API.", ["queue"], registry=r)
        self.completions = Counter("octoqueue_jobs_completed", "Jobs completed through the API.", ["queue"], registry=r)
        self.failures = Counter(
            "octoqueue_jobs_failed", "Job failures reported through the API, by what happened next.",
            ["queue", "outcome"], registry=r,
        )  # fmt: skip
        self.stale = Counter(
            "octoqueue_stale_results", "Completions or failures refused by fencing (409).", ["queue"], registry=r
        )
        self.recovered = Counter(
            "octoqueue_leases_recovered", "Jobs whose lease expired and were taken back.", registry=r
        )
        self.webhooks = Counter(
            "octoqueue_webhook_deliveries", "GitHub webhook deliveries, by event and outcome.",
            ["event", "outcome"], registry=r,
        )  # fmt: skip
        r.register(_StoreCollector(queue_source))


class _StoreCollector(Collector):
    def __init__(self, queue_source: Callable[[], Queue | None]) -> None:
        self._queue_source = queue_source

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
        try:
            counts = queue.counts()
        except Exception as exc:
            log.warning("metrics: could not count jobs: %s", exc)
            up.add_metric([], 0)
        else:
            for state in JobState:
                jobs.add_metric([state.value], counts.get(state, 0))
            up.add_metric([], 1)
            yield jobs
        yield up
        budget = getattr(queue.store, "rate_limit", None)
        if budget is not None:
            remaining, limit, reset = _rate_limit_families()
            values = [_field(budget, "remaining"), _field(budget, "limit"), _field(budget, "reset")]
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


def _field(budget: Any, name: str) -> float | None:
    value = budget.get(name) if isinstance(budget, dict) else getattr(budget, name, None)
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(time.perf_counter() - started)


__all__ = ["Metrics", "RequestMetricsMiddleware"]
