"""Pausing claims: for the whole queue, or for the jobs carrying a label (a named queue is its ``queue:<name>`` label).

A pause stops claims only: enqueues are still taken, jobs in hand finish, and a resume lets workers take the jobs
that waited. The state is one setting, ``paused``, written with :meth:`Store.update_setting` (compare-and-set), so
every store keeps it and every process sharing the store sees the same state::

    {"queue": "2026-12-01T02:00:00+00:00", "labels": {"images": "2026-12-01T02:05:00+00:00"}}

(each value: when the pause began). On GitHub it sits in the octoqueue settings issue, where a maintainer can read
it and remove a pause by hand. A process reads the setting at most once per ``ttl`` seconds (a claim does not
re-read it each time: on GitHub each read is a request), so a pause made elsewhere takes effect within ``ttl``; a
pause made through this process's Queue takes effect at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from octoqueue.errors import InvalidLabel
from octoqueue.states import label_key
from octoqueue.stores.base import Store

#: The setting that holds the pause state.
SETTING = "paused"
#: Seconds a process trusts the pause state it read last.
DEFAULT_TTL = 5.0
#: GitHub's longest label name.
_LABEL_CHARS = 50


@dataclass(frozen=True)
class Pauses:
    """What is paused: ``queue`` (when the whole queue was paused, or None) and ``labels`` (label -> since when)."""

    queue: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_setting(cls, value: Any) -> Pauses:
        """The state a stored value says, read leniently (a person may have edited it by hand on GitHub)."""
        if not isinstance(value, dict):
            return cls()
        since = value.get("queue")
        labels = value.get("labels")
        return cls(
            queue=str(since) if since else None,
            labels={str(k): str(v) for k, v in labels.items() if v} if isinstance(labels, dict) else {},
        )

    def to_setting(self) -> dict[str, Any] | None:
        """The value to store (None when nothing is paused: the setting is removed)."""
        if self.queue is None and not self.labels:
            return None
        value: dict[str, Any] = {}
        if self.queue is not None:
            value["queue"] = self.queue
        if self.labels:
            value["labels"] = dict(sorted(self.labels.items()))
        return value

    @property
    def any(self) -> bool:
        return self.queue is not None or bool(self.labels)

    def stops(self, labels: Collection[str]) -> bool:
        """Whether a claim for jobs carrying all of ``labels`` gets nothing: the queue, or one of them, is paused."""
        return self.queue is not None or not {label_key(n) for n in labels}.isdisjoint(self.keys)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(label_key(n) for n in self.labels)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json`` and the HTTP API: ``{"queue": bool, "since": ..., "labels": {label: since}}``."""
        return {"queue": self.queue is not None, "since": self.queue, "labels": dict(sorted(self.labels.items()))}


def check_label(label: str) -> str:
    """``label`` when it can be paused; else :class:`~octoqueue.errors.InvalidLabel` (a ValueError)."""
    if not label or label != label.strip() or "," in label or len(label) > _LABEL_CHARS:
        raise InvalidLabel(f"cannot pause label {label!r}: give a label name (1-50 characters, no comma)")
    return label


class PauseControl:
    """A store's pause state, cached for ``ttl`` seconds. Safe to share between threads."""

    def __init__(self, store: Store, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock  # seconds, monotonic: when a read goes stale
        self._lock = threading.Lock()
        self._cached: Pauses | None = None
        self._read_at = 0.0

    def current(self) -> Pauses:
        """The pause state, read from the store at most once per ``ttl`` seconds."""
        with self._lock:
            if self._cached is not None and self._clock() - self._read_at < self.ttl:
                return self._cached
        return self._remember(Pauses.from_setting(self.store.get_setting(SETTING)))

    @property
    def read_at(self) -> float | None:
        """When the state was last read or changed through this control (on its clock); None before that."""
        with self._lock:
            return self._read_at if self._cached is not None else None

    def refresh_ahead(self, seconds: float) -> None:
        """Read the state now if the cached one goes stale within ``seconds``. A claimer about to wait that long calls
        it, so that the claim an arrival wakes finds the state fresh and goes straight to the store's claim, without
        a settings read first (one more round trip on the wake-up). Reads no more often than :meth:`current` would:
        once per ``ttl``, earlier. With a ``ttl`` of 0 every claim reads anyway: nothing to do."""
        if self.stale_within(seconds):
            self.read()

    def stale_within(self, seconds: float) -> bool:
        """Whether the cached state goes stale within ``seconds`` (or was never read); never with a ``ttl`` of 0,
        where every claim reads. No store call: an event loop may ask before it sends a thread to read."""
        if self.ttl <= 0:
            return False
        with self._lock:
            return self._cached is None or self._clock() - self._read_at + seconds >= self.ttl

    def read(self) -> Pauses:
        """The pause state as the store holds it now (no cache)."""
        return self._remember(Pauses.from_setting(self.store.get_setting(SETTING)))

    def pause(self, label: str | None = None) -> Pauses:
        """Pause the whole queue, or ``label``'s jobs; pausing what is paused changes nothing."""
        name = None if label is None else check_label(label)
        since = self.store.now().isoformat(timespec="seconds")

        def paused(value: Any) -> Any:
            now = Pauses.from_setting(value)
            if name is None:
                return Pauses(now.queue or since, now.labels).to_setting()
            if label_key(name) in now.keys:
                return now.to_setting()
            return Pauses(now.queue, {**now.labels, name: since}).to_setting()

        return self._remember(Pauses.from_setting(self.store.update_setting(SETTING, paused)))

    def resume(self, label: str | None = None) -> Pauses:
        """Resume the whole queue (its label pauses stay), or ``label``'s jobs."""

        def resumed(value: Any) -> Any:
            now = Pauses.from_setting(value)
            if label is None:
                return Pauses(None, now.labels).to_setting()
            key = label_key(label)
            return Pauses(now.queue, {k: v for k, v in now.labels.items() if label_key(k) != key}).to_setting()

        return self._remember(Pauses.from_setting(self.store.update_setting(SETTING, resumed)))

    def _remember(self, pauses: Pauses) -> Pauses:
        with self._lock:
            self._cached, self._read_at = pauses, self._clock()
        return pauses


__all__ = ["DEFAULT_TTL", "SETTING", "PauseControl", "Pauses", "check_label"]
