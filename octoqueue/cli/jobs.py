"""Job commands: enqueue, list, status, show, complete, fail, requeue, cancel, work, clear."""

from __future__ import annotations

import json
import logging
import sys
from collections import deque
from collections.abc import Callable, Collection
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import click

from octoqueue.errors import AccessDenied, ConfigurationError
from octoqueue.handlers import CommandHandler, load_handler
from octoqueue.job import Job, Page
from octoqueue.logs import LOG_FORMATS, configure_logging
from octoqueue.queue import Queue
from octoqueue.retry import DEFAULT_MAX_ATTEMPTS, RetryPolicy
from octoqueue.states import JobState, LabelScheme, Priority
from octoqueue.stores import DEFAULT_STORE_URL, open_store

if TYPE_CHECKING:
    from octoqueue.stores.base import Store
    from octoqueue.worker import JobReport

#: ``work --strict``'s exit status when a job did not complete (1 is for errors).
FAILURES_EXIT_STATUS = 2

store_option = click.option(
    "--store",
    "store_url",
    envvar="OCTOQUEUE_STORE",
    default=DEFAULT_STORE_URL,
    show_default=True,
    show_envvar=True,
    help="Where jobs live: sqlite:///file.db, memory://, github://owner/repo, s3://bucket/prefix, "
    "postgresql://user@host/db.",
)
prefix_option = click.option(
    "--label-prefix",
    envvar="OCTOQUEUE_LABEL_PREFIX",
    default="",
    show_envvar=True,
    help="Prefix of the status labels (e.g. 'oq-' makes 'oq-pending').",
)


def open_queue(store_url: str, label_prefix: str = "", **options: Any) -> Queue:
    store = open_store(store_url, labels=LabelScheme(label_prefix))
    return Queue(store, **options)


def open_existing_queue(store_url: str, label_prefix: str = "") -> Queue:
    """The queue for a command that works on jobs already there: a SQLite file that does not exist is an error
    naming the file looked for (a relative path is relative to the working folder), not a new empty queue."""
    parts = urlsplit(store_url)
    if parts.scheme.lower() == "sqlite":
        name = unquote(parts.netloc + parts.path).removeprefix("/")  # as SQLiteStore.from_url reads it
        if name and name != ":memory:" and not Path(name).exists():
            raise ConfigurationError(
                f"no queue at {Path(name).resolve()} (store {store_url}): give --store or OCTOQUEUE_STORE"
            )
    return open_queue(store_url, label_prefix)


def _json_arg(text: str, what: str) -> Any:
    if text == "-":
        text = sys.stdin.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc}") from None


def _label_filters(ctx: click.Context, param: click.Parameter, labels: tuple[str, ...]) -> tuple[str, ...]:
    """``--label`` filters: a blank one would match no job (enqueue refuses blank labels), so it is a mistake."""
    if any(not label.strip() for label in labels):
        raise click.BadParameter("a label cannot be blank", ctx=ctx, param=param)
    return labels


#: The header of ``list``'s lines, in their columns.
LIST_HEADER = f"{'ID':>6}  {'STATUS':<10}  {'P':<2}  {'CREATED (UTC)':<19}  TITLE  [LABELS]"


def _job_line(job: Job) -> str:
    when = job.created_at.strftime("%Y-%m-%d %H:%M:%S")
    labels = ",".join(job.labels)
    return f"{job.id:>6}  {job.status or '-':<10}  p{job.priority}  {when}  {job.title}" + (
        f"  [{labels}]" if labels else ""
    )


def _dump(job: Job) -> dict[str, Any]:
    return job.model_dump(mode="json")


#: Jobs a store call reads while ``list --newest-first`` pages to the end of a listing.
NEWEST_FIRST_PAGE = 1000


def newest_jobs(store: Store, *, states: Collection[str], labels: Collection[str], limit: int) -> list[Job]:
    """The newest ``limit`` jobs matching the filters, newest first. The Store contract lists oldest first only, so
    this follows the whole listing (a call per :data:`NEWEST_FIRST_PAGE` jobs) holding the last ``limit`` jobs."""
    wanted = [JobState(s) for s in states] or None
    last = deque(store.iter_jobs(states=wanted, labels=labels, limit=NEWEST_FIRST_PAGE), maxlen=limit)
    return list(reversed(last))


