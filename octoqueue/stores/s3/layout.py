"""Where each thing lives in the bucket, and the bytes of each object.

Under the URL's prefix::

    jobs/000000000042.json                  the job (the truth): its record, and a fresh ``rev`` on every write
    comments/000000000042/000003.json       the job's third comment
    keys/<sha256 of the key>.json           an idempotency key: the job number it took and the job to create
    settings/<quoted key>.json              a setting's JSON value
    meta/counter.json                       the next unallocated job number (taken in blocks)
    index/built.json                        when the indexes were last rebuilt from the jobs (gone with index/)
    index/pending/<priority>/<id>.<run_at>  one marker per pending job, in claim order (priority, then id);
                                            run_at (ms, 0 = now) in the key so delayed jobs cost no GET
    index/<state>/<id>                      one marker per job in each other state (a marker's body is a nonce)

Numbers are zero-padded so that S3's key order (LIST) is numeric order.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from octoqueue.job import Comment, Job
from octoqueue.states import JobState

ID_WIDTH = 12
COMMENT_WIDTH = 6
JOBS = "jobs/"
INDEX = "index/"
COUNTER = "meta/counter.json"
INDEX_BUILT = "index/built.json"


def job_key(job_id: int) -> str:
    return f"{JOBS}{job_id:0{ID_WIDTH}d}.json"


def job_id_of(key: str) -> int:
    """The job number in a ``jobs/`` key."""
    return int(key.rsplit("/", 1)[1].split(".", 1)[0])


def comments_prefix(job_id: int) -> str:
    return f"comments/{job_id:0{ID_WIDTH}d}/"


def comment_key(job_id: int, seq: int) -> str:
    return f"{comments_prefix(job_id)}{seq:0{COMMENT_WIDTH}d}.json"


def comment_id(job_id: int, seq: int) -> int:
    """A comment's number, unique in the store: the job's number and the comment's place on it."""
    return job_id * 10**COMMENT_WIDTH + seq


def key_key(idempotency_key: str) -> str:
    return f"keys/{hashlib.sha256(idempotency_key.encode()).hexdigest()}.json"


def setting_key(name: str) -> str:
    return f"settings/{quote(name, safe='')}.json"


def state_prefix(state: JobState) -> str:
    return f"{INDEX}{state.value}/"


def marker_key(job: Job) -> str:
    """The index marker a job has in its current state."""
    assert job.state is not None
    if job.state is JobState.PENDING:
        run_at = int(job.run_at.timestamp() * 1000) if job.run_at is not None else 0
        return f"{state_prefix(job.state)}{job.priority}/{job.id:0{ID_WIDTH}d}.{run_at}"
    return f"{state_prefix(job.state)}{job.id:0{ID_WIDTH}d}"


@dataclass(frozen=True)
class Marker:
    """What an index key says about its job."""

    key: str
    etag: str
    job_id: int
    run_at_ms: int
    last_modified: datetime


def read_marker(key: str, etag: str, last_modified: datetime) -> Marker | None:
    """Parse a marker key (None for a key this layout did not write, such as ``index/built.json``)."""
    parts = key.split("/")
    try:
        if len(parts) == 4 and parts[1] == JobState.PENDING.value:
            number, _, run_at = parts[3].partition(".")
            return Marker(key, etag, int(number), int(run_at or 0), last_modified)
        if len(parts) == 3 and parts[1] != JobState.PENDING.value:
            return Marker(key, etag, int(parts[2]), 0, last_modified)
    except ValueError:
        return None
    return None


def dump_job(job: Job, marker_etag: str) -> bytes:
    """The job's object: its record, the ETag of its index marker (so whoever moves the job deletes that marker
    only if nobody rewrote it since), and ``rev``, which makes every write's bytes, so its ETag, new even when the
    record repeats: an ETag never comes back, so a compare-and-swap cannot be fooled by A-B-A."""
    record = job.model_dump(mode="json", exclude={"url"})
    record["marker_etag"] = marker_etag
    record["rev"] = uuid.uuid4().hex
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def load_job(body: bytes) -> tuple[Job, str]:
    """The job and its marker's ETag."""
    record = json.loads(body)
    record.pop("rev", None)
    marker_etag = str(record.pop("marker_etag", ""))
    return Job.model_validate(record), marker_etag


def marker_body() -> bytes:
    """A marker's bytes: a nonce, so every marker written has an ETag of its own (deletes name it)."""
    return uuid.uuid4().hex.encode()


def dump_comment(note: Comment) -> bytes:
    return note.model_dump_json().encode()


def load_comment(body: bytes) -> Comment:
    return Comment.model_validate_json(body)


def dump_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
