"""``octoqueue mirror SRC DST``: copy a queue from one store to another (``--follow``: and keep it in step)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from octoqueue.cli.jobs import prefix_option
from octoqueue.job import Job
from octoqueue.mirror import Mirror, Selection, Tally
from octoqueue.states import JobState, LabelScheme
from octoqueue.stores import open_store

_AGO_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str | None, now: datetime) -> datetime | None:
    """``--since``: an ISO date or time (UTC unless it says), or an age such as ``30m``, ``2h``, ``7d``."""
    if not text:
        return None
    ago = _AGO_RE.match(text)
    if ago:
        return now - timedelta(seconds=float(ago.group(1)) * _UNITS[ago.group(2)])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither an ISO time nor an age like 2h", param_hint="--since") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _names(values: tuple[str, ...]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def parse_states(values: tuple[str, ...]) -> frozenset[JobState] | None:
    names = _names(values)
    if not names:
        return None
    known = {state.value for state in JobState}
    unknown = [name for name in names if name.lower() not in known]
    if unknown:
        raise click.BadParameter(f"unknown state {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return frozenset(JobState(name.lower()) for name in names)


class _JobsPerSecond(ProgressColumn):
    """Jobs per second, from the task's speed."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.1f} jobs/s")


@contextmanager
def _progress_bar(total: int, label: str) -> Iterator[Callable[[Job, str], None]]:
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _JobsPerSecond(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with bar:
        task = bar.add_task(label, total=total or None)

        def step(job: Job, outcome: str) -> None:
            if outcome == "waiting":
                bar.update(task, description=f"{label} (waiting out a rate limit at job {job.id})")
                return
            bar.update(task, description=label, advance=1)

        yield step


@click.command("mirror")
@click.argument("source")
@click.argument("target")
@click.option("--states", "states", multiple=True, help="Copy only jobs in these states (comma-separated or repeated).")
@click.option("--labels", "labels", multiple=True, help="Copy only jobs carrying all these labels (comma-separated).")
@click.option("--since", help="Copy only jobs changed since this ISO time or this long ago (30m, 2h, 7d).")
@click.option("--dry-run", is_flag=True, help="Say what would be copied; write nothing.")
@click.option("--follow", is_flag=True, help="After the copy, keep TARGET in step with SOURCE until interrupted.")
@click.option("--interval", type=float, default=2.0, help="Seconds between polls with --follow.")
@prefix_option
def mirror(
    source: str,
    target: str,
    states: tuple[str, ...],
    labels: tuple[str, ...],
    since: str | None,
    dry_run: bool,
    follow: bool,
    interval: float,
    label_prefix: str,
) -> None:
    """Copy the queue at SOURCE into TARGET (store URLs): every job with its number, title, data, labels, state,
    metadata, comments and times. Jobs already equal are skipped, so running it again changes nothing, and a run
    that was stopped (killed, rate-limited) resumes where it stopped. Writes to GitHub are paced under its limits.

    With --follow, TARGET then follows SOURCE; people's requests on TARGET's issues (the requeue label, /requeue,
    /retry or /cancel comments, reopening or closing the issue) are applied to SOURCE, which runs the job again.
    See docs/mirror.md.

    Example: octoqueue mirror postgresql://localhost/jobs github://acme/failures --follow --states failed
    """
    if dry_run and follow:
        raise click.UsageError("--dry-run and --follow do not go together")
    scheme = LabelScheme(label_prefix)
    src = open_store(source, labels=scheme)
    dst = open_store(target, labels=scheme)
    try:
        selection = Selection(
            states=parse_states(states), labels=tuple(_names(labels)), since=parse_since(since, src.now())
        )
        copier = Mirror(src, dst, selection=selection, dry_run=dry_run)
        label = f"{'checking' if dry_run else 'mirroring'} {src.url} -> {dst.url}"
        with _progress_bar(copier.expected_total(), label) as step:
            tally = copier.run(step)
        click.echo(tally.summary(dry_run))
        if follow:
            _follow(copier, interval)
    finally:
        src.close()
        dst.close()


def _follow(copier: Mirror, interval: float) -> None:
    from octoqueue.mirror_requests import TargetRequests

    requests = TargetRequests(copier)

    def report(tally: Tally) -> None:
        for line in tally.requests:
            click.echo(line)
        if tally.changed:
            click.echo(tally.summary())

    click.echo(f"following {copier.source.url} every {interval:g} s (Ctrl-C stops)")
    try:
        copier.follow(interval=interval, stop=lambda: False, on_pass=report, before_poll=requests.poll, full_pass=False)
    except KeyboardInterrupt:
        click.echo("stopped")


__all__ = ["mirror", "parse_since", "parse_states"]
