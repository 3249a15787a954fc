"""``octoqueue mirror SRC DST``: copy a queue from one store to another, and keep the copy in step.

Built on the store contract alone (any store to any store). Every job is written with :meth:`Store.import_job`,
so it keeps its number, title, data, labels, state, metadata, times and comments.

**Idempotent.** A job whose copied fields (:func:`job_fields`) and comments already match is not written, so a
second run writes nothing and says so. A run that stopped — killed, or stopped by a rate limit — is resumed by
running it again: what was copied is skipped, a job copied halfway (its issue made, some comments not) is finished.
Numbers are the identity, so nothing is ever copied twice. A rate limit is waited out (``RateLimited.retry_after``)
and the job tried again; a GitHub target paces its writes itself (its per-token pacer).

**Following.** :meth:`Mirror.follow` makes one full pass, then polls: the source's last changed jobs
(:meth:`Store.recently_changed`, a conditional GET that GitHub answers 304 when idle), each compared and copied
when it differs. What people ask on the target (a requeue or cancel on GitHub) is read by
:mod:`octoqueue.mirror_requests` and applied to the source first. See docs/mirror.md for the conflict rules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from octoqueue.errors import JobNotFound, RateLimited
from octoqueue.job import Comment, Job
from octoqueue.states import JobState, has_labels
from octoqueue.stores.base import Store

log = logging.getLogger("octoqueue.mirror")

#: The job fields a mirror copies and compares: all but where the job lives (``url``), how one store read its body
#: (``body_error``) and the comment count (the comments themselves are compared).
COPIED_FIELDS = tuple(name for name in Job.model_fields if name not in ("url", "body_error", "comments"))

#: How far back (store time) each poll of :meth:`Mirror.follow` looks before the newest change it saw, so that a
#: comment made just after its job's last change is still copied.
FOLLOW_OVERLAP = timedelta(seconds=60)


def job_fields(job: Job) -> dict[str, Any]:
    """What a mirror copies of a job, to compare two copies field by field."""
    return {name: getattr(job, name) for name in COPIED_FIELDS}


def comment_key(note: Comment) -> tuple[str, str | None, datetime]:
    """What makes two copies of a comment the same comment (their ids are each store's own)."""
    return note.body, note.author, note.created_at


@dataclass(frozen=True)
class Selection:
    """Which source jobs a mirror copies: in one of ``states`` (any when None), carrying every one of ``labels``,
    changed at or after ``since``."""

    states: frozenset[JobState] | None = None
    labels: tuple[str, ...] = ()
    since: datetime | None = None

    def wants(self, job: Job) -> bool:
        return (
            (self.states is None or job.state in self.states)
            and has_labels(job.labels, self.labels)
            and (self.since is None or job.updated_at >= self.since)
        )


@dataclass
class Tally:
    """What a mirror pass did (or, in a dry run, would do)."""

    examined: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    comments: int = 0
    rate_limit_waits: int = 0
    requests: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.created + self.updated

    def add(self, other: Tally) -> None:
        for name in ("examined", "created", "updated", "unchanged", "comments", "rate_limit_waits"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.requests.extend(other.requests)

    def summary(self, dry_run: bool = False) -> str:
        """One line for people: what changed, or that nothing did."""
        if not self.changed and not self.requests:
            nothing = "nothing to change" if dry_run else "nothing changed"
            return f"{self.examined} jobs examined: the mirror is up to date, {nothing}"
        would = "would be " if dry_run else ""
        text = (
            f"{self.examined} jobs examined: {self.created} {would}created, {self.updated} {would}updated "
            f"({self.comments} comments {'to copy' if dry_run else 'copied'}), {self.unchanged} unchanged"
        )
        if self.requests:
            text += f"; {len(self.requests)} requests made on the target applied to the source"
        return text


#: Called after each job a pass examines, with the job and what happened to it ("created", "updated", "unchanged").
Progress = Callable[[Job, str], None]


class Mirror:
    """Copies the jobs of ``source`` that ``selection`` wants into ``target`` (see the module docstring).

    ``wait`` sleeps (tests pass a function that moves a clock instead); ``dry_run`` writes nothing.
    """

    def __init__(
        self,
        source: Store,
        target: Store,
        *,
        selection: Selection | None = None,
        dry_run: bool = False,
        wait: Callable[[float], object] = time.sleep,
    ) -> None:
        self.source = source
        self.target = target
        self.selection = selection or Selection()
        self.dry_run = dry_run
        self.wait = wait
        #: The newest source change copied (source time): where the next poll of :meth:`follow` starts.
        self.cursor: datetime | None = None
        #: Ids of jobs the target holds a copy of: kept in step even once they leave the selection.
        self.mirrored: set[int] = set()
        #: Each copy as this mirror last wrote or read it in the target: a copy that differs was changed there.
        self.target_seen: dict[int, Job] = {}

    # -- one pass ---------------------------------------------------------------------------------------------
    def expected_total(self) -> int:
        """How many source jobs are in the selected states (labels and ``since`` may select fewer): for an ETA."""
        return sum(self.source.count(self.selection.states).values())

    def run(self, progress: Progress | None = None) -> Tally:
        """Copy every selected source job that differs in the target; return what was done."""
        there = {job.id: job for job in self.target.iter_jobs()}  # one listing of the target, not a read per job
        self.mirrored.update(there)
        self.target_seen.update(there)
        tally = Tally()
        for job in self._selected():
            self._note_cursor(job)
            tally.add(self._copy(job, there.get(job.id), progress))
        return tally

    def _selected(self) -> Iterator[Job]:
        states = self.selection.states
        for job in self.source.iter_jobs(states=states, labels=self.selection.labels):
            if self.selection.wants(job):
                yield job

    def _note_cursor(self, job: Job) -> None:
        if self.cursor is None or job.updated_at > self.cursor:
            self.cursor = job.updated_at

    def sync(self, job: Job, progress: Progress | None = None) -> Tally:
        """Copy one source job if its target copy differs (reading that copy first)."""
        return self._copy(job, _get(self.target, job.id), progress)

    def _copy(self, job: Job, there: Job | None, progress: Progress | None) -> Tally:
        waits, fresh, missing = 0, True, there is None
        while True:
            try:
                if not fresh:
                    there = _get(self.target, job.id)
                tally = self._copy_once(job, there)
                break
            except RateLimited as exc:
                # However long it takes: wait the limit out, then try this job again from a fresh read of its copy.
                log.warning("job %d: %s; waiting %.0f s", job.id, exc, exc.retry_after)
                if progress is not None:
                    progress(job, "waiting")
                self.wait(max(exc.retry_after, 1.0))
                waits, fresh = waits + 1, False
        tally.rate_limit_waits = waits
        if missing and tally.updated:  # made by the try a rate limit interrupted: still a job this pass created
            tally.created, tally.updated = 1, 0
        if progress is not None:
            progress(job, "unchanged" if tally.unchanged else "created" if tally.created else "updated")
        return tally

    def _copy_once(self, job: Job, there: Job | None) -> Tally:
        missing = self._missing_comments(job, there)
        if there is not None and not missing and job_fields(there) == job_fields(job):
            self.mirrored.add(job.id)
            self.target_seen[job.id] = there
            return Tally(examined=1, unchanged=1)
        tally = Tally(examined=1, created=int(there is None), updated=int(there is not None), comments=len(missing))
        if not self.dry_run:
            self.target_seen[job.id] = self.target.import_job(job, missing)
            self.mirrored.add(job.id)
        return tally

    def _missing_comments(self, job: Job, there: Job | None) -> list[Comment]:
        """The source's comments the target copy lacks, in order (none are read when the counts agree)."""
        if job.comments == 0 or (there is not None and there.comments == job.comments):
            return []
        ours = self.source.comments(job.id)
        if there is None or there.comments == 0:
            return ours
        have = {comment_key(note) for note in self.target.comments(job.id)}
        return [note for note in ours if comment_key(note) not in have]

    # -- following ----------------------------------------------------------------------------------------------
    def poll(self, progress: Progress | None = None) -> Tally:
        """Copy the source jobs changed since the last pass (and those it mirrored before that left the selection)."""
        since = self.cursor - FOLLOW_OVERLAP if self.cursor is not None else None
        tally = Tally()
        for job in changed_since(self.source, since):
            self._note_cursor(job)
            if not (self.selection.wants(job) or job.id in self.mirrored):
                continue
            seen = self.target_seen.get(job.id)
            if seen is not None and seen.comments == job.comments and job_fields(seen) == job_fields(job):
                tally.add(Tally(examined=1, unchanged=1))  # copied as it is now: the target need not be read
                continue
            tally.add(self.sync(job, progress))
        return tally

    def follow(
        self,
        *,
        interval: float = 2.0,
        stop: Callable[[], bool],
        progress: Progress | None = None,
        on_pass: Callable[[Tally], None] | None = None,
        before_poll: Callable[[], Tally] | None = None,
        full_pass: bool = True,
    ) -> Tally:
        """A full pass (unless ``full_pass`` is False: :meth:`run` was called), then a :meth:`poll` every
        ``interval`` seconds until ``stop()``; ``before_poll`` (the target's requests, see
        :mod:`octoqueue.mirror_requests`) runs before each poll. ``on_pass`` gets each pass's tally."""
        total = self.run(progress) if full_pass else Tally()
        if on_pass is not None and full_pass:
            on_pass(total)
        while not stop():
            self.wait(interval)
            tally = before_poll() if before_poll is not None else Tally()
            tally.add(self.poll(progress))
            total.add(tally)
            if on_pass is not None:
                on_pass(tally)
        return total


def changed_since(store: Store, since: datetime | None, *, states: Collection[JobState] | None = None) -> list[Job]:
    """The jobs of ``store`` changed at or after ``since`` (all when None), the last changed first, read from
    :meth:`Store.recently_changed` with a growing limit until it reaches older changes."""
    wanted = list(states) if states is not None else list(JobState)
    limit = 100
    while True:
        jobs = store.recently_changed(wanted, limit=limit)
        if len(jobs) < limit or (since is not None and jobs[-1].updated_at < since):
            return [job for job in jobs if since is None or job.updated_at >= since]
        limit *= 4


def _get(store: Store, job_id: int) -> Job | None:
    try:
        return store.get(job_id)
    except JobNotFound:
        return None


__all__ = ["COPIED_FIELDS", "Mirror", "Selection", "Tally", "changed_since", "comment_key", "job_fields"]