@click.command()
@click.argument("data")
@click.option("--title", help="Issue title (default: 'Job <time>').")
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="Additional label (repeatable); not a status label, octoqueue-settings, archived, requeue or "
    "queue:... in any letter case.",
)
@click.option("--priority", default="normal", show_default=True, help="0-4 or critical/high/normal/low/bulk.")
@click.option("--delay", type=click.FloatRange(min=0), help="Seconds before the job may run.")
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_ATTEMPTS,
    show_default=True,
    help="Tries before the job is dead (failed and closed).",
)
@click.option("--type", "job_type", help="Job type, which picks the handler.")
@click.option("--idempotency-key", help="A second enqueue with this key returns the first job.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds a handler may run.")
@click.option(
    "--depends-on",
    "depends_on",
    multiple=True,
    type=click.IntRange(min=1),
    help="A job that must complete before this one runs (repeatable); not with --delay.",
)
@click.option(
    "--on-parent-failure",
    type=click.Choice(["fail", "cancel"]),
    default="fail",
    show_default=True,
    help="What the job does when a --depends-on job fails or is cancelled.",
)
@store_option
@prefix_option
def enqueue(
    data: str,
    title: str | None,
    labels: tuple[str, ...],
    priority: str,
    delay: float | None,
    max_attempts: int | None,
    job_type: str | None,
    idempotency_key: str | None,
    timeout: float | None,
    depends_on: tuple[int, ...],
    on_parent_failure: str,
    store_url: str,
    label_prefix: str,
) -> None:
    """Add a job. DATA is a JSON object; '-' reads JSON lines from stdin, a job a line, each checked before the first is
    made (a progress bar shows on a terminal for large inputs). Prints the job ids, one a line."""
    from octoqueue.cli.bulk import job_data, progress, read_json_lines

    values = read_json_lines(sys.stdin) if data == "-" else [job_data(_json_arg(data, "DATA"), "DATA")]
    if idempotency_key is not None and len(values) > 1:
        raise click.UsageError(f"--idempotency-key names one job, but stdin holds {len(values)}")
    level = Priority.parse(priority)
    with open_queue(store_url, label_prefix) as queue, progress(len(values)) as step:
        for value in values:
            job = queue.enqueue_job(
                value,
                title,
                labels,
                priority=level,
                delay=delay,
                max_attempts=max_attempts,
                type=job_type,
                idempotency_key=idempotency_key,
                timeout=timeout,
                depends_on=depends_on or None,
                on_parent_failure=on_parent_failure,
            )
            click.echo(job.id)
            step()


@click.command(name="list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in JobState]),
    help="Only jobs in this state (repeatable).",
)
@click.option(
    "--label", "labels", multiple=True, callback=_label_filters, help="Only jobs with this label (repeatable)."
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--cursor", help="Continue a listing (printed at its end).")
@click.option(
    "--newest-first",
    is_flag=True,
    help="The newest --limit jobs, newest first. Stores list oldest first, so this reads every matching "
    "job (a store call per 1,000; a GitHub request per 100) and keeps the last --limit.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@store_option
@prefix_option
def list_jobs(
    statuses: tuple[str, ...],
    labels: tuple[str, ...],
    limit: int,
    cursor: str | None,
    newest_first: bool,
    as_json: bool,
    store_url: str,
    label_prefix: str,
) -> None:
    """List jobs, oldest first (or --newest-first), under a header line (none says so on stderr, naming the
    store)."""
    if newest_first and cursor is not None:
        raise click.UsageError("--cursor continues an oldest-first listing; --newest-first takes no cursor")
    with open_existing_queue(store_url, label_prefix) as queue:
        if newest_first:
            page = Page(jobs=newest_jobs(queue.store, states=statuses, labels=labels, limit=limit))
        else:
            page = queue.list_jobs(states=statuses or None, labels=labels, cursor=cursor, limit=limit)
        if not page.jobs and not as_json:
            click.echo(f"no jobs{' match' if statuses or labels else ''} in {queue.store.url}", err=True)
        elif not as_json:
            click.echo(LIST_HEADER)
        for job in page.jobs:
            click.echo(json.dumps(_dump(job)) if as_json else _job_line(job))
        if page.cursor and not as_json:
            click.echo(f"(more: --cursor {page.cursor})")


@click.command()
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help='{"id": ..., "status": ...}.')
@store_option
@prefix_option
def status(job_id: int, as_json: bool, store_url: str, label_prefix: str) -> None:
    """Print a job's status label (exit 1 when there is no such job)."""
    with open_existing_queue(store_url, label_prefix) as queue:
        found = queue.get_job_status(job_id)
        if found is None:
            job = queue.get(job_id)  # raises JobNotFound for a missing job
            raise click.ClickException(f"job {job.id} has no status label")
        click.echo(json.dumps({"id": job_id, "status": found}) if as_json else found)


@click.command()
@click.argument("job_id", type=int)
@click.option("--comments/--no-comments", default=True, show_default=True)
@store_option
@prefix_option
def show(job_id: int, comments: bool, store_url: str, label_prefix: str) -> None:
    """Print a job as JSON, with its comments."""
    with open_existing_queue(store_url, label_prefix) as queue:
        out = _dump(queue.get(job_id))
        if comments:
            out["comment_list"] = [c.model_dump(mode="json") for c in queue.comments(job_id)]
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))


