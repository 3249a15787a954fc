"""Encrypted payloads: job data, results, errors and octoqueue's comments sealed before they reach any store.

With ``OCTOQUEUE_ENCRYPTION_KEY`` set (or ``Queue(encryption_keys=...)``), a :class:`Queue` wraps its store in a
:class:`SealedStore`. What it writes is sealed with Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``):
the job's data and result become an envelope ``{"encrypted": "octoqueue/fernet", "ciphertext": ...}`` (so an
issue body says the job is encrypted and shows no data), error texts and comments become ciphertext with a line
saying so. What it reads is opened again, so the queue core, handlers and HTTP workers see plain values.

Several keys, comma-separated and newest first, allow rotation: the first key seals, every key opens. Keep an old
key until no job sealed with it remains. Titles, labels, types, priorities and idempotency keys are not sealed:
they steer the queue, and stores must read them.

A process without the key (or with none of the right keys) never runs a sealed job with garbage: its claim fails
the job with an error saying the key is missing; a person who adds the key requeues it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from octoqueue.errors import ConfigurationError
from octoqueue.job import Comment, Job, NewJob, Page
from octoqueue.states import JobState
from octoqueue.stores.base import Arrival, Move, Store

#: The environment variable holding the keys (comma-separated, newest first).
KEY_ENV = "OCTOQUEUE_ENCRYPTION_KEY"
SCHEME = "octoqueue/fernet"
_TEXT_PREFIX = "octoqueue-encrypted:"
_COMMENT_HEAD = "🔒 Encrypted by octoqueue: only a process holding the queue's key can read this comment."
_COMMENT = re.compile(r"\A" + re.escape(_COMMENT_HEAD) + r"\n\n`([A-Za-z0-9_=-]+)`\s*\Z")

MISSING_KEY = f"its data is encrypted and this process has no key ({KEY_ENV})"
WRONG_KEY = f"its data is encrypted with a key this process does not have ({KEY_ENV})"


def is_sealed(value: Any) -> bool:
    """Whether ``value`` is a sealed envelope (data or result)."""
    return isinstance(value, dict) and value.get("encrypted") == SCHEME and isinstance(value.get("ciphertext"), str)


def new_key() -> str:
    """A fresh key for ``OCTOQUEUE_ENCRYPTION_KEY``."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def split_keys(text: str) -> list[str]:
    """``"new,old"`` -> ``["new", "old"]`` (newest first, blanks dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def keys_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The keys in ``OCTOQUEUE_ENCRYPTION_KEY`` ([] when it is not set)."""
    text = (os.environ if env is None else env).get(KEY_ENV)
    return [] if text is None else keys_from_text(text, KEY_ENV)


def keys_from_text(text: str, source: str = "encryption_keys") -> list[str]:
    """The keys in ``text``; :class:`ConfigurationError` when it holds none: a key that was meant to be set but came
    out empty (an unset secret, say) must not silently mean "store everything in clear"."""
    keys = split_keys(text)
    if not keys:
        raise ConfigurationError(
            f"{source} is set but holds no key ({text!r}): give a key (`octoqueue new-key` makes one), or unset it "
            "to store jobs unencrypted"
        )
    return keys


