"""The label-state model, written once.

A job's state is one GitHub label. The values of :class:`JobState` are the label texts (optionally prefixed, see
:class:`LabelScheme`), and :data:`TRANSITIONS` is the one table of moves every store enforces atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from octoqueue.errors import InvalidTransition


class JobState(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        """Open issue = pending or processing; every other state is a closed issue."""
        return self in (JobState.PENDING, JobState.PROCESSING)

    @property
    def state_reason(self) -> str | None:
        """The GitHub ``state_reason`` a closed job's issue carries."""
        if self is JobState.COMPLETED:
            return "completed"
        if self in (JobState.FAILED, JobState.CANCELLED):
            return "not_planned"
        return None


FINISHED = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})

#: from-state -> the states a job may move to. ``processing -> processing`` is a lease renewal.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.PROCESSING, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}),
    JobState.PROCESSING: frozenset(
        {JobState.PROCESSING, JobState.PENDING, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.COMPLETED: frozenset({JobState.PENDING}),
    JobState.FAILED: frozenset({JobState.PENDING}),
    JobState.CANCELLED: frozenset({JobState.PENDING}),
}


def check_transition(job_id: int, current: JobState | None, target: JobState) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is in :data:`TRANSITIONS`."""
    if current is None:
        # A job whose status label was removed by hand can only be put back in the queue or closed.
        if target in (JobState.PENDING, JobState.FAILED, JobState.CANCELLED):
            return
        raise InvalidTransition(job_id, current, target)
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(job_id, current, target)


class Priority(IntEnum):
    """GopherQueue's five levels; lower runs first."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    BULK = 4

    @classmethod
    def parse(cls, value: int | str | Priority) -> Priority:
        if isinstance(value, Priority):
            return value
        if isinstance(value, int):
            return cls(value)
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            return cls(int(text))
        try:
            return cls[text.upper()]
        except KeyError:
            names = ", ".join(p.name.lower() for p in cls)
            raise ValueError(f"unknown priority {value!r}: use 0-4 or one of {names}") from None


@dataclass(frozen=True)
class LabelScheme:
    """Maps states to label texts. ``prefix`` is empty by default, so the labels are the original's."""

    prefix: str = ""

    def label(self, state: JobState) -> str:
        return f"{self.prefix}{state.value}"

    def state_of(self, labels: Iterable[str]) -> JobState | None:
        """The state a set of labels says, or None when no status label is present.

        When a human left two status labels, the most advanced one wins (completed/failed/cancelled over
        processing over pending), so that a finished job is never run again by accident.
        """
        found = set()
        for name in labels:
            if name.startswith(self.prefix):
                try:
                    found.add(JobState(name[len(self.prefix) :]))
                except ValueError:
                    continue
        for state in (JobState.CANCELLED, JobState.FAILED, JobState.COMPLETED, JobState.PROCESSING):
            if state in found:
                return state
        return JobState.PENDING if JobState.PENDING in found else None

    def is_status(self, name: str) -> bool:
        if not name.startswith(self.prefix):
            return False
        return name[len(self.prefix) :] in JobState._value2member_map_

    def extra(self, labels: Iterable[str]) -> tuple[str, ...]:
        """The labels that are not status labels, in their order."""
        return tuple(name for name in labels if not self.is_status(name))
