"""Workflows (GigQ's model): a DAG of jobs built in Python, checked for cycles, then submitted in one go.

Each step is a job enqueued with ``depends_on`` its parents' ids (see :mod:`octoqueue.dependencies`), so a
workflow runs on every store with any worker. Every job of a workflow carries the label ``workflow:<id>``, which
is how :func:`show` finds them again (on GitHub: filter the issues by that label).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from octoqueue.dependencies import is_waiting

if TYPE_CHECKING:
    from octoqueue.job import Job
    from octoqueue.queue import Queue

#: The label every job of a workflow carries: ``workflow:<id>``.
LABEL_PREFIX = "workflow:"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")


class WorkflowCycle(ValueError):
    """The steps of a workflow depend on one another in a circle."""


@dataclass(frozen=True)
class Step:
    """One job of a workflow: its name (unique in the workflow), its data, its parents' names and enqueue options."""

    name: str
    data: Any
    depends_on: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


class Workflow:
    """A DAG of jobs. ``add_job`` adds a step (parents by name or by the Step it returned), ``submit_all`` checks
    the graph for cycles and enqueues it, parents first; returns each step's job id by name.

    ``workflow_id`` (default: the name and 8 random hex digits) names the workflow in its label and in
    ``octoqueue workflow show``.
    """

    def __init__(self, name: str = "workflow", *, workflow_id: str | None = None) -> None:
        self.name = name
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:30] or "workflow"
        self.id = workflow_id or f"{slug}-{uuid.uuid4().hex[:8]}"
        if not _ID.fullmatch(self.id):
            raise ValueError("a workflow id is 1-40 letters, digits, '.', '_' or '-', starting with a letter or digit")
        self.steps: dict[str, Step] = {}

    @property
    def label(self) -> str:
        return f"{LABEL_PREFIX}{self.id}"

    def add_job(
        self, data: Any, *, name: str | None = None, depends_on: Iterable[Step | str] = (), **options: Any
    ) -> Step:
        """Add a step that runs ``data`` once every step in ``depends_on`` completed; ``options`` as
        :meth:`Queue.enqueue_job` (``type``, ``title``, ``priority``, ``on_parent_failure``, ...). A parent may be
        named before it is added; :meth:`submit_all` refuses names it never finds."""
        step_name = name or f"step-{len(self.steps) + 1}"
        if step_name in self.steps:
            raise ValueError(f"workflow {self.name!r} already has a step named {step_name!r}")
        for banned in ("depends_on", "run_at", "delay"):
            if banned in options:
                raise ValueError(f"a workflow step takes no {banned}")
        parents = tuple(p.name if isinstance(p, Step) else str(p) for p in depends_on)
        step = Step(step_name, data, tuple(dict.fromkeys(parents)), dict(options))
        self.steps[step_name] = step
        return step

    def order(self) -> list[Step]:
        """The steps parents first (each after every step it depends on); :class:`WorkflowCycle` when there is a
        cycle, naming it; ValueError for a parent that is no step."""
        for step in self.steps.values():
            missing = [p for p in step.depends_on if p not in self.steps]
            if missing:
                raise ValueError(f"step {step.name!r} depends on {', '.join(map(repr, missing))}, not in the workflow")
        done: dict[str, bool] = {}  # name -> finished (False: on the current path)
        ordered: list[Step] = []
        for start in self.steps:
            if start in done:
                continue
            path: list[str] = []
            stack: list[tuple[str, int]] = [(start, 0)]
            while stack:
                name, index = stack.pop()
                if index == 0:
                    done[name] = False
                    path.append(name)
                parents = self.steps[name].depends_on
                if index < len(parents):
                    stack.append((name, index + 1))
                    parent = parents[index]
                    if done.get(parent) is False:
                        cycle = [*path[path.index(parent) :], parent]
                        raise WorkflowCycle(f"workflow {self.name!r} has a cycle: {' -> '.join(cycle)}")
                    if parent not in done:
                        stack.append((parent, 0))
                    continue
                done[name] = True
                path.pop()
                ordered.append(self.steps[name])
        return ordered

    def submit_all(self, queue: Queue) -> dict[str, int]:
        """Enqueue every step, parents first, each labelled ``workflow:<id>``; return the job ids by step name."""
        ids: dict[str, int] = {}
        for step in self.order():
            options = dict(step.options)
            labels = [*options.pop("additional_labels", ()), self.label]
            title = options.pop("title", None) or f"{self.name}: {step.name}"
            job = queue.enqueue_job(
                step.data, title, labels, depends_on=[ids[p] for p in step.depends_on] or None, **options
            )
            ids[step.name] = job.id
        return ids


@dataclass(frozen=True)
class Node:
    """A job of a submitted workflow as ``show`` reads it: the job and the ids of its parents."""

    job: Job
    parents: tuple[int, ...]

    @property
    def state(self) -> str:
        """The job's state, ``waiting`` for a pending job whose parents have not all completed."""
        return "waiting" if is_waiting(self.job) else (self.job.status or "unlabelled")


def show(queue: Queue, workflow_id: str) -> list[Node]:
    """The jobs of workflow ``workflow_id`` with their parents, parents first (ids breaking ties); [] when there
    are none. A store call for the listing and one per job (its comments)."""
    jobs = list(queue.store.iter_jobs(labels=(f"{LABEL_PREFIX}{workflow_id}",)))
    nodes = {job.id: Node(job, tuple(queue.dependencies.parents(job.id))) for job in jobs}
    return _parents_first(nodes)


def _parents_first(nodes: dict[int, Node]) -> list[Node]:
    placed: set[int] = set()
    ordered: list[Node] = []
    waiting = sorted(nodes)
    while waiting:
        ready = [i for i in waiting if all(p in placed or p not in nodes for p in nodes[i].parents)]
        if not ready:  # not a DAG after all (edited by hand): the rest by id
            ready = waiting
        for job_id in ready:
            ordered.append(nodes[job_id])
            placed.add(job_id)
        waiting = [i for i in waiting if i not in placed]
    return ordered


def render(nodes: Sequence[Node]) -> str:
    """``show``'s nodes as a table: id, state, title, the ids waited for, the error."""
    if not nodes:
        return "no jobs"
    rows = [("job", "state", "title", "waits for", "error")]
    for node in nodes:
        error = (node.job.last_error or "").splitlines()[0][:60] if node.job.last_error else ""
        rows.append(
            (str(node.job.id), node.state, node.job.title[:40], ", ".join(map(str, node.parents)) or "-", error)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4]]).rstrip()
        for row in rows
    )