@click.command()
@click.argument("job_id", type=int)
@click.option("--comment", help="Comment to add.")
@click.option("--result", help="Result as JSON.")
@store_option
@prefix_option
def complete(job_id: int, comment: str | None, result: str | None, store_url: str, label_prefix: str) -> None:
    """Mark a job completed."""
    with open_existing_queue(store_url, label_prefix) as queue:
        value = _json_arg(result, "--result") if result is not None else None
        click.echo(queue.complete(job_id, comment, result=value).status)


@click.command()
@click.argument("job_id", type=int)
@click.option("--comment", help="Why it failed.")
@store_option
@prefix_option
def fail(job_id: int, comment: str | None, store_url: str, label_prefix: str) -> None:
    """Mark a job failed (closed)."""
    with open_existing_queue(store_url, label_prefix) as queue:
        click.echo(queue.fail(job_id, comment).status)


#: What a bulk verb did to a job.
_DONE = {"requeue": "requeued", "cancel": "cancelled"}


def _bulk(
    job_ids: tuple[int, ...],
    statuses: tuple[str, ...],
    labels: tuple[str, ...],
    dry_run: bool,
    one: Callable[[int], Job],
    many: Callable[..., list[Job]],
    verb: str,
) -> None:
    """Act on the given jobs, or on every job matching ``--status``/``--label``; one line per job."""
    if job_ids and (statuses or labels):
        raise click.UsageError("give job ids or --status/--label filters, not both")
    if not job_ids and not (statuses or labels):
        raise click.UsageError(f"give the job ids to {verb}, or --status/--label to {verb} every job matching")
    if len(job_ids) == 1:  # as before bulk existed: just the new status
        click.echo(one(job_ids[0]).status)
        return
    if job_ids:
        for job_id in job_ids:
            click.echo(f"{job_id}  {one(job_id).status}")
        return
    filters: dict[str, Any] = {"labels": labels, "dry_run": dry_run}
    if statuses:
        filters["states"] = statuses
    jobs = many(**filters)
    for job in jobs:
        click.echo(f"{job.id}  {'would be ' + _DONE[verb] if dry_run else job.status}")
    click.echo(f"{'would ' + verb if dry_run else _DONE[verb].capitalize()} {len(jobs)} job(s)", err=True)


@click.command()
@click.argument("job_ids", nargs=-1, type=int)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["completed", "failed", "cancelled"]),
    help="Requeue every job in this state (repeatable; with only --label: failed) ...",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    callback=_label_filters,
    help="... carrying this label (repeatable; all must match).",
)
@click.option("--dry-run", is_flag=True, help="List the jobs a filter matches; change nothing.")
@click.option("--comment", help="Comment to add.")
@store_option
@prefix_option
def requeue(
    job_ids: tuple[int, ...],
    statuses: tuple[str, ...],
    labels: tuple[str, ...],
    dry_run: bool,
    comment: str | None,
    store_url: str,
    label_prefix: str,
) -> None:
    """Put jobs back to pending, with a fresh attempt budget: JOB_IDS, or every job matching --status/--label
    (e.g. `octoqueue requeue --status failed --label images`)."""
    with open_existing_queue(store_url, label_prefix) as queue:
        one = partial(queue.requeue, comment=comment)
        _bulk(job_ids, statuses, labels, dry_run, one, partial(queue.requeue_where, comment=comment), "requeue")


