"""What people ask for on a mirror's target — GitHub as the face of a fast queue — applied to the source.

On a job's copy in the target (its issue page, on GitHub) a person may:

- add the ``requeue`` label, or comment ``/requeue`` or ``/retry``, or reopen the issue (or set its status label to
  pending): the source job, when it is finished, runs again (``Queue.requeue``: pending, a fresh attempt budget);
- comment ``/cancel``, or close the issue as not planned (or give it the ``cancelled`` label): a pending or
  processing source job is cancelled.

Everything else on the target is the source's to decide, and the next copy overwrites it (docs/mirror.md).

Only target jobs that changed since the mirror last wrote or saw them are examined, read from the target's
:meth:`Store.recently_changed` (on GitHub a conditional GET, free when nothing changed). A comment counts only when
it is newer than the source job's last change and the note the source job got for a request does not name it
(``(comment 123)``), so a request acted upon is never acted upon again, after a restart neither, and whatever the
two stores' clocks say. On a target that can tell people's permissions (GitHub), comments by people without write
access are ignored (each person's permission is asked once a minute at most, however many comments they write);
adding a label or closing an issue needs triage access on GitHub anyway. A comment's author is who posted it: the hidden
block that names an imported comment's first author counts only from the target's own account
(:func:`octoqueue.stores.github.posts.comment_of`).
"""

from __future__ import annotations

import logging
from typing import Literal, Protocol, runtime_checkable

from octoqueue.authorship import Permissions
from octoqueue.commands import parse_command
from octoqueue.errors import InvalidTransition, JobNotFound, StateConflict
from octoqueue.job import Job
from octoqueue.mirror import Mirror, Tally, comment_key, job_fields
from octoqueue.queue import Queue
from octoqueue.states import FINISHED, REQUEUE_LABEL, JobState, label_key

log = logging.getLogger("octoqueue.mirror")

Kind = Literal["requeue", "cancel"]

#: How many of the target's last changed jobs each poll examines.
EXAMINED_PER_POLL = 100

#: Permissions that may requeue or cancel by comment.
WRITE_PERMISSIONS = frozenset({"write", "maintain", "admin"})


@runtime_checkable
class TellsPermissions(Protocol):
    """A target that knows people's permission on it (the GitHub store)."""

    def permission_of(self, login: str) -> str: ...


class TargetRequests:
    """Reads requests from ``mirror.target`` and applies them to ``mirror.source`` through ``queue``."""

    def __init__(self, mirror: Mirror, queue: Queue | None = None) -> None:
        self.mirror = mirror
        self.queue = queue or Queue(mirror.source)
        self._examined: dict[int, Job] = {}
        target = mirror.target
        self._permissions = Permissions(target.permission_of) if isinstance(target, TellsPermissions) else None

    def poll(self) -> Tally:
        """Examine the target's last changed copies; apply what people asked for; say what was done."""
        tally = Tally()
        target = self.mirror.target
        for there in target.recently_changed(list(JobState), limit=EXAMINED_PER_POLL):
            if there.id not in self.mirror.mirrored or _same(self._examined.get(there.id), there):
                continue
            self._examined[there.id] = there
            written = self.mirror.target_seen.get(there.id)
            try:
                job = self.mirror.source.get(there.id)
            except JobNotFound:
                continue
            asked = self._asked(job, there, changed_by_people=not _same(written, there))
            if asked is None:
                continue
            kind, via = asked
            done = self._apply(kind, job, via)
            if done:
                tally.requests.append(done)
        return tally

    def _asked(self, job: Job, there: Job, *, changed_by_people: bool) -> tuple[Kind, str] | None:
        finished = job.state in FINISHED or job.state is None
        running = job.state in (JobState.PENDING, JobState.PROCESSING)
        if finished and any(label_key(name) == REQUEUE_LABEL for name in there.labels):
            return "requeue", f"the `{REQUEUE_LABEL}` label"
        if changed_by_people:  # a state the mirror did not write
            if finished and there.state is JobState.PENDING and there.open:
                return "requeue", "the issue reopened as pending"
            if running and there.state is JobState.CANCELLED:
                return "cancel", "the issue closed as cancelled"
        if there.comments > job.comments:
            return self._commanded(job, finished=finished, running=running)
        return None

    def _commanded(self, job: Job, *, finished: bool, running: bool) -> tuple[Kind, str] | None:
        target = self.mirror.target
        theirs = self.mirror.source.comments(job.id)
        ours = {comment_key(note) for note in theirs}
        said = "\n".join(note.body for note in theirs)
        for note in target.comments(job.id):
            if comment_key(note) in ours or note.created_at <= job.updated_at:
                continue
            if _acted_upon(note.id) in said:
                continue  # the source's note names it: acted upon once already (the two clocks may disagree)
            command = parse_command(note.body)
            if command is None or not self._may(note.author):
                continue
            who = f"@{note.author}'s" if note.author else "a"
            if command == "cancel" and running:
                return "cancel", f"{who} `/cancel` comment {_acted_upon(note.id)}"
            if command == "requeue" and finished:
                return "requeue", f"{who} `/requeue` comment {_acted_upon(note.id)}"
        return None

    def _may(self, login: str | None) -> bool:
        if self._permissions is None:
            return True
        return login is not None and self._permissions.of(login) in WRITE_PERMISSIONS

    def _apply(self, kind: Kind, job: Job, via: str) -> str | None:
        note = f"{'Requeued' if kind == 'requeue' else 'Cancelled'} through {via} on {self.mirror.target.url}"
        try:
            if kind == "requeue":
                self.queue.requeue(job.id, comment=note)
            else:
                self.queue.cancel(job.id, comment=note)
        except (StateConflict, InvalidTransition) as exc:
            log.info("job %d: %s asked to %s it, but %s", job.id, via, kind, exc)
            return None
        log.info("job %d: %s", job.id, note)
        return f"job {job.id}: {note}"


def _acted_upon(comment_id: int) -> str:
    """How the source's note on a request names the target's comment that made it."""
    return f"(comment {comment_id})"


def _same(a: Job | None, b: Job) -> bool:
    return a is not None and a.comments == b.comments and job_fields(a) == job_fields(b)


__all__ = ["TargetRequests", "TellsPermissions"]
