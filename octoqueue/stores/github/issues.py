"""How a GitHub issue maps to a job, how a job is written back, and the names of octoqueue's git refs.

Pure functions, no I/O: :func:`issue_record` reads an issue as GitHub's REST API returns it (a dict), and never
raises for what a person may have done to the issue by hand (edited the body, removed labels, closed it).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from octoqueue import body as issue_body
from octoqueue.errors import JobTooLarge
from octoqueue.job import Job
from octoqueue.states import FINISHED, JobState, LabelScheme, label_key

#: Label colours (hex, no #) and descriptions, created once per store when missing.
STATE_COLOURS = {
    JobState.PENDING: ("fbca04", "octoqueue: waiting for a worker"),
    JobState.PROCESSING: ("1d76db", "octoqueue: a worker holds it"),
    JobState.COMPLETED: ("0e8a16", "octoqueue: done"),
    JobState.FAILED: ("d73a4a", "octoqueue: failed for good"),
    JobState.CANCELLED: ("9e9e9e", "octoqueue: cancelled"),
}
SETTINGS_COLOUR = ("5319e7", "octoqueue: the queue's settings (not a job)")
ARCHIVED_COLOUR = ("cfd3d7", "octoqueue: a purged job (no longer listed)")

Kind = Literal["job", "pull_request", "settings", "archived"]

_META_RE = re.compile(r"\n*<!--\s*octoqueue:meta\s*\{.*?\}\s*-->\n?", re.DOTALL)

#: Job fields read from the body's metadata, and how to read each.
_INT_FIELDS = ("attempt", "attempt_base", "max_attempts", "priority")
_STR_FIELDS = ("type", "worker", "last_error", "idempotency_key")
_TIME_FIELDS = ("run_at", "lease_expires_at", "started_at")


@dataclass(frozen=True)
class Record:
    """An issue read as a job, plus what the store needs to write it back.

    ``gen`` is the job's *pending generation* (metadata key ``gen``): it counts the exclusive moves out of pending
    that did not start an attempt (cancel, complete or fail a pending job...), so that every pending spell of a job
    has its own claim ref even when ``attempt`` did not change.
    """

    job: Job
    body: str
    gen: int
    kind: Kind
    #: The random token the creating POST put in the metadata; kept for good, so that a client retrying an
    #: ambiguous create finds the issue even after a worker claimed it and rewrote the body.
    create_token: str | None = None
    #: The job's creation time when it was imported (metadata key ``created_at``; GitHub's own is the import's),
    #: kept for good as the create-token is.
    imported_created: str | None = None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _meta_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The Job fields in ``meta``, leaving out values a person mangled (wrong types)."""
    fields: dict[str, Any] = {}
    for name in _INT_FIELDS:
        value = meta.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            fields[name] = value
    for name in _STR_FIELDS:
        value = meta.get(name)
        if isinstance(value, str):
            fields[name] = value
    for name in _TIME_FIELDS:
        parsed = parse_time(meta.get(name))
        if parsed is not None:
            fields[name] = parsed
    timeout = meta.get("timeout")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        fields["timeout"] = float(timeout)
    if "result" in meta:
        fields["result"] = meta["result"]
    return fields


def issue_record(item: dict[str, Any], scheme: LabelScheme) -> Record:
    """Read one issue (as the REST API returns it) as a job record. Never raises for hand-edited issues.

    The state is the status label's (:meth:`LabelScheme.state_of`); an issue closed by a person without a
    finished label reads as cancelled. Pull requests, the settings issue and archived (purged) jobs come back
    with ``kind`` set so that callers can skip them.
    """
    names = tuple(str(label["name"] if isinstance(label, dict) else label) for label in item.get("labels") or ())
    kind: Kind = "job"
    if "pull_request" in item and item["pull_request"] is not None:
        kind = "pull_request"
    elif any(label_key(name) == label_key(scheme.settings) for name in names):
        kind = "settings"
    elif any(label_key(name) == label_key(scheme.archived) for name in names):
        kind = "archived"
    text = item.get("body") or ""
    parsed = issue_body.parse(text)
    is_open = item.get("state", "open") == "open"
    state = scheme.state_of(names)
    if not is_open and state not in FINISHED:
        state = JobState.CANCELLED
    # An imported job keeps its times in the metadata: its creation for good, its last change until octoqueue
    # next writes the issue (which drops ``updated_at`` from the metadata: GitHub's own is right from then on).
    created = parse_time(parsed.meta.get("created_at")) or parse_time(item.get("created_at")) or datetime.now(UTC)
    updated = parse_time(parsed.meta.get("updated_at")) or parse_time(item.get("updated_at")) or created
    fields = _meta_fields(parsed.meta)
    fields.setdefault("max_attempts", 1)
    gen = parsed.meta.get("gen")
    extras = scheme.extra(names)
    order = parsed.meta.get("labels")
    if isinstance(order, list) and len(extras) > 1:
        # GitHub sorts an issue's labels by name; the metadata remembers the order the job was given.
        rank = {str(name): i for i, name in enumerate(order)}
        extras = tuple(sorted(extras, key=lambda name: rank.get(name, len(rank))))
    job = Job(
        id=int(item["number"]),
        title=str(item.get("title") or ""),
        data=parsed.data,
        state=state,
        labels=extras,
        open=is_open,
        created_at=created,
        updated_at=updated,
        comments=int(item.get("comments") or 0),
        body_error=parsed.error,
        url=item.get("html_url"),
        **fields,
    )
    token = parsed.meta.get("create_token")
    imported = parsed.meta.get("created_at")
    return Record(
        job=job,
        body=text,
        gen=gen if isinstance(gen, int) and gen > 0 else 0,
        kind=kind,
        create_token=token if isinstance(token, str) else None,
        imported_created=imported if isinstance(imported, str) else None,
    )