@click.command()
@click.argument("job_ids", nargs=-1, type=int)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["pending", "processing"]),
    help="Cancel every job in this state (repeatable; with only --label: pending) ...",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    callback=_label_filters,
    help="... carrying this label (repeatable; all must match).",
)
@click.option("--dry-run", is_flag=True, help="List the jobs a filter matches; change nothing.")
@click.option("--comment", help="Comment to add.")
@store_option
@prefix_option
def cancel(
    job_ids: tuple[int, ...],
    statuses: tuple[str, ...],
    labels: tuple[str, ...],
    dry_run: bool,
    comment: str | None,
    store_url: str,
    label_prefix: str,
) -> None:
    """Cancel pending or processing jobs: JOB_IDS, or every job matching --status/--label."""
    with open_existing_queue(store_url, label_prefix) as queue:
        one = partial(queue.cancel, comment=comment)
        _bulk(job_ids, statuses, labels, dry_run, one, partial(queue.cancel_where, comment=comment), "cancel")


@click.command()
@click.option(
    "--older-than", type=float, default=7 * 86400, show_default=True, help="Seconds since the job last changed."
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["completed", "failed", "cancelled"]),
    help="Which finished states (default: all three).",
)
@click.option("--json", "as_json", is_flag=True, help='{"cleared": N, "states": [...], "older_than": seconds}.')
@store_option
@prefix_option
def clear(older_than: float, statuses: tuple[str, ...], as_json: bool, store_url: str, label_prefix: str) -> None:
    """Delete old finished jobs (archive them, on GitHub). Says how many."""
    with open_existing_queue(store_url, label_prefix) as queue:
        states = [JobState(s) for s in statuses] or [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]
        cleared = queue.clear(older_than, states)
    names = [s.value for s in states]
    if as_json:
        click.echo(json.dumps({"cleared": cleared, "states": names, "older_than": older_than}))
    else:
        click.echo(f"cleared {cleared} {'/'.join(names)} job(s) last changed over {older_than:g} s ago")


