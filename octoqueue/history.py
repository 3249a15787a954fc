"""A job's history: one :class:`Attempt` per attempt, read from the store through the store contract alone.

Where each attempt is recorded:

* An attempt that ended and was followed by another move (a retry, an expired lease, a release at shutdown, a
  requeue of a finished job) is recorded in the comment octoqueue posts on that move: a visible line for people
  (``attempt 2 · worker host:12:ab · 12:00:00 → 12:00:04 UTC · 4.0 s · retried``) and the same facts as JSON in a
  hidden ``<!-- octoqueue:attempt {...} -->`` marker at its end. On GitHub a person reads the history in the issue's
  comments; every store keeps comments, so the history reads the same everywhere.
* The latest attempt is in the job's record until the next move: ``attempt``, ``started_at`` (set by the claim),
  ``worker`` (kept when the Queue that claimed the job finishes it), ``updated_at`` as its end, the state as its
  outcome. So a completion writes no comment of its own: it costs no request more than before.

Only comments octoqueue wrote count (:mod:`octoqueue.authorship`: on GitHub anyone may comment, markers included),
and in each only the footer: the marker that ends it. The first marker for an attempt wins (a cancel after a retry
does not rewrite the retried attempt); the record fills in the latest attempt when no comment names it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from octoqueue.job import Comment, Job
from octoqueue.states import JobState


class Outcome(StrEnum):
    """How an attempt ended (``running`` while it has not)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    #: failed, and the job went back to pending for another attempt
    RETRIED = "retried"
    #: its lease ran out (a worker died or stalled); the job went back to pending or failed
    EXPIRED = "expired"
    #: given back unrun or cut short at shutdown; the attempt is not counted against ``max_attempts``
    RELEASED = "released"
    CANCELLED = "cancelled"


_FROM_STATE = {
    JobState.PROCESSING: Outcome.RUNNING,
    JobState.COMPLETED: Outcome.COMPLETED,
    JobState.FAILED: Outcome.FAILED,
    JobState.CANCELLED: Outcome.CANCELLED,
}


class Attempt(BaseModel):
    """One attempt of a job. Times are the store's clock; None where nobody recorded them (an attempt ended by
    a process that did not claim it may lack its worker)."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    outcome: Outcome
    worker: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while running or when either is unknown."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.started_at).total_seconds())

    def line(self) -> str:
        """The attempt on one line, for people (comments, the command line)."""
        parts = [f"attempt {self.attempt}", f"worker {self.worker or '?'}"]
        start = _clock_time(self.started_at)
        end = _clock_time(self.ended_at) if self.ended_at is not None else "…"
        parts.append(f"{start} → {end} UTC")
        if self.duration is not None:
            parts.append(f"{self.duration:.1f} s")
        parts.append(self.outcome.value)
        return " · ".join(parts)


#: Room a comment keeps for an attempt's footer (:func:`note`) when it carries no error (a completion).
NOTE_ROOM = 1_024
#: A worker name is cut to this many characters in a footer.
_WORKER_CHARS = 200

_MARKER = "octoqueue:attempt"
#: The footer's marker: the end of the comment (the text before it may quote anything, a job's error included).
_MARKER_RE = re.compile(r"<!--\s*octoqueue:attempt\s*(\{[^<>]*\})\s*-->\s*\Z")


def _clock_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "?"


def ended(
    job: Job, outcome: Outcome, *, at: datetime, worker: str | None = None, error: str | None = None
) -> Attempt | None:
    """The attempt ``job`` (its record as the ending move left it) that ended ``at`` (the store's clock) with
    ``outcome``; None when the job never ran (attempt 0). ``worker`` fills in a holder the record no longer names."""
    if job.attempt < 1:
        return None
    return Attempt(
        attempt=job.attempt,
        outcome=outcome,
        worker=job.worker or worker,
        started_at=job.started_at,
        ended_at=at,
        error=error,
    )


def note(attempt: Attempt | None) -> str:
    """The footer a comment carries for ``attempt``: a visible line and the hidden marker ('' for None)."""
    if attempt is None:
        return ""
    if attempt.worker is not None and len(attempt.worker) > _WORKER_CHARS:
        attempt = attempt.model_copy(update={"worker": attempt.worker[:_WORKER_CHARS]})
    fields = attempt.model_dump(mode="json", exclude_none=True)
    # No < or > in the marker: an error that quotes a marker (or closes the HTML comment) stays inside its string.
    marker = json.dumps(fields, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"\n\n<sub>{attempt.line()}</sub>\n<!-- {_MARKER} {marker} -->"


def with_note(text: str, attempt: Attempt | None) -> str:
    return text + note(attempt)


def _from_comment(comment: Comment) -> Attempt | None:
    """The attempt a comment's footer records: its last marker, which must end it (a marker quoted in the text above,
    in a job's error say, is no footer)."""
    start = comment.body.rfind("<!--")
    match = _MARKER_RE.match(comment.body, start) if start >= 0 else None
    if match is None:
        return None
    try:
        fields: Any = json.loads(match.group(1))
        return Attempt.model_validate(fields)
    except (ValueError, ValidationError):
        return None  # a marker a person mangled: the other comments still count


def read_history(job: Job, comments: Iterable[Comment]) -> list[Attempt]:
    """Every attempt of ``job``, oldest first, from its comments (oldest first; only those octoqueue wrote, see
    :meth:`Queue.history <octoqueue.queue.Queue.history>`) and its record."""
    found: dict[int, Attempt] = {}
    for comment in comments:
        attempt = _from_comment(comment)
        if attempt is not None:
            found.setdefault(attempt.attempt, attempt)
    latest = _from_record(job)
    if latest is not None:
        found.setdefault(latest.attempt, latest)
    return [found[number] for number in sorted(found)]


def _from_record(job: Job) -> Attempt | None:
    outcome = _FROM_STATE.get(job.state) if job.state is not None else None
    if outcome is None or job.attempt < 1 or job.started_at is None:
        return None
    finished = outcome is not Outcome.RUNNING
    return Attempt(
        attempt=job.attempt,
        outcome=outcome,
        worker=job.worker,
        started_at=job.started_at,
        ended_at=job.updated_at if finished else None,
        error=job.last_error if outcome is Outcome.FAILED else None,
    )


__all__ = ["NOTE_ROOM", "Attempt", "Outcome", "ended", "note", "read_history", "with_note"]
