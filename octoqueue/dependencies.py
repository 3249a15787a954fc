"""Job dependencies: a job that runs only once every one of its parents completed.

Built above the store contract, so it works on every store:

* A job that waits is **pending** with ``run_at`` = :data:`WAITING_UNTIL` (far in the future), so no store's claim
  takes it; it is created that way, so no claim ever sees it runnable. It is *released* by the move pending ->
  pending with ``run_at`` cleared, fenced by its attempt (a claim in between makes the release a no-op).
* Its parents and what to do when one of them fails are a comment on the job, written when it is enqueued ("Waits
  for jobs 3 and 5 ..."), with the machine-readable part in a hidden marker: a person reads it on GitHub, and
  :meth:`Dependencies.parents` reads it back. On a store that shows dependencies itself
  (:class:`~octoqueue.stores.base.LinksDependencies`: GitHub's ``blocked_by``) they are recorded there too.
* The edges from a parent to the jobs waiting for it live in one setting, ``dependents`` (parent id -> child ids).
  It may take at most :data:`MAX_SETTING_CHARS` characters: on GitHub every setting shares one issue body with
  schedules, pauses and queue definitions, and a producer must not be able to fill it. A job whose links would not
  fit is refused with :class:`~octoqueue.errors.DependentsFull` before it is made; links of jobs that are gone
  (purged) or no longer wait are dropped first (at most once per :data:`PRUNE_INTERVAL` seconds).
  A job that finishes is looked up in it (one setting read per finish, or per batch of finishes): a completed parent
  releases the children whose parents are now all completed and leaves the setting; a failed or cancelled one fails
  (or cancels, as each child asked) its children with a reason naming it, and theirs in turn, and stays in the
  setting so that requeueing it revives them. Nothing waits forever on a parent that will not complete.

Why no store verb: each step is one fenced transition (pending -> pending, pending -> failed) or one atomic setting
update, which every store already makes atomic. Two parents finishing at once each write their own state before
they read their siblings', so at least one of them sees both finished and settles the child; settling twice is
harmless (the second move finds the job no longer waiting, or its attempt moved on).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from octoqueue.errors import DependentsFull, JobNotFound, StateConflict
from octoqueue.job import Comment, Job
from octoqueue.states import JobState
from octoqueue.stores.base import LinksDependencies

if TYPE_CHECKING:
    from octoqueue.queue import Queue

log = logging.getLogger(__name__)

#: The ``run_at`` of a job waiting for its parents: later than any real delay, within every store's range (Redis
#: keeps times as microseconds in a double, exact up to the year 2255).
WAITING_UNTIL = datetime(2200, 1, 1, tzinfo=UTC)
#: The setting that maps a parent's id to the ids of the jobs waiting for it.
SETTING_KEY = "dependents"
#: The most characters the ``dependents`` setting may take in the settings, as the GitHub store writes them
#: (indented JSON): a quarter of an issue body, so schedules, pauses and queue definitions keep the rest. That is
#: about 500 waiting jobs each on a parent of its own, or 1,100 on one parent; a job with 100 parents takes 3,600.
MAX_SETTING_CHARS = 16_384
#: Seconds between two looks for links of jobs that are gone, made when a job's links would not fit.
PRUNE_INTERVAL = 600.0
#: The id a child is counted as before it is made (the most digits any store's id has).
_LONGEST_ID = 10**15
#: What a job does when one of its parents fails or is cancelled.
OnParentFailure = Literal["fail", "cancel"]
ON_PARENT_FAILURE: tuple[str, ...] = ("fail", "cancel")

#: The whole comment :func:`waits_comment` writes (another comment of octoqueue's may quote a marker in a job's error).
_MARKER = re.compile(r"\AWaits for job\(s\) [^\n]*\n\n<!-- octoqueue:depends (\{[^\n<>]*\}) -->\s*\Z")
_BLAME = re.compile(r"parent job (\d+) (?:failed|was cancelled)")
_BROKEN = (JobState.FAILED, JobState.CANCELLED)


def is_waiting(job: Job) -> bool:
    """Whether ``job`` is pending and waiting for its parents (not claimable until they completed)."""
    return job.state is JobState.PENDING and job.run_at is not None and job.run_at >= WAITING_UNTIL


def blamed_parent(job: Job) -> int | None:
    """The parent whose failure failed (or cancelled) ``job``, or None when ``job`` did not end that way."""
    if job.state not in _BROKEN or not job.last_error:
        return None
    match = _BLAME.match(job.last_error)
    return int(match.group(1)) if match else None


def parent_reason(parent: Job) -> str:
    """The error a child gets when ``parent`` failed or was cancelled (it names the parent)."""
    what = "failed" if parent.state is JobState.FAILED else "was cancelled"
    why = f": {parent.last_error}" if parent.last_error and parent.state is JobState.FAILED else ""
    return f"parent job {parent.id} {what}{why}"[:1000]


def waits_comment(parents: Sequence[int], on_parent_failure: str) -> str:
    """The comment that records a job's parents: words for people, a hidden marker for octoqueue."""
    names = ", ".join(f"#{p}" for p in parents)
    then = "is cancelled" if on_parent_failure == "cancel" else "fails"
    marker = json.dumps({"parents": list(parents), "on_parent_failure": on_parent_failure}, separators=(",", ":"))
    return (
        f"Waits for job(s) {names}: it runs once they all completed, and {then} if one of them fails or is "
        f"cancelled.\n\n<!-- octoqueue:depends {marker} -->"
    )