class Sealer:
    """Seals and opens values with a list of keys: the first seals, all open."""

    def __init__(self, keys: Sequence[str]) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        if not keys:
            raise ConfigurationError(f"{KEY_ENV}: no key given")
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except ValueError:
                raise ConfigurationError(
                    f"{KEY_ENV}: key {number} is not a Fernet key (32 url-safe base64-encoded bytes); "
                    "make one with `octoqueue new-key`"
                ) from None
        self._fernet = MultiFernet(fernets)
        # A key of its own for digests, derived from the sealing key (never the sealing key itself).
        self._digest_key = hmac.new(keys[0].encode(), b"octoqueue/digest", hashlib.sha256).digest()

    def digest(self, text: str) -> str:
        """A keyed digest (HMAC-SHA256, hex) of ``text``: equal texts give equal digests, but without the key
        nobody can test a guess against one. It follows the newest key, so it changes when the keys rotate."""
        return hmac.new(self._digest_key, text.encode(), hashlib.sha256).hexdigest()

    def _seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def _open(self, token: str) -> str | None:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None

    # -- values (data, results) ---------------------------------------------------------------------------------
    def seal(self, value: Any) -> Any:
        if value is None or is_sealed(value):
            return value
        return {"encrypted": SCHEME, "ciphertext": self._seal(json.dumps(value, ensure_ascii=False))}

    def open(self, value: Any) -> tuple[Any, bool]:
        """``(plain value, True)``, or ``(value unchanged, False)`` when no key opens it."""
        if not is_sealed(value):
            return value, True
        text = self._open(value["ciphertext"])
        return (value, False) if text is None else (json.loads(text), True)

    # -- texts (errors) and comments ------------------------------------------------------------------------------
    def seal_text(self, text: str | None) -> str | None:
        if text is None or text.startswith(_TEXT_PREFIX):
            return text
        return _TEXT_PREFIX + self._seal(text)

    def open_text(self, text: str | None) -> str | None:
        if text is None or not text.startswith(_TEXT_PREFIX):
            return text
        opened = self._open(text[len(_TEXT_PREFIX) :])
        return text if opened is None else opened

    def seal_comment(self, body: str) -> str:
        return f"{_COMMENT_HEAD}\n\n`{self._seal(body)}`"

    def open_comment(self, body: str) -> str:
        match = _COMMENT.match(body)
        if match is None:
            return body  # written by a person (a ChatOps command, say): never sealed
        opened = self._open(match.group(1))
        return body if opened is None else opened


