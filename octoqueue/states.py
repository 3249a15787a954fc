"""The label-state model, written once.

A job's state is one GitHub label. The values of :class:`JobState` are the label texts (optionally prefixed, see
:class:`LabelScheme`), and :data:`TRANSITIONS` is the one table of moves every store enforces atomically.

Label names compare as GitHub compares them: ignoring case (a repository has one of ``Pending`` and ``pending``,
and an issue created with ``pending`` then carries ``Pending``). :meth:`LabelScheme.check_extra` is the one rule
for the labels a job may be given, whatever the store and whoever asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from octoqueue.errors import InvalidLabel, InvalidTransition


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

#: from-state -> the states a job may move to. ``processing -> processing`` is a lease renewal; ``pending ->
#: pending`` changes when a waiting job may run (a job whose parents completed is released, see dependencies.py).
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset(
        {JobState.PENDING, JobState.PROCESSING, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}
    ),
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


#: Longest label name GitHub accepts.
MAX_LABEL_CHARS = 50
#: The label of the store's settings issue, and of a purged job (both prefixed like the status labels).
SETTINGS_LABEL = "octoqueue-settings"
ARCHIVED_LABEL = "archived"
#: The label a person adds to put a job back in the queue (ChatOps).
REQUEUE_LABEL = "requeue"
#: Labels that put a job in a named queue of the worker API: ``queue:<name>``.
QUEUE_LABEL_PREFIX = "queue:"


def label_key(name: str) -> str:
    """What GitHub compares label names by: two names with the same key are the same label."""
    return name.lower()


def has_labels(labels: Iterable[str], wanted: Iterable[str]) -> bool:
    """Whether ``labels`` include every name in ``wanted``, compared as GitHub does."""
    return {label_key(n) for n in wanted} <= {label_key(n) for n in labels}


def has_any_label(labels: Iterable[str], unwanted: Iterable[str]) -> bool:
    """Whether ``labels`` include any name in ``unwanted``, compared as GitHub does."""
    return not {label_key(n) for n in unwanted}.isdisjoint(label_key(n) for n in labels)


def queue_label(name: str) -> str:
    """The label of the worker API's queue ``name``."""
    return f"{QUEUE_LABEL_PREFIX}{name}"


@dataclass(frozen=True)
class LabelScheme:
    """Maps states to label texts. ``prefix`` is empty by default, so the labels are the original's."""

    prefix: str = ""

    def label(self, state: JobState) -> str:
        return f"{self.prefix}{state.value}"

    @property
    def settings(self) -> str:
        return f"{self.prefix}{SETTINGS_LABEL}"

    @property
    def archived(self) -> str:
        return f"{self.prefix}{ARCHIVED_LABEL}"

    def _status_of(self, name: str) -> JobState | None:
        key, prefix = label_key(name), label_key(self.prefix)
        if not key.startswith(prefix):
            return None
        try:
            return JobState(key[len(prefix) :])
        except ValueError:
            return None

    def state_of(self, labels: Iterable[str]) -> JobState | None:
        """The state a set of labels says, or None when no status label is present.

        When a human left two status labels, the most advanced one wins (completed/failed/cancelled over
        processing over pending), so that a finished job is never run again by accident.
        """
        found = {self._status_of(name) for name in labels}
        for state in (JobState.CANCELLED, JobState.FAILED, JobState.COMPLETED, JobState.PROCESSING):
            if state in found:
                return state
        return JobState.PENDING if JobState.PENDING in found else None

    def is_status(self, name: str) -> bool:
        return self._status_of(name) is not None

    def check_extra(self, name: str) -> None:
        """Raise :class:`InvalidLabel` unless ``name`` may be one of a job's own labels.

        Refused: blank names, spaces around a name, commas (they separate labels in GitHub's filters), more than
        50 characters, and — ignoring case, with or without this scheme's prefix — the status labels, the
        settings and archived labels, ``requeue`` and ``queue:…`` (a job joins a queue through the worker API).
        """
        if not name.strip() or name != name.strip():
            raise InvalidLabel(f"label {name!r} is blank or has spaces around it")
        if len(name) > MAX_LABEL_CHARS or "," in name or "\x00" in name:
            raise InvalidLabel(f"label {name!r} is not a GitHub label: 1-{MAX_LABEL_CHARS} characters, no comma")
        key = label_key(name)
        meanings = {s.value: "a status label" for s in JobState}
        meanings |= {SETTINGS_LABEL: "the settings issue's label", ARCHIVED_LABEL: "the label of a purged job"}
        meanings[REQUEUE_LABEL] = "the label that requeues a job"
        for reserved, meaning in meanings.items():
            if key in (label_key(reserved), label_key(self.prefix + reserved)):
                raise InvalidLabel(f"label {name!r} is reserved (in any letter case): it is {meaning}")
        if key.startswith(QUEUE_LABEL_PREFIX):
            raise InvalidLabel(
                f"label {name!r} is reserved: a job joins a queue through POST /api/v1/queues/{{name}}/jobs"
            )

    def extra(self, labels: Iterable[str]) -> tuple[str, ...]:
        """The labels that are not status labels, in their order."""
        return tuple(name for name in labels if not self.is_status(name))