def render_meta(meta: dict[str, Any]) -> str:
    text = json.dumps(meta, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    return "<!-- octoqueue:meta " + text.replace("--", "-\\u002d") + " -->\n"


def job_meta(job: Job, gen: int, **extra: Any) -> dict[str, Any]:
    """``job.meta()`` plus what only this store keeps: the pending generation, the labels' order, ``extra``."""
    meta = job.meta()
    if gen:
        meta["gen"] = gen
    if len(job.labels) > 1:
        meta["labels"] = list(job.labels)
    meta.update({k: v for k, v in extra.items() if v is not None})
    return meta


def body_for(record: Record, job: Job, gen: int) -> str:
    """The body to write for ``job``: re-rendered, or — when a person left data that does not parse — their
    text kept as it is with only octoqueue's metadata block replaced."""
    meta = job_meta(job, gen, create_token=record.create_token, created_at=record.imported_created)
    if record.job.body_error is None:
        return issue_body.render(job.data, meta)
    text = _META_RE.sub("\n", record.body).rstrip() + "\n\n" + render_meta(meta)
    if len(text) > issue_body.MAX_BODY_CHARS:
        raise JobTooLarge(f"the issue body would exceed GitHub's {issue_body.MAX_BODY_CHARS:,} characters")
    return text


def patch_for(scheme: LabelScheme, record: Record, job: Job, gen: int) -> dict[str, Any]:
    """The one PATCH that writes ``job``: labels (the whole set), open/closed with its reason, and body."""
    assert job.state is not None
    data: dict[str, Any] = {
        "labels": [scheme.label(job.state), *job.labels],
        "state": "open" if job.state.is_open else "closed",
        "body": body_for(record, job, gen),
    }
    if job.state.state_reason is not None:
        data["state_reason"] = job.state.state_reason
    return data


# -- ref names -------------------------------------------------------------------------------------------------
REF_ROOT = "refs/octoqueue"


def claim_ref(number: int, next_attempt: int, gen: int) -> str:
    """The ref whose creation wins the move out of pending spell (``next_attempt``, ``gen``) of issue ``number``.

    A claim makes attempt ``next_attempt``; any other move out of that pending spell takes the same ref, so a
    claim and a cancel can never both win.
    """
    suffix = f"-g{gen}" if gen else ""
    return f"{REF_ROOT}/claims/{number}-{next_attempt}{suffix}"


def expired_ref(number: int, attempt: int, lease_expires_at: datetime) -> str:
    """The ref whose creation wins an expired lease (one per lease: a renewal starts a new one)."""
    millis = int(lease_expires_at.timestamp() * 1000)
    return f"{REF_ROOT}/expired/{number}-{attempt}-{millis}"


def _slug(prefix: str) -> str:
    return hashlib.sha256(prefix.encode()).hexdigest()[:12] if prefix else "default"


def key_ref(prefix: str, key: str) -> str:
    """The ref that makes one job per idempotency key."""
    digest = hashlib.sha256(f"{prefix}\0{key}".encode()).hexdigest()[:40]
    return f"{REF_ROOT}/keys/{digest}"


def key_job_ref(prefix: str, key: str, number: int) -> str:
    """Records which issue holds an idempotency key, so a second create finds it in one request."""
    digest = hashlib.sha256(f"{prefix}\0{key}".encode()).hexdigest()[:40]
    return f"{REF_ROOT}/keyjobs/{digest}-{number}"


def key_create_token(taken: str) -> str:
    """The create-token of the issue made under key ref ``taken`` (``key_ref``'s name or a rescue name after it).

    Derived from the name, not random, so whoever rescues the name after a creator died can look for the issue
    that creator may have made before it could record it (``refs/…/keyjobs/``).
    """
    return hashlib.sha256(taken.encode()).hexdigest()[:16]


def settings_ref(prefix: str, number: int, revision: int) -> str:
    """The ref whose creation wins the right to write revision ``revision + 1`` of settings issue ``number``."""
    return f"{REF_ROOT}/settings/{_slug(prefix)}-{number}-{revision}"


def settings_issue_ref(prefix: str, number: int) -> str:
    """The ref that names issue ``number`` as the store's settings issue (written once, by the store only)."""
    return f"{REF_ROOT}/settings-issue/{_slug(prefix)}-{number}"


def settings_create_ref(prefix: str) -> str:
    """The ref whose creation wins the right to create the settings issue."""
    return f"{REF_ROOT}/settings-issue/{_slug(prefix)}-new"
