"""``octoqueue info [--watch]``: the queue at a glance, refreshed in place with rich."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from io import StringIO
from typing import TYPE_CHECKING

import click

from octoqueue.cli.jobs import open_existing_queue, prefix_option, store_option
from octoqueue.overview import FAILURES_SHOWN, QUERIES_PER_SNAPSHOT, Rates, RateView, Snapshot
from octoqueue.registry import LIVE_FOR
from octoqueue.states import JobState

if TYPE_CHECKING:
    from rich.console import RenderableType

    from octoqueue.stores.base import Store

#: Longest error text shown in a row of the failures table.
ERROR_SHOWN = 80


@click.command()
@click.option("--watch", is_flag=True, help="Refresh in place until Ctrl-C; throughput shows from the second frame.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@click.option(
    "--window",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds of history the throughput and failure rate are measured over.",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON object (with --watch, one a line each refresh).")
@store_option
@prefix_option
def info(watch: bool, interval: float, window: float, as_json: bool, store_url: str, label_prefix: str) -> None:
    """Show the queue: jobs per state, the oldest pending job's age, pending and processing jobs per label
    (queue:<name> included) and per type, the live workers (registered in the last 2 minutes, idle ones too, or
    holding jobs), the latest failures, and with --watch the throughput and failure rate. Each refresh costs the
    store 5 calls (count, the oldest 100 pending jobs, up to 100 processing jobs, latest failures, the workers
    setting); with more jobs than that the per-label counts cover the jobs read."""
    rates = Rates(window=window)
    with open_existing_queue(store_url, label_prefix) as queue:
        if not watch:
            snapshot = Snapshot.take(queue.store)
            if as_json:
                click.echo(json.dumps(snapshot.as_dict()))
            else:
                from rich.console import Console

                Console(highlight=False).print(render(snapshot, None), crop=False)
            return
        stop = threading.Event()
        try:
            if as_json:
                while True:
                    snapshot = Snapshot.take(queue.store)
                    click.echo(json.dumps(snapshot.as_dict(rates.add(snapshot))))
                    stop.wait(interval)
            _watch(queue.store, rates, interval, stop)
        except KeyboardInterrupt:
            return


def _watch(store: Store, rates: Rates, interval: float, stop: threading.Event) -> None:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while not stop.is_set():
            snapshot = Snapshot.take(store)
            live.update(render(snapshot, rates.add(snapshot), watching=True), refresh=True)
            stop.wait(interval)


def frame_text(snapshot: Snapshot, rates: RateView | None, *, width: int = 100, watching: bool = False) -> str:
    """One frame as plain text (what a test compares)."""
    from rich.console import Console

    out = StringIO()
    Console(file=out, width=width, color_system=None, force_terminal=False, highlight=False).print(
        render(snapshot, rates, watching=watching)
    )
    return out.getvalue()


def render(snapshot: Snapshot, rates: RateView | None, *, watching: bool = False) -> RenderableType:
    """The frame: a header, the counts, throughput, workers and the latest failures."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now = snapshot.taken_at
    header = Text(
        f"octoqueue · {snapshot.store_url} · {now.strftime('%Y-%m-%d %H:%M:%S')} UTC",
        style="bold",
        no_wrap=True,
        overflow="ignore",
    )

    counts = Table(title="Jobs", title_justify="left", box=None, pad_edge=False)
    counts.add_column("state")
    counts.add_column("jobs", justify="right")
    counts.add_column("")
    for state in JobState:
        note = ""
        if state is JobState.PENDING and snapshot.oldest_pending is not None:
            age = snapshot.oldest_pending_age or timedelta(0)
            note = f"oldest waits {duration(age)} (job {snapshot.oldest_pending.id})"
        counts.add_row(state.value, f"{snapshot.counts[state]:,}", note)

    if rates is not None:
        failure = "-" if rates.failure_rate is None else f"{rates.failure_rate:.1%}"
        pace = (
            f"Throughput over the last {duration(timedelta(seconds=rates.seconds))}: "
            f"{rates.completed_per_second:.1f} completed/s, {rates.failed_per_second:.1f} failed/s "
            f"(failure rate {failure})"
        )
    else:
        pace = "Throughput: measuring…" if watching else "Throughput: needs two looks (octoqueue info --watch)"

    breakdown = Table(title="By label and type", title_justify="left", box=None, pad_edge=False)
    for column, justify in (("by", "left"), ("name", "left"), ("pending", "right"), ("processing", "right")):
        breakdown.add_column(column, justify=justify)  # type: ignore[arg-type]
    for tally in snapshot.breakdown():
        breakdown.add_row(tally.kind, tally.name, f"{tally.pending:,}", f"{tally.processing:,}")

    workers = snapshot.workers()
    held = Table(title=f"Workers: {len(workers)}", title_justify="left", box=None, pad_edge=False)
    for column in ("worker", "host", "jobs in hand", "last seen"):
        held.add_column(column)
    for worker in workers:
        shown = ", ".join(str(i) for i in worker.job_ids[:8]) + (" …" if len(worker.job_ids) > 8 else "")
        held.add_row(worker.name, worker.host, shown, f"{duration(now - worker.last_seen)} ago")

    failures = Table(title=f"Latest failures (up to {FAILURES_SHOWN})", title_justify="left", box=None, pad_edge=False)
    for column in ("job", "failed", "title", "error"):
        failures.add_column(column)
    for job in snapshot.recent_failures:
        error = (job.last_error or "").strip().splitlines()[0] if job.last_error else ""
        if len(error) > ERROR_SHOWN:
            error = error[: ERROR_SHOWN - 1] + "…"
        failures.add_row(str(job.id), f"{duration(now - job.updated_at)} ago", job.title, error)

    parts: list[RenderableType] = [header, Text(""), counts, Text(""), Text(pace)]
    if snapshot.pauses.any:
        parts.append(Text(paused_line(snapshot), style="bold yellow"))
    if snapshot.budget is not None:
        parts.append(Text(github_line(snapshot)))
    parts += [Text(""), breakdown]
    if not snapshot.pending and not snapshot.processing:
        parts.append(Text("(none)", style="dim"))
    elif caveat := breakdown_note(snapshot):
        parts.append(Text(caveat, style="dim"))
    parts += [Text(""), held]
    if not workers:
        parts.append(
            Text(f"(none registered in the last {duration(timedelta(seconds=LIVE_FOR))} or holding jobs)", style="dim")
        )
    parts += [Text(""), failures]
    if not snapshot.recent_failures:
        parts.append(Text("(none)", style="dim"))
    if watching:
        parts += [Text(""), Text(f"{QUERIES_PER_SNAPSHOT} store calls a refresh · Ctrl-C to stop", style="dim")]
    return Group(*parts)