@click.command()
@click.option("--handler", "handler_spec", help="Python handler as module:function (called with the job data).")
@click.option("--command", "command", help="Shell command: job JSON on stdin, stdout is the result.")
@click.option("--once", is_flag=True, help="Process what is runnable now, then exit.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Exit after taking this many jobs.")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--prefetch",
    type=click.IntRange(min=1),
    help="Jobs each thread takes at once, runs in turn and completes together with taking its next ones "
    "(default: 16 where the store completes and claims in one call — SQLite, PostgreSQL, Redis — else 1). "
    "Use 1 for long jobs: a job waits behind those taken before it.",
)
@click.option(
    "--limit",
    "type_limits",
    multiple=True,
    metavar="TYPE=N",
    help="At most N jobs of TYPE at once in this worker; other types keep flowing (repeatable).",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0.1),
    default=300.0,
    show_default=True,
    help="Seconds a claim holds a job; renewed while the handler runs.",
)
@click.option("--timeout", type=click.FloatRange(min=0.001), help="Seconds a handler may run before it is stopped.")
@click.option(
    "--label", "labels", multiple=True, callback=_label_filters, help="Only jobs with this label (repeatable)."
)
@click.option("--job", "job_ids", multiple=True, type=int, help="Only this job (repeatable).")
@click.option(
    "--on-failure",
    type=click.Choice(["retry", "fail"]),
    default="retry",
    show_default=True,
    help="retry: back off and retry while attempts remain; fail: fail at once.",
)
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=1.0, show_default=True)
@click.option("--retry-initial", type=float, default=1.0, show_default=True, help="Backoff before retry 1 (s).")
@click.option("--retry-max", type=float, default=300.0, show_default=True, help="Longest backoff (s).")
@click.option(
    "--retry-strategy",
    type=click.Choice(["exponential", "linear", "constant"]),
    default="exponential",
    show_default=True,
)
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write what was processed to this file as JSON.",
)
@click.option(
    "--strict",
    is_flag=True,
    help=f"Exit with status {FAILURES_EXIT_STATUS} when a job did not complete (failed, left to retry, lost).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Failures are warnings: --log-level warning shows them alone.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics (jobs finished, handler durations, process) on this port (0: any free).",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address of the metrics endpoint.")
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(LOG_FORMATS),
    help="Log lines as text or as JSON objects (with job_id, attempt, seconds, outcome).",
)
@click.option(
    "--scheduler",
    is_flag=True,
    envvar="OCTOQUEUE_SCHEDULER",
    help="Also fire due cron schedules from this process (see `octoqueue schedule`).",
)
@store_option
@prefix_option
def work(
    handler_spec: str | None,
    command: str | None,
    once: bool,
    max_jobs: int | None,
    concurrency: int,
    prefetch: int | None,
    type_limits: tuple[str, ...],
    lease: float,
    timeout: float | None,
    labels: tuple[str, ...],
    job_ids: tuple[int, ...],
    on_failure: str,
    poll_interval: float,
    retry_initial: float,
    retry_max: float,
    retry_strategy: str,
    summary_json: Path | None,
    strict: bool,
    log_level: str,
    metrics_port: int | None,
    metrics_host: str,
    log_format: str,
    scheduler: bool,
    store_url: str,
    label_prefix: str,
) -> None:
    """Run a worker until SIGTERM/SIGINT (or --once / --max-jobs). Ends with a summary line on stderr: jobs
    processed, elapsed time, jobs/s."""
    from octoqueue.worker import Worker, parse_type_limits

    configure_logging(log_level, log_format)
    if bool(handler_spec) == bool(command):
        raise click.UsageError("give exactly one of --handler module:function or --command 'shell command'")
    handler = CommandHandler(command) if command else load_handler(str(handler_spec))
    policy = RetryPolicy(strategy=retry_strategy, initial=retry_initial, max_interval=retry_max)  # type: ignore[arg-type]
    on_report = _serve_metrics(metrics_host, metrics_port) if metrics_port is not None else None
    with open_queue(store_url, label_prefix, retry=policy, lease=lease) as queue:
        worker = Worker(
            queue,
            handler,
            concurrency=concurrency,
            prefetch=prefetch,
            concurrency_per_type=parse_type_limits(type_limits),
            lease=lease,
            timeout=timeout,
            labels=labels,
            ids=job_ids or None,
            on_failure=on_failure,  # type: ignore[arg-type]  # click.Choice gives a str of the two values
            poll_interval=poll_interval,
            on_report=on_report,
        )
        if scheduler:  # before the worker runs, so that --once also takes the jobs due now
            from octoqueue.schedules import Scheduler

            fire = Scheduler(queue.schedules)
            if once:
                fire.run_once()
            else:
                fire.start()
        try:
            stats = worker.run(once=once, max_jobs=max_jobs)
        except AccessDenied as exc:
            _write_summary(summary_json, {**worker.stats.as_dict(), "error": str(exc), "error_status": exc.status})
            raise
        finally:
            if scheduler:
                fire.stop()
    _write_summary(summary_json, stats.as_dict())
    if log_format == "text":  # in JSON, the worker's "stopped" record carries the summary
        click.echo(stats.summary(), err=True)
    if strict and not stats.all_succeeded:
        sys.exit(FAILURES_EXIT_STATUS)


def _serve_metrics(host: str, port: int) -> Callable[[Job, JobReport], None]:
    """Serve this worker's metrics over HTTP in a background thread; return what counts a finished job."""
    from prometheus_client import CollectorRegistry, start_http_server

    from octoqueue.jobmetrics import JobMetrics

    metrics = JobMetrics(CollectorRegistry())
    try:
        server, _ = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    logging.getLogger("octoqueue.worker").info(
        "metrics on http://%s:%d/metrics", host, server.server_port, extra={"metrics_port": server.server_port}
    )
    return metrics.observe


def _write_summary(path: Path | None, summary: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))


COMMANDS = [enqueue, list_jobs, status, show, complete, fail, requeue, cancel, clear, work]


__all__ = ["COMMANDS", "open_existing_queue", "open_queue"]