def setting_chars(edges: Any) -> int:
    """How many characters ``edges`` (the ``dependents`` setting) take in the settings, as GitHub writes them."""
    return len(json.dumps({SETTING_KEY: edges}, indent=2))


def read_marker(comments: Iterable[Comment]) -> dict[str, Any] | None:
    """The dependency record of a job from its comments (the first comment that is one: :func:`waits_comment`'s
    text and marker, nothing else), or None when it has none."""
    for comment in comments:
        match = _MARKER.match(comment.body)
        if match:
            try:
                found = json.loads(match.group(1))
            except ValueError:
                continue
            if isinstance(found, dict) and isinstance(found.get("parents"), list):
                return found
    return None


class Dependencies:
    """The dependencies of one queue's jobs (see the module's docstring). Made by :attr:`Queue.dependencies`."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._store = queue.store
        # Asked once: an isinstance check against a runtime protocol costs more than the setting read it may spare.
        self._links: LinksDependencies | None = queue.store if isinstance(queue.store, LinksDependencies) else None
        self._pruned_at: datetime | None = None
        self._pruning = threading.Lock()

    # -- reading ----------------------------------------------------------------------------------------------------
    def record(self, job_id: int) -> dict[str, Any] | None:
        """The job's dependency record: the first marker in a comment octoqueue wrote (a person's comment with a
        forged one is ignored, see :mod:`octoqueue.authorship`); None for a job enqueued without ``depends_on``."""
        return read_marker(self._queue.authorship.own_comments(self._store.comments(job_id)))

    def parents(self, job_id: int) -> list[int]:
        """The ids of the jobs ``job_id`` waits (or waited) for; [] for a job enqueued without ``depends_on``."""
        record = self.record(job_id)
        return [int(p) for p in record["parents"]] if record else []

    def dependents(self, job_id: int) -> list[int]:
        """The jobs waiting for ``job_id`` that it has not released yet (its dependents once it completed are
        forgotten)."""
        return list((self._store.get_setting(SETTING_KEY) or {}).get(str(job_id), []))

    # -- enqueueing -------------------------------------------------------------------------------------------------
    def check(self, parents: Iterable[int], on_parent_failure: str) -> list[int]:
        """The parents as ids, each an existing job (else :class:`JobNotFound`), without repeats."""
        if on_parent_failure not in ON_PARENT_FAILURE:
            raise ValueError(f"on_parent_failure must be one of {', '.join(ON_PARENT_FAILURE)}")
        ids = list(dict.fromkeys(int(p) for p in parents))
        for parent in ids:
            self._store.get(parent)
        if ids:
            self._make_room(ids)
        return ids

    def _make_room(self, parents: Sequence[int]) -> None:
        """Raise :class:`DependentsFull` when a child of ``parents`` would not fit in the setting, even after the
        links of jobs that are gone or no longer wait were dropped."""
        edges = self._store.get_setting(SETTING_KEY) or {}
        if setting_chars(_with_edges(edges, parents, _LONGEST_ID)) <= MAX_SETTING_CHARS:
            return
        if self.prune():
            edges = self._store.get_setting(SETTING_KEY) or {}
        if setting_chars(_with_edges(edges, parents, _LONGEST_ID)) > MAX_SETTING_CHARS:
            raise DependentsFull(_full(edges))

    def prune(self) -> bool:
        """Drop the links of parents and children that are gone (purged), and of children that no longer wait and
        were not failed by that parent (cancelled or requeued by hand): a store read per job named. Does nothing
        (returns False) when the last prune of this object was less than :data:`PRUNE_INTERVAL` seconds ago (the
        store's clock), so refused producers cannot make it read every link again and again."""
        moment = self._store.now()
        with self._pruning:
            if self._pruned_at is not None and (moment - self._pruned_at).total_seconds() < PRUNE_INTERVAL:
                return False
            self._pruned_at = moment
        edges = self._store.get_setting(SETTING_KEY) or {}
        stale: dict[int, set[int]] = {}
        for key, children in edges.items():
            parent = int(key)
            if self._existing(parent) is None:
                stale[parent] = {int(child) for child in children}
                continue
            for child in children:
                job = self._existing(int(child))
                if job is None or not (is_waiting(job) or blamed_parent(job) == parent):
                    stale.setdefault(parent, set()).add(int(child))
        if stale:
            self._store.update_setting(SETTING_KEY, partial(_without_links, stale=stale))
            log.info("dropped the dependency links of %d jobs that are gone or no longer wait", len(stale))
        return True

    def attach(self, child: Job, parents: Sequence[int], on_parent_failure: str) -> Job:
        """Record that ``child`` (just created waiting) waits for ``parents``, then settle it: released at once
        when they all completed already, failed when one failed. Returns the child as it is then.

        When its links no longer fit (other producers filled the room since :meth:`check`), the child is cancelled
        with the reason as its error, and :class:`DependentsFull` is raised."""
        self._queue._say(child.id, waits_comment(parents, on_parent_failure))  # first: a job is never released early
        try:
            self._store.update_setting(SETTING_KEY, partial(_with_room, parents=parents, child=child.id))
        except DependentsFull as exc:
            reason = str(exc)[:1000]
            self._store.transition(
                child.id, expected=JobState.PENDING, target=JobState.CANCELLED, attempt=child.attempt, last_error=reason
            )
            self._queue._say(child.id, f"This job was cancelled: {reason}.")
            self._queue._notify_finished()
            raise
        if self._links is not None:
            self._links.link_dependencies(child.id, parents)
        settled = self._settle(child.id)
        if settled is not None and settled.state in _BROKEN:
            self.finished([settled])
        return settled or child

    # -- reacting to jobs that finish or come back ------------------------------------------------------------------
    def finished(self, jobs: Sequence[Job]) -> None:
        """React to ``jobs`` having finished: settle what waits for them (one setting read for all of them, none on a
        store that knows they block nothing)."""
        links = self._links
        if links is not None and all(links.blocks_others(job.id) is False for job in jobs):
            return
        self._settle_children(jobs, self._store.get_setting(SETTING_KEY) or {})

    def _settle_children(self, jobs: Sequence[Job], edges: dict[str, list[int]]) -> None:
        todo = [job for job in jobs if str(job.id) in edges]
        while todo:
            job = todo.pop()
            for child in edges.get(str(job.id), []):
                settled = self._settle(int(child))
                if settled is not None and settled.state in _BROKEN:
                    todo.append(settled)  # its own children fail in turn
            if job.state is JobState.COMPLETED:
                self._store.update_setting(SETTING_KEY, partial(_without, parent=job.id))
            edges = self._store.get_setting(SETTING_KEY) or {}

    def catch_up(self) -> int:
        """Settle what waits for every finished parent still in the ``dependents`` setting: the ones whose finisher
        stopped before it settled them, or that a person closed on GitHub. Returns how many parents were looked at.
        Workers call it now and then; a store call per parent with waiting (or failed) children."""
        edges = self._store.get_setting(SETTING_KEY) or {}
        finished: list[Job] = []
        for key in edges:
            parent = self._existing(int(key))
            if parent is None:
                self._store.update_setting(SETTING_KEY, partial(_without, parent=int(key)))
            elif parent.state in (*_BROKEN, JobState.COMPLETED):
                finished.append(parent)
        self._settle_children(finished, edges)  # not through finished(): what GitHub said of them may be old
        return len(edges)

    def requeued(self, job: Job) -> Job:
        """React to ``job`` being requeued: it waits again for parents that have not completed, and the jobs its
        failure failed (and theirs) come back to wait for it. Returns ``job`` as it is then."""
        if self.record(job.id) is not None:
            job = self._settle(self._wait_again(job).id) or job
            if job.state in _BROKEN:
                return job  # a parent is still failed: the job failed again, naming it
        todo = [job]
        while todo:
            parent = todo.pop()
            for child_id in self.dependents(parent.id):
                revived = self._revive(int(child_id), parent.id)
                if revived is not None:
                    todo.append(revived)
        return job

    # -- the moves --------------------------------------------------------------------------------------------------
    def _settle(self, job_id: int) -> Job | None:
        """Release a waiting job whose parents all completed, or fail (cancel) it when one failed or was cancelled;
        return the job moved, or None when it stays as it is."""
        try:
            job = self._store.get(job_id)
            if not is_waiting(job):
                return None
            record = self.record(job_id) or {"parents": []}
            parents = [self._existing(int(p)) for p in record["parents"]]
            broken = next((p for p in parents if p is not None and p.state in _BROKEN), None)
            if broken is not None:
                cancel = record.get("on_parent_failure") == "cancel"
                target = JobState.CANCELLED if cancel else JobState.FAILED
                reason = parent_reason(broken)
                moved = self._store.transition(
                    job_id, expected=JobState.PENDING, target=target, attempt=job.attempt, last_error=reason
                )
                self._queue._say(job_id, f"This job {'was cancelled' if cancel else 'failed'}: {reason}.")
                self._queue._notify_finished()
                return moved
            if all(p is None or p.state is JobState.COMPLETED for p in parents):
                moved = self._store.transition(
                    job_id, expected=JobState.PENDING, target=JobState.PENDING, attempt=job.attempt, run_at=None
                )
                self._queue._notify(moved)
                return moved
        except (StateConflict, JobNotFound) as exc:
            log.debug("job %s was not settled: %s", job_id, exc)
        return None

    def _existing(self, job_id: int) -> Job | None:
        """A job's record; None when it is gone (purged). A parent that is gone finished long ago, and completed, or
        its children would have failed with it."""
        try:
            return self._store.get(job_id)
        except JobNotFound:
            return None

    def _wait_again(self, job: Job) -> Job:
        if job.state is not JobState.PENDING or is_waiting(job):
            return job
        try:
            return self._store.transition(
                job.id, expected=JobState.PENDING, target=JobState.PENDING, attempt=job.attempt, run_at=WAITING_UNTIL
            )
        except StateConflict:
            return job

    def _revive(self, job_id: int, parent_id: int) -> Job | None:
        """Bring back a job that ``parent_id``'s failure failed: waiting again, with a fresh attempt budget."""
        try:
            job = self._store.get(job_id)
            if blamed_parent(job) != parent_id:
                return None
            revived = self._store.transition(
                job_id,
                expected=job.state,
                target=JobState.PENDING,
                attempt=job.attempt,
                attempt_base=job.attempt,
                run_at=WAITING_UNTIL,
                last_error=None,
            )
        except (StateConflict, JobNotFound):
            return None
        self._queue._say(job_id, f"Waits again: parent job {parent_id} was requeued.")
        settled = self._settle(job_id)
        if settled is not None and settled.state in _BROKEN:
            return None  # another parent is still failed: the job failed again, naming that one
        return settled or revived


def _with_edges(edges: Any, parents: Sequence[int], child: int) -> dict[str, list[int]]:
    updated = dict(edges or {})
    for parent in parents:
        children = list(updated.get(str(parent), []))
        if child not in children:
            children.append(child)
        updated[str(parent)] = children
    return updated


def _full(edges: Any) -> str:
    waiting = sum(len(children) for children in (edges or {}).values())
    return (
        f"too many jobs wait for parents: the {waiting:,} links to {len(edges or {}):,} unfinished or failed parents "
        f"fill the {MAX_SETTING_CHARS:,} characters kept for dependencies; wait for parents to complete, requeue "
        "or purge failed ones, or cancel waiting jobs"
    )


def _with_room(edges: Any, parents: Sequence[int], child: int) -> dict[str, list[int]]:
    updated = _with_edges(edges, parents, child)
    if setting_chars(updated) > MAX_SETTING_CHARS:
        raise DependentsFull(_full(edges))
    return updated


def _without_links(edges: Any, stale: dict[int, set[int]]) -> dict[str, list[int]] | None:
    updated: dict[str, list[int]] = {}
    for key, children in (edges or {}).items():
        gone = stale.get(int(key), set())
        kept = [child for child in children if int(child) not in gone]
        if kept:
            updated[key] = kept
    return updated or None


def _without(edges: Any, parent: int) -> dict[str, list[int]] | None:
    updated = {key: value for key, value in (edges or {}).items() if key != str(parent)}
    return updated or None
