"""``octoqueue schedule ...``: define, inspect and fire cron schedules."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import click

from octoqueue.cli.jobs import _json_arg, open_queue, prefix_option, store_option
from octoqueue.schedules import Schedule, Scheduler


@click.group()
def schedule() -> None:
    """Cron schedules: jobs enqueued on a timetable, each tick once however many schedulers run.

    A scheduler fires them: `octoqueue schedule run`, or `--scheduler` on `octoqueue work` and `octoqueue serve`.
    """


def _line(found: Schedule, now: datetime) -> str:
    upcoming = found.next_run(now)
    if not found.enabled:
        state = "disabled"
    else:
        state = f"next {upcoming.isoformat(timespec='seconds')}" if upcoming else "ended (no date matches any more)"
    last = found.last_run.isoformat(timespec="seconds") if found.last_run else "never"
    job = f" (job {found.last_job_id})" if found.last_job_id is not None else ""
    return f"{found.id:<24} {found.cron:<16} {found.timezone:<16} {state}; last {last}{job}"


@schedule.command(name="add")
@click.argument("schedule_id")
@click.argument("cron")
@click.option("--data", default="null", show_default=True, help="JSON data of each job ('-' reads stdin).")
@click.option("--title", help="Title of its jobs (default: '<id> <tick time>').")
@click.option("--type", "job_type", help="Job type, which picks the handler.")
@click.option("--label", "labels", multiple=True, help="Additional label of its jobs (repeatable).")
@click.option("--priority", default="normal", show_default=True, help="0-4 or critical/high/normal/low/bulk.")
@click.option("--max-attempts", type=click.IntRange(min=1), help="Tries before a job is dead.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds a handler may run.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone CRON is read in.")
@click.option(
    "--catchup",
    type=click.IntRange(0, 100),
    default=0,
    show_default=True,
    help="After an outage, also fire this many missed ticks before the newest one.",
)
@click.option("--disabled", is_flag=True, help="Define it disabled.")
@store_option
@prefix_option
def add(
    schedule_id: str,
    cron: str,
    data: str,
    title: str | None,
    job_type: str | None,
    labels: tuple[str, ...],
    priority: str,
    max_attempts: int | None,
    timeout: float | None,
    timezone: str,
    catchup: int,
    disabled: bool,
    store_url: str,
    label_prefix: str,
) -> None:
    """Define (or redefine) schedule SCHEDULE_ID firing on CRON (e.g. '*/15 * * * *' or '@daily')."""
    with open_queue(store_url, label_prefix) as queue:
        made = queue.create_schedule(
            schedule_id,
            _json_arg(data, "--data"),
            cron,
            title=title,
            type=job_type,
            labels=labels,
            priority=priority,
            max_attempts=max_attempts,
            timeout=timeout,
            timezone=timezone,
            catchup=catchup,
            enabled=not disabled,
        )
        click.echo(_line(made, queue.store.now()))


@schedule.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@store_option
@prefix_option
def list_schedules(as_json: bool, store_url: str, label_prefix: str) -> None:
    """List schedules with their next and last run."""
    with open_queue(store_url, label_prefix) as queue:
        now = queue.store.now()
        for found in queue.list_schedules():
            click.echo(json.dumps(found.model_dump(mode="json")) if as_json else _line(found, now))


@schedule.command()
@click.argument("schedule_id")
@store_option
@prefix_option
def show(schedule_id: str, store_url: str, label_prefix: str) -> None:
    """Print a schedule as JSON, with its next run."""
    with open_queue(store_url, label_prefix) as queue:
        found = queue.get_schedule(schedule_id)
        out = found.model_dump(mode="json")
        upcoming = found.next_run(queue.store.now()) if found.enabled else None
        out["next_run"] = upcoming.isoformat() if upcoming else None
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))


@schedule.command()
@click.argument("schedule_id")
@store_option
@prefix_option
def enable(schedule_id: str, store_url: str, label_prefix: str) -> None:
    """Let a schedule fire again, from its next tick on."""
    with open_queue(store_url, label_prefix) as queue:
        click.echo(_line(queue.enable_schedule(schedule_id), queue.store.now()))


@schedule.command()
@click.argument("schedule_id")
@store_option
@prefix_option
def disable(schedule_id: str, store_url: str, label_prefix: str) -> None:
    """Stop a schedule firing (its definition stays)."""
    with open_queue(store_url, label_prefix) as queue:
        click.echo(_line(queue.disable_schedule(schedule_id), queue.store.now()))


@schedule.command()
@click.argument("schedule_id")
@store_option
@prefix_option
def delete(schedule_id: str, store_url: str, label_prefix: str) -> None:
    """Delete a schedule (jobs it made stay)."""
    with open_queue(store_url, label_prefix) as queue:
        queue.delete_schedule(schedule_id)
        click.echo(f"deleted {schedule_id}")


@schedule.command()
@click.argument("schedule_id")
@store_option
@prefix_option
def trigger(schedule_id: str, store_url: str, label_prefix: str) -> None:
    """Enqueue a schedule's job now, outside its timetable. Prints the job id."""
    with open_queue(store_url, label_prefix) as queue:
        click.echo(queue.trigger_schedule(schedule_id).id)


@schedule.command()
@click.option("--once", is_flag=True, help="Fire what is due now, then exit (e.g. from a cron or an Actions run).")
@click.option(
    "--longest-sleep",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Re-read the schedules at least this often (seconds).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@store_option
@prefix_option
def run(once: bool, longest_sleep: float, log_level: str, store_url: str, label_prefix: str) -> None:
    """Fire due schedules until SIGTERM/SIGINT (or once). Prints the id of each job it makes."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with open_queue(store_url, label_prefix) as queue:
        if once:
            for job in queue.run_schedules():
                click.echo(job.id)
            return
        scheduler = Scheduler(queue.schedules, longest_sleep=longest_sleep)
        try:
            scheduler.run()
        except KeyboardInterrupt:
            scheduler.stop()


def register(group: click.Group) -> None:
    group.add_command(schedule)


__all__ = ["register", "schedule"]
