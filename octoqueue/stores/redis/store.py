"""The Redis store: jobs as hashes, the claim order and leases as sorted sets, every change one Lua script.

Redis runs a script whole and alone, so each transition — a claim, a completion, a recovery — reads and writes the
job and its indexes in one step that nothing can interleave or half-apply (see ``scripts.py`` for the key layout).
The clock of leases and delays is Redis's own ``TIME``, not a worker's. Jobs that become pending are announced on
a pub/sub channel, so waiting claims in other processes wake at once (:meth:`RedisStore.watch_arrivals`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import redis
import redis.cluster
import redis.exceptions

from octoqueue.errors import ConfigurationError, JobNotFound, StateConflict, StoreUnavailable
from octoqueue.job import MUTABLE_FIELDS, Comment, Job, NewJob, Page, trusted_job
from octoqueue.states import JobState, LabelScheme, label_key
from octoqueue.stores.base import (
    Arrival,
    Clock,
    Move,
    Store,
    apply_transition,
    check_changes,
    checked_setting,
    expected_set,
    expire,
)
from octoqueue.stores.redis import scripts

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack
except ImportError:  # pragma: no cover - the redis extra installs hiredis; without it redis-py packs
    _pack = None

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
#: Jobs deleted per script call by :meth:`RedisStore.purge` (one call blocks Redis only that long).
PURGE_BATCH = 500
#: Jobs made by one create script call at most: its arguments (9 a job) stay under 1,048,576, the most an older
#: Redis (5.x) accepts in one command. A larger ``create_many`` is several calls, in order.
CREATE_BATCH = 100_000
_CREATE_ARGS = 9
#: Socket timeouts (seconds) unless the URL sets ``socket_timeout`` / ``socket_connect_timeout``.
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0

_STATES = {state.value: state for state in JobState}
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def _us(value: datetime) -> int:
    return (value - _EPOCH) // _ONE_US


def _dt(value: str) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def _job(flat: Sequence[str]) -> Job:
    h = dict(zip(flat[::2], flat[1::2], strict=True))
    get = h.get
    state, labels = get("state"), get("labels")
    run_at, lease, timeout, result = get("run_at"), get("lease_expires_at"), get("timeout"), get("result")
    started = get("started_at")
    # No validation: the fields were validated when the job was made; this is the claim and completion hot path.
    return trusted_job(
        {
            "id": int(h["id"]) if "id" in h else 0,
            "title": h["title"],
            "data": json.loads(h["data"]),
            "state": _STATES[state] if state is not None else None,
            "labels": tuple(json.loads(labels)) if labels is not None and labels != "[]" else (),
            "open": h["open"] == "1",
            "type": get("type"),
            "priority": int(h["priority"]),
            "run_at": _dt(run_at) if run_at is not None else None,
            "attempt": int(h["attempt"]),
            "attempt_base": int(h["attempt_base"]),
            "max_attempts": int(h["max_attempts"]),
            "lease_expires_at": _dt(lease) if lease is not None else None,
            "started_at": _dt(started) if started is not None else None,
            "worker": get("worker"),
            "result": json.loads(result) if result is not None else None,
            "last_error": get("last_error"),
            "idempotency_key": get("idempotency_key"),
            "timeout": float(timeout) if timeout is not None else None,
            "created_at": _dt(h["created_at"]),
            "updated_at": _dt(h["updated_at"]),
            "comments": int(h["comments"]),
            "body_error": None,
            "url": None,
        }
    )


def _field(name: str, value: Any) -> str | None:
    """A :data:`~octoqueue.job.MUTABLE_FIELDS` value as the job's hash keeps it (None: the field is removed)."""
    if value is None:
        return None
    if name in ("run_at", "lease_expires_at"):
        return str(_us(value))
    if name == "result":
        return json.dumps(value, ensure_ascii=False)
    if name in ("attempt_base", "max_attempts", "priority"):
        return str(int(value))
    return str(value)


def _comment_tail(note: Comment) -> str:
    """An imported comment's entry after its id: ``<created µs>[,<quoted author>]:<body>``."""
    author = "," + quote(note.author, safe="") if note.author else ""
    return f"{_us(note.created_at)}{author}:{note.body}"


