"""An in-process store: fast, thread-safe, gone when the process ends. For tests and experiments."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from octoqueue.errors import JobNotFound
from octoqueue.job import Comment, Job, NewJob, Page
from octoqueue.states import JobState, LabelScheme
from octoqueue.stores.base import (
    Clock,
    Store,
    apply_transition,
    checked_setting,
    claim_order,
    claimed,
    expire,
    is_listed,
    is_runnable,
)


class MemoryStore(Store):
    """Jobs in a dict behind one lock. ``memory://`` opens a fresh one each time."""

    def __init__(self, labels: LabelScheme | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(labels, clock=clock)
        self.url = "memory://"
        self.quick_writes = True
        self._lock = threading.RLock()
        self._jobs: dict[int, Job] = {}
        self._comments: dict[int, list[Comment]] = {}
        self._settings: dict[str, Any] = {}
        self._keys: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._comment_ids = itertools.count(1)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryStore:
        return cls(**options)

    def create(self, new: NewJob) -> Job:
        with self._lock:
            if new.idempotency_key is not None and new.idempotency_key in self._keys:
                return self._jobs[self._keys[new.idempotency_key]]
            job = new.to_job(next(self._ids), self.now())
            self._jobs[job.id] = job
            self._comments[job.id] = []
            if new.idempotency_key is not None:
                self._keys[new.idempotency_key] = job.id
            return job

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        with self._lock:
            old = self._jobs.get(job.id)
            if old is not None and old.idempotency_key is not None:
                self._keys.pop(old.idempotency_key, None)
            notes = self._comments.setdefault(job.id, [])
            notes.extend(note.model_copy(update={"id": next(self._comment_ids), "job_id": job.id}) for note in comments)
            stored = job.model_copy(update={"comments": len(notes), "url": None})
            self._jobs[job.id] = stored
            if job.idempotency_key is not None:
                self._keys[job.idempotency_key] = job.id
            top = max(self._jobs)
            self._ids = itertools.count(max(top + 1, next(self._ids)))
            return stored

    def get(self, job_id: int) -> Job:
        with self._lock:
            try:
                return self._jobs[job_id]
            except KeyError:
                raise JobNotFound(job_id) from None

    def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Collection[str] = (),
        open: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        after = int(cursor) if cursor else 0
        wanted = set(states) if states is not None else None
        with self._lock:
            ids = sorted(i for i in self._jobs if i > after)
            found: list[Job] = []
            for job_id in ids:
                job = self._jobs[job_id]
                if not is_listed(job, states=wanted, labels=labels, open=open):
                    continue
                found.append(job)
                if len(found) > limit:
                    break
        more = len(found) > limit
        found = found[:limit]
        return Page(jobs=found, cursor=str(found[-1].id) if more and found else None)

    def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]:
        wanted = set(states)
        with self._lock:
            found = [job for job in self._jobs.values() if job.state in wanted]
        return sorted(found, key=lambda job: (job.updated_at, job.id), reverse=True)[:limit]

    def claim(
        self,
        *,
        worker: str,
        lease: float,
        limit: int = 1,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        exclude_labels: Collection[str] = (),
        exclude_types: Collection[str] = (),
    ) -> list[Job]:
        with self._lock:
            now = self.now()
            runnable = [
                job
                for job in self._jobs.values()
                if is_runnable(
                    job,
                    now,
                    labels=labels,
                    types=types,
                    ids=ids,
                    exclude_labels=exclude_labels,
                    exclude_types=exclude_types,
                )
            ]
            runnable.sort(key=claim_order)
            taken = []
            for job in runnable[:limit]:
                new = claimed(job, worker=worker, lease=lease, now=now)
                self._jobs[job.id] = new
                taken.append(new)
            return taken

    def transition(
        self,
        job_id: int,
        *,
        expected: JobState | Collection[JobState] | None,
        target: JobState,
        attempt: int | None = None,
        **changes: Any,
    ) -> Job:
        with self._lock:
            job = self.get(job_id)
            new = apply_transition(
                job, expected=expected, target=target, attempt=attempt, changes=changes, now=self.now()
            )
            self._jobs[job_id] = new
            return new

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        with self._lock:
            now = self.now()
            expired = [j for j in self._jobs.values() if j.state is JobState.PROCESSING and j.lease_expired(now)]
            recovered = []
            for job in sorted(expired, key=lambda j: j.id)[:limit]:
                new = expire(job, now)
                self._jobs[job.id] = new
                recovered.append(new)
            return recovered

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        wanted = list(states) if states is not None else list(JobState)
        counts = dict.fromkeys(wanted, 0)
        with self._lock:
            for job in self._jobs.values():
                if job.state in counts:
                    counts[job.state] += 1
        return counts

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        with self._lock:
            doomed = [j for j in self._jobs.values() if j.state in states and j.updated_at < older_than]
            for job in doomed:
                del self._jobs[job.id]
                self._comments.pop(job.id, None)
                if job.idempotency_key is not None:
                    self._keys.pop(job.idempotency_key, None)
            return len(doomed)

    def comment(self, job_id: int, body: str) -> Comment:
        with self._lock:
            job = self.get(job_id)
            note = Comment(id=next(self._comment_ids), job_id=job_id, body=body, created_at=self.now())
            self._comments[job_id].append(note)
            self._jobs[job_id] = job.model_copy(update={"comments": job.comments + 1})
            return note

    def comments(self, job_id: int) -> list[Comment]:
        with self._lock:
            self.get(job_id)
            return list(self._comments[job_id])

    def get_setting(self, key: str) -> Any:
        with self._lock:
            return copy.deepcopy(self._settings.get(key))

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        with self._lock:
            value = checked_setting(key, update(copy.deepcopy(self._settings.get(key))))
            if value is None:
                self._settings.pop(key, None)
            else:
                self._settings[key] = copy.deepcopy(value)
            return copy.deepcopy(value)


__all__ = ["MemoryStore"]
