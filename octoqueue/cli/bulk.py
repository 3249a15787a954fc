"""``octoqueue enqueue -``: many jobs from JSON lines on stdin, every line checked before the first job is made."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

from octoqueue.errors import OctoqueueError
from octoqueue.queue import check_data_size

#: From this many jobs on, a terminal shows a progress bar.
PROGRESS_FROM = 200


def read_json_lines(stream: IO[str]) -> list[Any]:
    """The JSON values of ``stream``, one a line (blank lines skipped); a single JSON document spread over several
    lines is one value. Every value must be valid JSON that fits a job, else :class:`click.BadParameter` names the
    first bad line and nothing is returned."""
    text = stream.read()
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise click.BadParameter("stdin holds no JSON", param_hint="DATA")
    if len(lines) > 1:
        try:
            return [job_data(json.loads(text), "stdin")]
        except json.JSONDecodeError:
            pass  # not one document: JSON lines
    return [job_data(_parse(line, number), f"line {number}") for number, line in lines]


def _parse(line: str, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"line {number} is not valid JSON: {exc}; no job was enqueued", param_hint="DATA"
        ) from None


def job_data(value: Any, where: str) -> dict[str, Any]:
    """``value`` when it can be a job's data: a JSON object (as ``/create-job`` requires) that fits a job; else
    :class:`click.BadParameter` naming ``where``."""
    if not isinstance(value, dict):
        raise click.BadParameter(
            f"{where} is a JSON {_json_kind(value)}, not an object: a job's data is an object such as "
            '{"key": "value"}; no job was enqueued',
            param_hint="DATA",
        )
    try:
        check_data_size(value)
    except OctoqueueError as exc:
        raise click.BadParameter(f"{where}: {exc}; no job was enqueued", param_hint="DATA") from None
    return value


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


@contextmanager
def progress(total: int, what: str = "enqueueing") -> Iterator[Callable[[], None]]:
    """A ``step()`` to call once per item; a transient bar on stderr when it is a terminal and ``total`` is large."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    shown = console.is_terminal and total >= PROGRESS_FROM
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not shown,
    )
    with bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)


__all__ = ["PROGRESS_FROM", "job_data", "progress", "read_json_lines"]
