"""The chaos ledger: one file every worker process appends to, and the verdict drawn from it and the store.

Lines are ``<kind> <job id> <attempt> <pid>``, each written with one ``write`` on an ``O_APPEND`` descriptor, so
lines from concurrent processes never interleave and a SIGKILL loses at most the line not yet written:

- ``run``: a handler started the attempt;
- ``completing``: the handler returned and the worker is about to ask the store to complete the attempt;
- ``completed``: the store accepted that completion.

A kill between the store accepting a completion and the ``completed`` line leaves only ``completing``: the verdict
counts such a job as completed once (by the attempt the store recorded) and reports it as *cut by a kill*.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from octoqueue.states import JobState

KINDS = ("run", "completing", "completed")


def append(path: Path | str, kind: str, job_id: int, attempt: int) -> None:
    """Append one line atomically (one write on an O_APPEND descriptor)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {job_id} {attempt} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Entry:
    kind: str
    job_id: int
    attempt: int
    pid: int


def read(path: Path | str) -> list[Entry]:
    """Every complete line of the ledger (a line cut short by a kill has no newline and is skipped)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return _entries(text.splitlines(keepends=True))


def _entries(lines: Iterable[str]) -> list[Entry]:
    entries = []
    for line in lines:
        parts = line.split()
        if line.endswith("\n") and len(parts) == 4 and parts[0] in KINDS:
            entries.append(Entry(parts[0], int(parts[1]), int(parts[2]), int(parts[3])))
    return entries


class Tail:
    """The lines appended since the last :meth:`read` (progress polling without rereading the whole file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def read(self) -> list[Entry]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written stays for the next read
        self._offset += len(complete)
        return _entries(complete.decode().splitlines(keepends=True))


@dataclass
class Verdict:
    """What the run did to the jobs. ``ok`` when nothing was lost, nothing completed twice, every job finished."""

    jobs: int
    runs: int = 0
    lost: list[int] = field(default_factory=list)  # enqueued, but not completed in the store
    completed_twice: list[int] = field(default_factory=list)  # two completions accepted
    unaccounted: list[int] = field(default_factory=list)  # completed in the store by an attempt no worker finished
    cut_by_kill: list[int] = field(default_factory=list)  # accepted, its ``completed`` line lost to a SIGKILL
    strays: list[int] = field(default_factory=list)  # in the store, but no producer was given their id
    reruns: int = 0  # attempts beyond the first, over every job
    retaken: int = 0  # jobs completed by a later attempt than their first: taken back from a worker (a kill), run

    @property
    def ok(self) -> bool:
        return not (self.lost or self.completed_twice or self.unaccounted or self.strays)

    def summary(self) -> str:
        return (
            f"{self.jobs} jobs, {self.runs} handler runs ({self.reruns} reruns, {self.retaken} taken back): "
            f"{len(self.lost)} lost, "
            f"{len(self.completed_twice)} completed twice, {len(self.unaccounted)} completed by no worker, "
            f"{len(self.strays)} created twice, {len(self.cut_by_kill)} completions whose record a kill cut"
        )


def judge(job_ids: Iterable[int], final: Mapping[int, tuple[JobState | None, int]], entries: list[Entry]) -> Verdict:
    """Compare the ledger with the store's final ``(state, attempt)`` per job."""
    ids = sorted(set(job_ids))
    by_job: dict[int, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    for entry in entries:
        by_job[entry.job_id][entry.kind].append(entry)
    verdict = Verdict(jobs=len(ids), runs=sum(1 for e in entries if e.kind == "run"))
    for job_id in ids:
        kinds = by_job[job_id]
        verdict.reruns += max(0, len({e.attempt for e in kinds["run"]}) - 1)
        state, attempt = final.get(job_id, (None, 0))
        if state is not JobState.COMPLETED:
            verdict.lost.append(job_id)
            continue
        if attempt > 1:
            verdict.retaken += 1
        accepted = kinds["completed"]
        if len(accepted) > 1 or any(e.attempt != attempt for e in accepted):
            verdict.completed_twice.append(job_id)
        elif not accepted:
            if any(e.attempt == attempt for e in kinds["completing"]):
                verdict.cut_by_kill.append(job_id)
            else:
                verdict.unaccounted.append(job_id)
    return verdict
