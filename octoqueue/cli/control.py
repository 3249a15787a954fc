"""``octoqueue pause``, ``resume`` and ``history``: queue control and a job's attempts."""

from __future__ import annotations

import json

import click

from octoqueue.cli.jobs import open_existing_queue, prefix_option, store_option
from octoqueue.history import Attempt
from octoqueue.pauses import Pauses

_label_option = click.option(
    "--label",
    help="Only the jobs carrying this label (a named queue q: queue:q); without it, the whole queue.",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="The pause state as JSON.")


def _say(pauses: Pauses, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(pauses.as_dict()))
        return
    if not pauses.any:
        click.echo("nothing is paused")
        return
    if pauses.queue is not None:
        click.echo(f"the whole queue is paused (since {pauses.queue})")
    for name, since in sorted(pauses.labels.items()):
        click.echo(f"label {name} is paused (since {since})")


@click.command()
@_label_option
@_json_option
@store_option
@prefix_option
def pause(label: str | None, as_json: bool, store_url: str, label_prefix: str) -> None:
    """Stop workers claiming jobs (of the whole queue, or carrying --label); enqueues are still taken and jobs
    in hand finish. Workers see it within 5 s. Prints what is paused."""
    with open_existing_queue(store_url, label_prefix) as queue:
        _say(queue.pause(label), as_json)


@click.command()
@_label_option
@_json_option
@store_option
@prefix_option
def resume(label: str | None, as_json: bool, store_url: str, label_prefix: str) -> None:
    """Let workers claim again: the whole queue (label pauses stay), or the jobs carrying --label. Prints what is
    still paused."""
    with open_existing_queue(store_url, label_prefix) as queue:
        _say(queue.resume(label), as_json)


@click.command()
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per attempt.")
@store_option
@prefix_option
def history(job_id: int, as_json: bool, store_url: str, label_prefix: str) -> None:
    """Print every attempt of a job: worker, start, end, duration, outcome and error."""
    with open_existing_queue(store_url, label_prefix) as queue:
        attempts = queue.history(job_id)
    if as_json:
        click.echo(json.dumps([_attempt_dict(a) for a in attempts], ensure_ascii=False))
        return
    if not attempts:
        click.echo(f"job {job_id} has not run yet")
    for attempt in attempts:
        error = f": {attempt.error.strip().splitlines()[0]}" if attempt.error and attempt.error.strip() else ""
        click.echo(attempt.line() + error)


def _attempt_dict(attempt: Attempt) -> dict[str, object]:
    return {**attempt.model_dump(mode="json"), "duration": attempt.duration}


__all__ = ["history", "pause", "resume"]
