"""A queue whose reads come from a local mirror and whose writes go to the real store (the server's
``--read-mirror``): reading a GitHub queue — ``GET /jobs/{id}``, listings, counts, the dashboard — then costs no
GitHub rate limit.

:class:`ReadFromMirror` wraps two stores. Every write (create, claim, transition, comment, purge, settings) goes to
the primary, and the record it answers is written into the mirror at once (:meth:`Store.import_job`), so this
process reads its own writes. A background thread keeps the mirror in step with what other processes change in
the primary (:class:`~octoqueue.mirror.Mirror`: one full copy, then a poll every ``interval`` seconds — on GitHub a
conditional GET, free when nothing changed). Until the first copy has finished, reads go to the primary. Jobs read
from the mirror lag the primary's other writers by up to ``interval`` seconds and have no ``url``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from octoqueue.errors import JobNotFound, OctoqueueError
from octoqueue.job import Comment, Job, NewJob, Page
from octoqueue.mirror import Mirror
from octoqueue.states import JobState
from octoqueue.stores.base import Arrival, Move, Store

log = logging.getLogger("octoqueue.mirror")


class ReadFromMirror(Store):
    """Reads from ``mirror``, writes to ``primary`` (see the module docstring). Every other attribute
    (``remove_label``, ``rate_limit``, ``permission_of``, ...) is the primary's."""

    def __init__(self, primary: Store, mirror: Store, *, interval: float = 2.0) -> None:
        self.primary = primary
        self.mirror = mirror
        self.labels = primary.labels
        self.url = primary.url
        self.batches_transitions = primary.batches_transitions
        self.quick_writes = primary.quick_writes
        self.wait_poll_interval = min(primary.wait_poll_interval, interval)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._copier = Mirror(primary, mirror, wait=self._stop.wait)
        self._thread = threading.Thread(
            target=self._follow, args=(interval,), name="octoqueue-read-mirror", daemon=True
        )
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.primary, name)

    @property
    def ready(self) -> bool:
        """Whether the first full copy has finished (reads come from the mirror from then on)."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def refresh(self) -> None:
        """Copy into the mirror what changed in the primary, now (the background thread does every ``interval``)."""
        self._copier.poll()

    def _follow(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self._copier.run()
                self._ready.set()
                self._copier.follow(interval=interval, stop=self._stop.is_set, full_pass=False)
            except OctoqueueError as exc:  # the primary unreachable, a rate limit: try again later
                log.warning("the read mirror %s could not follow %s: %s", self.mirror.url, self.primary.url, exc)
                self._stop.wait(interval)

    def _reader(self) -> Store:
        return self.mirror if self._ready.is_set() else self.primary

    def _copied(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        """Write what the primary answered into the mirror (this process reads its own writes)."""
        try:
            self.mirror.import_job(job, comments)
        except OctoqueueError as exc:
            log.warning("job %d: not copied into the read mirror (%s); the next poll copies it", job.id, exc)
        return job

    # -- reads ------------------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.primary.now()

    def get(self, job_id: int) -> Job:
        try:
            return self._reader().get(job_id)
        except JobNotFound:
            if self._reader() is self.primary:
                raise
            return self._copied(self.primary.get(job_id))  # not copied yet: ask the primary once

    def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Collection[str] = (),
        open: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        return self._reader().list_jobs(states=states, labels=labels, open=open, cursor=cursor, limit=limit)

    def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]:
        return self._reader().recently_changed(states, limit=limit)

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        return self._reader().count(states)

    def comments(self, job_id: int) -> list[Comment]:
        return self._reader().comments(job_id)

    # -- writes -----------------------------------------------------------------------------------------------
    def create(self, new: NewJob) -> Job:
        return self._copied(self.primary.create(new))

    def create_many(self, items: Sequence[NewJob]) -> list[Job]:
        return [self._copied(job) for job in self.primary.create_many(items)]

    def claim(self, **options: Any) -> list[Job]:
        return [self._copied(job) for job in self.primary.claim(**options)]

    def transition(
        self,
        job_id: int,
        *,
        expected: JobState | Collection[JobState] | None,
        target: JobState,
        attempt: int | None = None,
        **changes: Any,
    ) -> Job:
        moved = self.primary.transition(job_id, expected=expected, target=target, attempt=attempt, **changes)
        return self._copied(moved)

    def transition_many(self, moves: Sequence[Move]) -> list[Job | Exception]:
        return [r if isinstance(r, Exception) else self._copied(r) for r in self.primary.transition_many(moves)]

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        return [self._copied(job) for job in self.primary.recover_expired(limit=limit)]

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        removed = self.primary.purge(states=states, older_than=older_than)
        self.mirror.purge(states=states, older_than=older_than)
        return removed

    def comment(self, job_id: int, body: str) -> Comment:
        note = self.primary.comment(job_id, body)
        with contextlib.suppress(JobNotFound):  # a job not copied yet comes with this comment at the next poll
            self._copied(self.mirror.get(job_id), [note])
        return note

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        return self._copied(self.primary.import_job(job, comments), comments)

    def get_setting(self, key: str) -> Any:
        return self.primary.get_setting(key)

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        return self.primary.update_setting(key, update)

    def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        return self.primary.watch_arrivals(callback)

    async def watch_arrivals_on_loop(self, callback: Callable[[Arrival], None]) -> Callable[[], Awaitable[None]] | None:
        return await self.primary.watch_arrivals_on_loop(callback)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.primary.close()
        self.mirror.close()


__all__ = ["ReadFromMirror"]