def _moves_arg(moves: Sequence[Move], *, lease_due: bool = False) -> str:
    """The transition script's moves argument (see ``scripts.TRANSITION``)."""
    payload = []
    for move in moves:
        wanted = expected_set(move.expected)
        set_, clear = {}, []
        for name, value in move.changes.items():
            text = _field(name, value)
            if text is None:
                clear.append(name)
            else:
                set_[name] = text
        payload.append(
            [
                int(move.job_id),
                sorted(s.value for s in wanted) if wanted is not None else "",
                move.target.value,
                int(move.attempt) if move.attempt is not None else -1,
                set_,
                clear,
                lease_due,
            ]
        )
    return json.dumps(payload, ensure_ascii=False)


def _claim_args(
    worker: str,
    lease: float,
    limit: int,
    labels: Collection[str],
    types: Collection[str] | None,
    ids: Collection[int] | None,
    exclude_labels: Collection[str] = (),
    exclude_types: Collection[str] = (),
) -> tuple[Any, ...]:
    """The claim script's arguments after the prefix (see ``scripts.CLAIM``)."""
    return (
        worker,
        max(0, int(lease * 1_000_000)),
        int(limit),
        json.dumps(list(dict.fromkeys(labels)), ensure_ascii=False),
        json.dumps(sorted(types), ensure_ascii=False) if types is not None else "",
        json.dumps([int(i) for i in ids]) if ids is not None else "",
        json.dumps(sorted({label_key(label) for label in exclude_labels}), ensure_ascii=False),
        json.dumps(sorted(set(exclude_types)), ensure_ascii=False),
    )


def _create_args(new: NewJob) -> tuple[Any, ...]:
    """The create script's 9 arguments for one job (see ``scripts.CREATE``)."""
    if new.type == "":
        raise ValueError("a job's type must not be empty (None for no type)")
    if new.idempotency_key == "":
        raise ValueError("an idempotency key must not be empty (None for no key)")
    return (
        new.title,
        new.data_json(),
        json.dumps(new.labels, ensure_ascii=False) if new.labels else "[]",
        new.type or "",
        int(new.priority),
        _us(new.run_at) if new.run_at is not None else "",
        int(new.max_attempts),
        new.idempotency_key or "",
        repr(float(new.timeout)) if new.timeout is not None else "",
    )


def _created(new: NewJob, reply: Sequence[Any]) -> Job:
    """The job the create script's ``reply`` for ``new`` describes: made (``{'new', id, now}``), or the one already
    holding its idempotency key (``{'old', fields}``)."""
    if reply[0] == "old":
        return _job(reply[1])
    return new.created(int(reply[1]), _dt(reply[2]))