class SealedStore(Store):
    """A store seen through a :class:`Sealer`: seals what goes in, opens what comes out. Every other attribute
    (``update_setting``, ``remove_label``, ``rate_limit``, ...) is the wrapped store's."""

    def __init__(self, inner: Store, sealer: Sealer) -> None:
        self.inner = inner
        self.sealer = sealer
        self.batches_transitions = inner.batches_transitions
        self.batches_claims = inner.batches_claims
        self.quick_writes = inner.quick_writes
        self.labels = inner.labels
        self.url = inner.url

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # -- sealing and opening --------------------------------------------------------------------------------------
    def _open_job(self, job: Job) -> Job:
        data, readable = self.sealer.open(job.data)
        result, _ = self.sealer.open(job.result)
        update: dict[str, Any] = {"data": data, "result": result, "last_error": self.sealer.open_text(job.last_error)}
        if not readable and job.body_error is None:
            update["body_error"] = WRONG_KEY
        return job.model_copy(update=update)

    def _open_jobs(self, jobs: list[Job]) -> list[Job]:
        return [self._open_job(job) for job in jobs]

    def _seal_new(self, new: NewJob) -> NewJob:
        return new.model_copy(update={"data": self.sealer.seal(new.data)})

    def _seal_changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        sealed = dict(changes)
        if "result" in sealed:
            sealed["result"] = self.sealer.seal(sealed["result"])
        if "last_error" in sealed:
            sealed["last_error"] = self.sealer.seal_text(sealed["last_error"])
        return sealed

    # -- the contract, through the seal ---------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.inner.now()

    def create(self, new: NewJob) -> Job:
        return self._open_job(self.inner.create(self._seal_new(new)))

    def create_many(self, items: Sequence[NewJob]) -> list[Job]:
        return self._open_jobs(self.inner.create_many([self._seal_new(item) for item in items]))

    def get(self, job_id: int) -> Job:
        return self._open_job(self.inner.get(job_id))

    def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Collection[str] = (),
        open: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        page = self.inner.list_jobs(states=states, labels=labels, open=open, cursor=cursor, limit=limit)
        return Page(jobs=self._open_jobs(page.jobs), cursor=page.cursor)

    def claim(self, **options: Any) -> list[Job]:
        return self._open_jobs(self.inner.claim(**options))

    def transition(
        self,
        job_id: int,
        *,
        expected: JobState | Collection[JobState] | None,
        target: JobState,
        attempt: int | None = None,
        **changes: Any,
    ) -> Job:
        moved = self.inner.transition(
            job_id, expected=expected, target=target, attempt=attempt, **self._seal_changes(changes)
        )
        return self._open_job(moved)

    def _seal_moves(self, moves: Sequence[Move]) -> list[Move]:
        return [Move(m.job_id, m.expected, m.target, m.attempt, self._seal_changes(m.changes)) for m in moves]

    def _open_moved(self, moved: list[Job | Exception]) -> list[Job | Exception]:
        return [r if isinstance(r, Exception) else self._open_job(r) for r in moved]

    def transition_many(self, moves: Sequence[Move]) -> list[Job | Exception]:
        return self._open_moved(self.inner.transition_many(self._seal_moves(moves)))

    def transition_and_claim(self, moves: Sequence[Move], **claim: Any) -> tuple[list[Job | Exception], list[Job]]:
        moved, taken = self.inner.transition_and_claim(self._seal_moves(moves), **claim)
        return self._open_moved(moved), self._open_jobs(taken)

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        secret = {"result": job.result, "last_error": job.last_error}
        sealed = job.model_copy(update={"data": self.sealer.seal(job.data), **self._seal_changes(secret)})
        notes = [note.model_copy(update={"body": self.sealer.seal_comment(note.body)}) for note in comments]
        return self._open_job(self.inner.import_job(sealed, notes))

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        return self._open_jobs(self.inner.recover_expired(limit=limit))

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        return self.inner.count(states)

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        return self.inner.purge(states=states, older_than=older_than)

    def comment(self, job_id: int, body: str) -> Comment:
        made = self.inner.comment(job_id, self.sealer.seal_comment(body))
        return made.model_copy(update={"body": body})

    def comments(self, job_id: int) -> list[Comment]:
        return [c.model_copy(update={"body": self.sealer.open_comment(c.body)}) for c in self.inner.comments(job_id)]

    def get_setting(self, key: str) -> Any:
        return self.inner.get_setting(key)

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        return self.inner.update_setting(key, update)

    def set_setting(self, key: str, value: Any) -> None:
        self.inner.set_setting(key, value)

    def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        return self.inner.watch_arrivals(callback)

    async def watch_arrivals_on_loop(self, callback: Callable[[Arrival], None]) -> Callable[[], Awaitable[None]] | None:
        return await self.inner.watch_arrivals_on_loop(callback)  # an arrival carries no data: nothing to open

    def close(self) -> None:
        self.inner.close()


def seal_store(store: Store, keys: str | Sequence[str] | None) -> Store:
    """``store`` sealed with ``keys`` (a comma-separated string or a list; None reads ``OCTOQUEUE_ENCRYPTION_KEY``),
    or ``store`` itself when there are none."""
    if isinstance(keys, str):
        keys = keys_from_text(keys)
    elif keys is None:
        keys = keys_from_env()
    if not keys or isinstance(store, SealedStore):
        return store
    return SealedStore(store, Sealer(list(keys)))


def is_encrypted(store: Store) -> bool:
    """Whether ``store`` seals what it writes: then job data, results and errors must not be shown in logs."""
    return isinstance(store, SealedStore)


def content_digest(store: Store, text: str) -> str:
    """A digest of job content (a payload, say) that may be stored in clear beside it: plain SHA-256 on a store
    that does not seal, a keyed digest (:meth:`Sealer.digest`) on one that does, so a guessed payload cannot be
    confirmed against it."""
    if isinstance(store, SealedStore):
        return store.sealer.digest(text)
    return hashlib.sha256(text.encode()).hexdigest()


def unreadable(job: Job) -> str | None:
    """Why a claimed job cannot run because of its seal, or None."""
    if job.body_error == WRONG_KEY:
        return WRONG_KEY
    if job.body_error is None and is_sealed(job.data):
        return MISSING_KEY
    return None
