"""An example octoqueue store: every job in one JSON file (``jsonfile:///path/to/jobs.json``).

It is the smallest complete store, written as docs/design.md ("Writing a store") says: each verb reads the file,
changes it and writes it back whole, under one lock, so every change is atomic for the threads of one process (not
for several processes: there is no file lock). The job rules come from ``octoqueue.stores.base`` — which jobs a claim
may take, what a claim and a transition make of a job, what an expired lease becomes — so the store only keeps
records. Time is read only through :meth:`Store.now`, so the contract kit can move it.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from octoqueue.errors import ConfigurationError, JobNotFound
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

EMPTY: dict[str, Any] = {"next_id": 1, "next_comment": 1, "jobs": {}, "comments": {}, "keys": {}, "settings": {}}


class JsonFileStore(Store):
    """Jobs, comments, idempotency keys and settings in one JSON file, read and written whole by every verb."""

    def __init__(self, path: str | Path, *, labels: LabelScheme | None = None, clock: Clock | None = None) -> None:
        super().__init__(labels, clock=clock)
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ConfigurationError(f"the folder for the JSON file store does not exist: {self.path.parent}")
        self.url = f"jsonfile://{self.path}"
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> JsonFileStore:
        path = unquote(urlsplit(url).path)
        if not path:
            raise ConfigurationError(f"{url!r} names no file: use jsonfile:///path/to/jobs.json")
        return cls(path, **options)

    @contextmanager
    def _data(self, *, write: bool = False) -> Iterator[dict[str, Any]]:
        """The file's content, under the lock; written back (atomically, by a rename) when ``write``."""
        with self._lock:
            data = json.loads(self.path.read_text()) if self.path.exists() else copy.deepcopy(EMPTY)
            yield data
            if write:
                temporary = self.path.with_name(self.path.name + ".tmp")
                temporary.write_text(json.dumps(data))
                os.replace(temporary, self.path)

    @staticmethod
    def _job(data: dict[str, Any], job_id: int) -> Job:
        try:
            return Job.model_validate(data["jobs"][str(job_id)])
        except KeyError:
            raise JobNotFound(job_id) from None

    @staticmethod
    def _put(data: dict[str, Any], job: Job) -> Job:
        data["jobs"][str(job.id)] = job.model_dump(mode="json")
        return job

    def _jobs(self, data: dict[str, Any]) -> list[Job]:
        return sorted((Job.model_validate(raw) for raw in data["jobs"].values()), key=lambda job: job.id)

    # -- jobs -------------------------------------------------------------------------------------------------
    def create(self, new: NewJob) -> Job:
        with self._data(write=True) as data:
            key = new.idempotency_key
            if key is not None and key in data["keys"]:
                return self._job(data, data["keys"][key])
            job = new.to_job(data["next_id"], self.now())
            data["next_id"] += 1
            data["comments"][str(job.id)] = []
            if key is not None:
                data["keys"][key] = job.id
            return self._put(data, job)

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        with self._data(write=True) as data:
            old = data["jobs"].get(str(job.id))
            if old is not None and old.get("idempotency_key") is not None:
                data["keys"].pop(old["idempotency_key"], None)
            notes = data["comments"].setdefault(str(job.id), [])
            for note in comments:
                notes.append(
                    note.model_copy(update={"id": data["next_comment"], "job_id": job.id}).model_dump(mode="json")
                )
                data["next_comment"] += 1
            if job.idempotency_key is not None:
                data["keys"][job.idempotency_key] = job.id
            data["next_id"] = max(data["next_id"], job.id + 1)
            return self._put(data, job.model_copy(update={"comments": len(notes), "url": None}))

    def get(self, job_id: int) -> Job:
        with self._data() as data:
            return self._job(data, job_id)

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
        with self._data() as data:
            found = [
                job
                for job in self._jobs(data)
                if job.id > after and is_listed(job, states=states, labels=labels, open=open)
            ]
        page = found[:limit]
        return Page(jobs=page, cursor=str(page[-1].id) if len(found) > limit else None)

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
        with self._data(write=True) as data:
            now = self.now()
            runnable = [
                j
                for j in self._jobs(data)
                if is_runnable(
                    j,
                    now,
                    labels=labels,
                    types=types,
                    ids=ids,
                    exclude_labels=exclude_labels,
                    exclude_types=exclude_types,
                )
            ]
            return [
                self._put(data, claimed(job, worker=worker, lease=lease, now=now))
                for job in sorted(runnable, key=claim_order)[:limit]
            ]

    def transition(
        self,
        job_id: int,
        *,
        expected: JobState | Collection[JobState] | None,
        target: JobState,
        attempt: int | None = None,
        **changes: Any,
    ) -> Job:
        with self._data(write=True) as data:
            job = self._job(data, job_id)
            moved = apply_transition(
                job, expected=expected, target=target, attempt=attempt, changes=changes, now=self.now()
            )
            return self._put(data, moved)

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        with self._data(write=True) as data:
            now = self.now()
            expired = [j for j in self._jobs(data) if j.state is JobState.PROCESSING and j.lease_expired(now)]
            return [self._put(data, expire(job, now)) for job in expired[:limit]]

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState if states is None else states, 0)
        with self._data() as data:
            for job in self._jobs(data):
                if job.state in counts:
                    counts[job.state] += 1
        return counts

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        with self._data(write=True) as data:
            doomed = [j for j in self._jobs(data) if j.state in states and j.updated_at < older_than]
            for job in doomed:
                del data["jobs"][str(job.id)], data["comments"][str(job.id)]
                if job.idempotency_key is not None:
                    data["keys"].pop(job.idempotency_key, None)
            return len(doomed)

    # -- comments ---------------------------------------------------------------------------------------------
    def comment(self, job_id: int, body: str) -> Comment:
        with self._data(write=True) as data:
            job = self._job(data, job_id)
            note = Comment(id=data["next_comment"], job_id=job_id, body=body, created_at=self.now())
            data["next_comment"] += 1
            data["comments"][str(job_id)].append(note.model_dump(mode="json"))
            self._put(data, job.model_copy(update={"comments": job.comments + 1}))
            return note

    def comments(self, job_id: int) -> list[Comment]:
        with self._data() as data:
            self._job(data, job_id)
            return [Comment.model_validate(raw) for raw in data["comments"][str(job_id)]]

    # -- settings ---------------------------------------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        with self._data() as data:
            return data["settings"].get(key)

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        with self._data(write=True) as data:
            value = checked_setting(key, update(data["settings"].get(key)))
            if value is None:
                data["settings"].pop(key, None)
            else:
                data["settings"][key] = value
            return value