class RedisStore(Store):
    """``redis://[:password@]host:port/db?prefix=oq`` (``rediss://`` for TLS, ``redis+cluster://`` for a Redis
    Cluster). Every key of the queue starts with ``{prefix}``; other query options go to redis-py."""

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        *,
        prefix: str = "oq",
        labels: LabelScheme | None = None,
        url: str = "",
        clock: Clock | None = None,
    ) -> None:
        super().__init__(labels, clock=clock)
        self._own_clock = clock is not None  # else Redis's TIME, in every script and in now()
        if not prefix or any(c in prefix for c in "{}:") or prefix != prefix.strip():
            raise ConfigurationError(f"Redis prefix {prefix!r} must be non-empty, without braces, colons or spaces")
        self.prefix = prefix
        self.url = url or f"redis://?prefix={prefix}"
        self._client = client
        self._tag = "{" + prefix + "}"
        self._route = f"{self._tag}:seq"
        self._origin = uuid.uuid4().hex  # this Store object's arrivals, which its own watch skips
        self._scripts = {
            name: client.register_script(source)
            for name, source in (
                ("create", scripts.CREATE),
                ("claim", scripts.CLAIM),
                ("transition", scripts.TRANSITION),
                ("transition_and_claim", scripts.TRANSITION_AND_CLAIM),
                ("expired", scripts.EXPIRED),
                ("comment", scripts.COMMENT),
                ("import", scripts.IMPORT),
                ("list", scripts.LIST),
                ("purge", scripts.PURGE),
            )
        }
        self._settings_cas = client.register_script(scripts.SETTINGS_CAS)
        self._local = threading.local()
        self._watch_lock = threading.Lock()
        self._watchers: list[Callable[[Arrival], None]] = []
        self._watch_thread: threading.Thread | None = None
        self._closed = threading.Event()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefix = "oq"
        rest = []
        for key, value in query:
            if key == "prefix":
                prefix = value
            else:
                rest.append((key, value))
        if not parts.hostname:
            raise ConfigurationError(
                f"Redis store URL {_redacted(url)!r} names no host: give one, like redis://localhost:6379/0"
            )
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ConfigurationError(f"Redis store URL {_redacted(url)!r}: the path is the database number, like /0")
        names = {key for key, _ in rest}
        if "socket_timeout" not in names:
            rest.append(("socket_timeout", str(SOCKET_TIMEOUT)))
        if "socket_connect_timeout" not in names:
            rest.append(("socket_connect_timeout", str(CONNECT_TIMEOUT)))
        target = urlunsplit((_CLUSTER_SCHEMES.get(scheme, scheme), parts.netloc, parts.path, urlencode(rest), ""))
        try:
            client = cls._connect(target, cluster=scheme in _CLUSTER_SCHEMES)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"Redis store URL {_redacted(url)!r} cannot be used: {exc}") from None
        except redis.exceptions.RedisError as exc:
            raise StoreUnavailable(f"cannot reach Redis at {_redacted(url)}: {exc}") from exc
        store = cls(client, prefix=prefix, url=_redacted(url), **options)
        if scheme not in _CLUSTER_SCHEMES:
            store._target = target
        return store

    #: The redis-py URL the store's client was made from (one Redis, not a cluster), for a client on an event loop.
    _target: str | None = None

    @classmethod
    def _connect(cls, target: str, *, cluster: bool) -> Any:
        """The client of the redis-py URL ``target``; an unknown option fails here, not on first use."""
        if cluster:
            return redis.cluster.RedisCluster.from_url(target, decode_responses=True)
        client = redis.Redis.from_url(target, decode_responses=True)
        client.connection_pool.make_connection()
        return client

    # -- plumbing ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.exceptions.RedisError as exc:
            raise StoreUnavailable(f"Redis store {self.url}: {exc}") from exc

    def _command(self, *args: Any) -> Any:
        """Send one command and read its reply. On a plain Redis each thread keeps one connection of the pool and
        talks on it directly: redis-py's ``execute_command`` (its retry wrapper, pool checkout, metrics) costs
        more client CPU than the round trip of a short script. A connection that failed mid-command is dropped, so
        the next command starts on a fresh one; a Redis Cluster goes through redis-py's routing."""
        if not isinstance(self._client, redis.Redis):
            return self._client.execute_command(*args)
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            held = self._local.held = _Held(self._client.connection_pool)
        conn = held.conn
        try:
            if _pack is None:
                conn.send_command(*args)
            else:  # hiredis packs the command at once; redis-py's packer re-checks every argument first
                conn.send_packed_command((_pack(args),), check_health=False)
            return conn.read_response()
        except redis.exceptions.ResponseError:
            raise  # Redis answered: the connection is in step
        except BaseException:
            conn.disconnect()
            raise

    def _run(self, name: str, *args: Any) -> Any:
        """Run one of the scripts: EVALSHA straight away (the common case, one round trip), loading the script only
        when Redis does not know it (first use, or after a restart without persistence of scripts)."""
        script = self._scripts[name]
        tag = self._tag
        if self._own_clock:
            tag += "@" + str(int(self._clock().timestamp() * 1_000_000))
        try:  # as _errors() says, written out: the context manager costs ~1 µs of every call
            try:
                return self._command("EVALSHA", script.sha, 1, self._route, tag, *args)
            except redis.exceptions.NoScriptError:
                return self._evaluate(script, [self._route], [tag, *args])
        except redis.exceptions.RedisError as exc:
            raise StoreUnavailable(f"Redis store {self.url}: {exc}") from exc

    def _evaluate(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a registered script (loading it into Redis when Redis does not know it)."""
        return script(keys=keys, args=args)

    def _pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one round trip (no transaction); their replies, in order."""
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute()  # type: ignore[no-any-return]

    def now(self) -> datetime:
        if self._own_clock:
            return self._clock()
        with self._errors():
            seconds, micros = self._command("TIME")
        return _EPOCH + timedelta(seconds=int(seconds), microseconds=int(micros))

    # -- jobs -------------------------------------------------------------------------------------------------
    def create(self, new: NewJob) -> Job:
        (reply,) = self._run("create", self._origin, *_create_args(new))
        return _created(new, reply)

    def create_many(self, items: Sequence[NewJob]) -> list[Job]:
        if not items:
            return []
        args: list[Any] = []
        for new in items:
            args += _create_args(new)
        results: list[Any] = []
        step = CREATE_BATCH * _CREATE_ARGS
        for start in range(0, len(args), step):
            results += self._run("create", self._origin, *args[start : start + step])
        return [_created(new, reply) for new, reply in zip(items, results, strict=True)]

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        fields = {
            "id": str(int(job.id)),
            "title": job.title,
            "data": json.dumps(job.data, ensure_ascii=False),
            "labels": json.dumps(job.labels, ensure_ascii=False) if job.labels else "[]",
            "state": job.state.value if job.state is not None else None,
            "open": "1" if job.open else "0",
            "type": job.type,
            "attempt": str(int(job.attempt)),
            "idempotency_key": job.idempotency_key,
            "timeout": repr(float(job.timeout)) if job.timeout is not None else None,
            "created_at": str(_us(job.created_at)),
            "updated_at": str(_us(job.updated_at)),
            "started_at": str(_us(job.started_at)) if job.started_at is not None else None,
            **{name: _field(name, getattr(job, name)) for name in MUTABLE_FIELDS},
        }
        tails = [_comment_tail(note) for note in comments]
        flat = self._run(
            "import",
            self._origin,
            json.dumps({k: v for k, v in fields.items() if v is not None}, ensure_ascii=False),
            json.dumps(tails, ensure_ascii=False),
        )
        return _job(flat)

    def get(self, job_id: int) -> Job:
        with self._errors():
            flat = self._command("HGETALL", f"{self._tag}:job:{int(job_id)}")
        if not flat:
            raise JobNotFound(job_id)
        if isinstance(flat, dict):  # a client that maps replies
            flat = [x for pair in flat.items() for x in pair]
        return _job(flat)

    def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Collection[str] = (),
        open: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        if states is not None:
            states = list(states)
            if not states:
                return Page(jobs=[])
        try:
            after = int(cursor) if cursor else 0
        except ValueError:
            raise ValueError(f"cursor {cursor!r} is not one this store gave") from None
        found = self._run(
            "list",
            json.dumps([s.value for s in states]) if states is not None else "",
            json.dumps(list(dict.fromkeys(labels)), ensure_ascii=False),
            "" if open is None else str(int(open)),
            after,
            max(1, int(limit)),
        )
        jobs = [_job(flat) for flat in found[:limit]]
        return Page(jobs=jobs, cursor=str(jobs[-1].id) if len(found) > limit and jobs else None)

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
        if limit < 1 or (types is not None and not types) or (ids is not None and not ids):
            return []
        found = self._run(
            "claim", *_claim_args(worker, lease, limit, labels, types, ids, exclude_labels, exclude_types)
        )
        return [_job(flat) for flat in found]

    def transition_and_claim(
        self,
        moves: Sequence[Move],
        *,
        worker: str,
        lease: float,
        limit: int = 1,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        exclude_labels: Collection[str] = (),
        exclude_types: Collection[str] = (),
    ) -> tuple[list[Job | Exception], list[Job]]:
        if limit < 1 or (types is not None and not types) or (ids is not None and not ids):
            return self.transition_many(moves), []
        for move in moves:
            check_changes(move.changes)
        replies, found = self._run(
            "transition_and_claim",
            self._origin,
            _moves_arg(moves),
            *_claim_args(worker, lease, limit, labels, types, ids, exclude_labels, exclude_types),
        )
        return self._moved(moves, replies), [_job(flat) for flat in found]

    def transition(
        self,
        job_id: int,
        *,
        expected: JobState | Collection[JobState] | None,
        target: JobState,
        attempt: int | None = None,
        **changes: Any,
    ) -> Job:
        check_changes(changes)
        (result,) = self._transitions([Move(job_id, expected, target, attempt, changes)])
        if isinstance(result, Exception):
            raise result
        return result

    batches_transitions = True
    batches_claims = True

    def transition_many(self, moves: Sequence[Move]) -> list[Job | Exception]:
        for move in moves:
            check_changes(move.changes)
        return self._transitions(moves) if moves else []

    def _transitions(self, moves: Sequence[Move], *, lease_due: bool = False) -> list[Job | Exception]:
        replies = self._run("transition", self._origin, _moves_arg(moves, lease_due=lease_due))
        return self._moved(moves, replies)

    def _moved(self, moves: Sequence[Move], replies: Sequence[Any]) -> list[Job | Exception]:
        """The transition script's replies as the contract's results: the new record or the exception."""
        results: list[Job | Exception] = []
        for move, (kind, *rest) in zip(moves, replies, strict=True):
            if kind == "ok":
                results.append(_job(rest[0]))
            elif kind == "missing":
                results.append(JobNotFound(move.job_id))
            else:
                results.append(self._refusal(move, _job(rest[0])))
        return results

    def _refusal(self, move: Move, job: Job) -> Exception:
        """The contract's exception for a move the script refused, found by the rules in one place
        (:func:`~octoqueue.stores.base.apply_transition`) on the record as the script saw it."""
        try:
            apply_transition(
                job,
                expected=move.expected,
                target=move.target,
                attempt=move.attempt,
                changes=dict(move.changes),
                now=job.updated_at,
            )
        except Exception as exc:
            return exc
        return StateConflict(job.id, f"its lease was renewed (it is {job.status}, attempt {job.attempt})")

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        now_us, found = self._run("expired", max(1, int(limit)))
        now = _dt(now_us)
        moves = []
        for flat in found:
            job = _job(flat)
            new = expire(job, now)
            changes = {"last_error": new.last_error, "run_at": new.run_at}
            moves.append(Move(job.id, JobState.PROCESSING, new.state or JobState.FAILED, job.attempt, changes))
        if not moves:
            return []
        # Fenced by attempt and by the lease still being expired (a heartbeat may have renewed it meanwhile): one
        # caller recovers a given expired attempt.
        return [r for r in self._transitions(moves, lease_due=True) if isinstance(r, Job)]

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        wanted = list(states) if states is not None else list(JobState)
        with self._errors():
            sizes = self._pipeline([("ZCARD", f"{self._tag}:state:{state.value}") for state in wanted])
        return {state: int(n) for state, n in zip(wanted, sizes, strict=True)}

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        names = json.dumps([s.value for s in states])
        if names == "[]":
            return 0
        total = 0
        while True:
            removed = int(self._run("purge", names, _us(older_than), PURGE_BATCH))
            total += removed
            if removed == 0:
                return total

    # -- comments ---------------------------------------------------------------------------------------------
    def comment(self, job_id: int, body: str) -> Comment:
        made = self._run("comment", int(job_id), body)
        if not made:
            raise JobNotFound(job_id)
        return Comment(id=int(made[0]), job_id=int(job_id), body=body, created_at=_dt(made[1]))

    def comments(self, job_id: int) -> list[Comment]:
        with self._errors():
            exists, entries = self._pipeline(
                [("EXISTS", f"{self._tag}:job:{int(job_id)}"), ("LRANGE", f"{self._tag}:comments:{int(job_id)}", 0, -1)]
            )
        if not exists:
            raise JobNotFound(job_id)
        out = []
        for entry in entries:
            comment_id, created, body = entry.split(":", 2)
            created, _, author = created.partition(",")  # an imported comment keeps its author
            out.append(
                Comment(
                    id=int(comment_id),
                    job_id=int(job_id),
                    body=body,
                    author=unquote(author) if author else None,
                    created_at=_dt(created),
                )
            )
        return out

    # -- settings ---------------------------------------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        with self._errors():
            value = self._command("HGET", f"{self._tag}:settings", key)
        return json.loads(value) if value is not None else None

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        """Read, ``update``, then write only if nobody wrote in between (a compare-and-set script on the settings
        hash); on a race, read again and call ``update`` on the fresh value."""
        name = f"{self._tag}:settings"
        while True:
            with self._errors():
                raw = self._command("HGET", name, key)
            value = checked_setting(key, update(json.loads(raw) if raw is not None else None))
            old = "" if raw is None else (raw.decode() if isinstance(raw, bytes) else str(raw))
            with self._errors():
                done = self._evaluate(
                    self._settings_cas,
                    [name],
                    [key, int(raw is not None), old, "" if value is None else json.dumps(value)],
                )
            if done:
                return value

    # -- arrivals ---------------------------------------------------------------------------------------------
    def watch_arrivals(self, callback: Callable[[Arrival], None]) -> Callable[[], None] | None:
        with self._watch_lock:
            self._watchers.append(callback)
        self._start_watching()

        def stop() -> None:
            with self._watch_lock, contextlib.suppress(ValueError):
                self._watchers.remove(callback)

        return stop

    def _start_watching(self) -> None:
        """Subscribe to the arrivals channel, once; return when subscribed (or after the connect timeout)."""
        with self._watch_lock:
            if self._watch_thread is None:
                ready = threading.Event()
                self._watch_thread = threading.Thread(
                    target=self._listen, args=(ready,), name="octoqueue-redis-arrivals", daemon=True
                )
                self._watch_thread.start()
                ready.wait(CONNECT_TIMEOUT)

    def _listen(self, ready: threading.Event) -> None:
        """The watch thread: one pub/sub connection, blocked reading the arrivals channel (it wakes once a second
        to see whether the store closed; no command is sent meanwhile)."""
        channel = f"{self._tag}:arrivals"
        pubsub = None
        missed = False
        while not self._closed.is_set():
            try:
                if pubsub is None:
                    pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(channel)
                    pubsub.get_message(timeout=0)  # the subscription's confirmation
                    ready.set()
                    if missed:
                        self._tell(Arrival(None))  # jobs may have arrived while the connection was down: any
                        missed = False
                message = pubsub.get_message(timeout=1.0)
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning("arrivals watch on %s lost its connection (%s); reconnecting", self.url, exc)
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
                pubsub, missed = None, True
                self._closed.wait(0.2)
                continue
            for arrival in self._arrivals_in(message):
                self._tell(arrival)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    async def watch_arrivals_on_loop(self, callback: Callable[[Arrival], None]) -> Callable[[], Awaitable[None]] | None:
        if self._target is None:
            return None  # a cluster, or a client given directly: the thread watches
        import redis.asyncio

        client: Any = redis.asyncio.Redis.from_url(self._target, decode_responses=True)
        subscribed = asyncio.Event()
        task = asyncio.create_task(self._listen_on_loop(client, subscribed, callback), name="octoqueue-redis-arrivals")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed.wait(), CONNECT_TIMEOUT)

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.aclose()

        return stop

    async def _listen_on_loop(self, client: Any, subscribed: asyncio.Event, tell: Callable[[Arrival], None]) -> None:
        """A watch task: one pub/sub connection of ``client`` (a ``redis.asyncio`` one) reading the arrivals channel,
        each arrival told to ``tell``; reconnects after a drop, and then tells an arrival of unknown labels (what was
        sent meanwhile is lost)."""
        while True:
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(f"{self._tag}:arrivals")
                    while (await pubsub.get_message(timeout=CONNECT_TIMEOUT) or {}).get("type") != "subscribe":
                        pass
                    if subscribed.is_set():
                        tell(Arrival(None))
                    subscribed.set()
                    while True:
                        for arrival in self._arrivals_in(await pubsub.get_message(timeout=None)):
                            try:
                                tell(arrival)
                            except Exception:  # a listener must not raise; one that does must not stop the watch
                                log.exception("arrival listener %r raised", tell)
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning("arrivals watch on %s lost its connection (%s); reconnecting", self.url, exc)
                await asyncio.sleep(0.2)

    def _arrivals_in(self, message: dict[str, Any] | None) -> list[Arrival]:
        """The arrivals a pub/sub message announces (none when another store object's own or not ours)."""
        if message is None or message.get("type") != "message":
            return []
        try:
            news = json.loads(message["data"])
        except (TypeError, ValueError):
            return []
        if news.get("o") == self._origin:
            return []
        # labels: a JSON list; from a publisher of 0.2.0 or earlier, a string holding one
        return [
            Arrival(
                tuple(json.loads(labels) if isinstance(labels, str) else labels), 1, _dt(run_at) if run_at else None
            )
            for _, run_at, labels in news.get("j", [])
        ]

    def _tell(self, arrival: Arrival) -> None:
        with self._watch_lock:
            callbacks = list(self._watchers)
        for callback in callbacks:
            try:
                callback(arrival)
            except Exception:  # a listener must not raise; one that does must not stop the watch
                log.exception("arrival listener %r raised", callback)

    def close(self) -> None:
        self._closed.set()
        thread = self._watch_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
        with contextlib.suppress(Exception):
            self._client.close()


class _Held:
    """A thread's own connection, taken from the pool, given back when the thread ends (its thread-local dies)."""

    __slots__ = ("conn", "pid", "pool")

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.conn = pool.get_connection()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.pool.release(self.conn)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))
