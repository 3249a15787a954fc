"""Prometheus metrics of finished jobs, shared by the server (jobs finished through its worker API or by its
in-process worker) and ``octoqueue work --metrics-port``, so that both export the same names.

``octoqueue_jobs_completed_total{queue}``, ``octoqueue_jobs_failed_total{queue,outcome}`` (outcome ``retry`` or
``failed``) and the histogram ``octoqueue_job_duration_seconds{queue,outcome}`` of the time handlers ran (in-process
workers only: the worker API does not know when a remote handler started). ``queue`` is the job's worker-API queue
(its ``queue:<name>`` label), empty for jobs outside named queues. No ``*_created`` series are exported.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.process_collector import ProcessCollector

from octoqueue.job import Job
from octoqueue.states import QUEUE_LABEL_PREFIX
from octoqueue.worker import JobReport

disable_created_metrics()  # the *_created series only repeat each counter's name and confuse dashboards

#: Handler durations, seconds.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


def queue_of(job: Job) -> str:
    """The worker-API queue a job belongs to, "" for none."""
    return next((label[len(QUEUE_LABEL_PREFIX) :] for label in job.labels if label.startswith(QUEUE_LABEL_PREFIX)), "")


class JobMetrics:
    """The finished-job counters and the handler-duration histogram, in ``registry`` (with the process's CPU,
    memory and file-descriptor gauges, ``process_*``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.completions = Counter(
            "octoqueue_jobs_completed",
            "Jobs completed (through the worker API or by an in-process worker).",
            ["queue"],
            registry=registry,
        )
        self.failures = Counter(
            "octoqueue_jobs_failed",
            "Failed attempts, by what happened next (retry or failed).",
            ["queue", "outcome"],
            registry=registry,
        )
        self.durations = Histogram(
            "octoqueue_job_duration_seconds",
            "Time a handler of an in-process worker ran, by outcome.",
            ["queue", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        ProcessCollector(registry=registry)

    def observe(self, job: Job, report: JobReport) -> None:
        """Count one job a worker of this process finished (a :class:`~octoqueue.worker.Worker` ``on_report``)."""
        queue = queue_of(job)
        outcome = {"pending": "retry"}.get(report.status, report.status)
        if report.status == "completed":
            self.completions.labels(queue).inc()
        elif outcome in ("retry", "failed"):
            self.failures.labels(queue, outcome).inc()
        self.durations.labels(queue, outcome).observe(report.seconds)


__all__ = ["DURATION_BUCKETS", "JobMetrics", "queue_of"]