def paused_line(snapshot: Snapshot) -> str:
    """What is paused, e.g. "Paused: the whole queue (since 12:00:00); label images (since 12:05:00)"."""
    pauses = snapshot.pauses
    parts = [] if pauses.queue is None else [f"the whole queue (since {pauses.queue})"]
    parts += [f"label {name} (since {since})" for name, since in sorted(pauses.labels.items())]
    return "Paused (claims stopped, enqueues taken): " + "; ".join(parts)


def breakdown_note(snapshot: Snapshot) -> str | None:
    """Under the per-label and per-type table: what it counts when more jobs wait than a refresh reads."""
    if not snapshot.breakdown_sampled:
        return None
    return f"(counts the oldest {len(snapshot.pending):,} pending and {len(snapshot.processing):,} processing jobs)"


def github_line(snapshot: Snapshot) -> str:
    """The GitHub store's budget: requests left in the window, and what this look cost."""
    budget = snapshot.budget
    assert budget is not None
    left = "unknown" if budget.remaining is None else f"{budget.remaining:,}"
    of = "" if budget.limit is None else f" of {budget.limit:,}"
    reset = "" if budget.reset is None else f", resets in {duration(budget.reset - snapshot.taken_at)}"
    return (
        f"GitHub: {left}{of} requests left{reset}; this look cost {budget.requests} request(s), "
        f"{budget.not_modified} of them 304 (free)"
    )


def duration(span: timedelta) -> str:
    """``3 s``, ``4m 05s``, ``2h 03m``, ``3d 04h`` (negative spans, from clock skew, are 0 s)."""
    seconds = max(0, int(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


__all__ = ["breakdown_note", "duration", "frame_text", "github_line", "info", "render"]
