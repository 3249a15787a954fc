"""The S3 store: one object per job, every change a compare-and-swap on that object.

Atomicity is per object, which is all S3 offers and all a job needs: a job is created with ``If-None-Match: *``
and every transition (claim, complete, heartbeat, recovery) is a PUT with ``If-Match: <the ETag read>``. Of two
processes that read the same version and write, S3 takes exactly one; the other gets 412, re-reads and decides
again (a claimer moves on to the next job; a finisher whose attempt moved on gets LeaseLost). Nothing is ever
overwritten blind.

The indexes (``index/<state>/...``, see :mod:`~octoqueue.stores.s3.layout`) only say where to look: a marker for
the job's new state is written before the job's swap and the old one deleted after it, so a crash leaves an
extra marker (dropped by whoever reads it and finds the job elsewhere), never a missing one. Markers deleted by
hand, or all of ``index/``, are rebuilt from the job objects by :meth:`S3Store.rebuild_index`, which
:meth:`S3Store.recover_expired` runs when ``index/built.json`` is gone or older than ``reindex_interval``.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from octoqueue.errors import ConfigurationError, InvalidTransition, JobNotFound, StateConflict
from octoqueue.job import Comment, Job, NewJob, Page
from octoqueue.states import JobState, LabelScheme, has_any_label, has_labels, label_key
from octoqueue.stores.base import Clock, Store, apply_transition, check_changes, checked_setting, expire, lease_until
from octoqueue.stores.s3 import layout
from octoqueue.stores.s3.client import Precondition, S3Client
from octoqueue.stores.s3.clock import ServerClock

#: A marker or key object younger than this may belong to a write still in flight (its job's swap not yet made):
#: it is never dropped as stale before this age.
GRACE = timedelta(seconds=60)
#: How many job records (with their ETags) a process keeps, so that finishing a job it claimed costs one PUT.
KNOWN_JOBS = 4096
#: How many pending markers a process keeps from its last LIST for the claims that follow.
LISTING_SIZE = 1000
#: How often (seconds, per process) recover_expired looks at ``index/built.json``.
INDEX_CHECK_INTERVAL = 30.0

_OPTIONS = {"endpoint_url", "region", "profile", "id_block", "list_ttl", "reindex_interval"}


def _spread() -> int:
    """How many candidates a claimer steps past after finding one taken by another claimer, so that claimers
    walking down the same listing spread out instead of colliding on every job (each collision costs requests)."""
    return random.randint(0, 3)


class S3Store(Store):
    """``s3://bucket/prefix?endpoint_url=…&region=…&profile=…`` on any S3 with conditional writes.

    Credentials come the standard AWS way (environment, shared config/credentials files and ``profile``, instance
    or container roles). ``id_block``: job numbers a process takes at once from ``meta/counter.json`` (one
    compare-and-swap per block, used for at most a second so numbers stay in creation order across processes);
    ``list_ttl``: seconds a process reuses its listing of the pending index between claims; ``reindex_interval``:
    seconds between rebuilds of the indexes from the jobs (0: only when ``index/`` is gone).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        id_block: int = 32,
        list_ttl: float = 1.0,
        reindex_interval: float = 3600.0,
        labels: LabelScheme | None = None,
        session: Any = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(labels, clock=clock)
        self._own_clock = clock is not None  # else the server's clock, from its Date headers
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ConfigurationError("the S3 store needs boto3: pip install 'octoqueue[s3]'") from None
        if not bucket:
            raise ConfigurationError("the S3 store needs a bucket: s3://bucket/prefix")
        if id_block < 1:
            raise ConfigurationError(f"id_block must be at least 1, not {id_block}")
        prefix = prefix.strip("/")
        query = {k: v for k, v in (("endpoint_url", endpoint_url), ("region", region), ("profile", profile)) if v}
        self.url = f"s3://{bucket}/{prefix}" + (f"?{urlencode(query)}" if query else "")
        session = session or boto3.session.Session(profile_name=profile, region_name=region)
        client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(max_pool_connections=32, retries={"mode": "standard"}),
        )
        self.s3 = S3Client(client, bucket, f"{prefix}/" if prefix else "", ServerClock())
        self._id_block = id_block
        self._list_ttl = list_ttl
        self._reindex_interval = reindex_interval
        self._lock = threading.Lock()
        self._id_lock = threading.Lock()
        self._ids = iter(())  # type: Iterator[int]
        self._ids_until = 0.0
        self._known: OrderedDict[int, tuple[Job, str, str]] = OrderedDict()
        self._static: dict[int, tuple[frozenset[str], str | None]] = {}
        self._listing: list[layout.Marker] = []
        self._listed_at = -1e9
        self._listing_whole = False
        self._leases: dict[tuple[int, str], datetime] = {}
        self._index_checked_at = -1e9
        self.s3.check_bucket()

    def close(self) -> None:
        self.s3.close()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Store:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - _OPTIONS
        if unknown:
            raise ConfigurationError(f"unknown S3 store options {sorted(unknown)}: use {sorted(_OPTIONS)}")
        kwargs: dict[str, Any] = {k: query[k] for k in ("endpoint_url", "region", "profile") if k in query}
        try:
            if "id_block" in query:
                kwargs["id_block"] = int(query["id_block"])
            for name in ("list_ttl", "reindex_interval"):
                if name in query:
                    kwargs[name] = float(query[name])
        except ValueError as exc:
            raise ConfigurationError(f"bad S3 store option in {url!r}: {exc}") from None
        kwargs.update(options)
        return cls(parts.netloc, unquote(parts.path), **kwargs)

    def now(self) -> datetime:
        return self._clock() if self._own_clock else self.s3.clock.now()

    # -- reading and writing one job ----------------------------------------------------------------------------
    def _read(self, job_id: int) -> tuple[Job, str, str] | None:
        """The job as stored now: (record, ETag, its marker's ETag), or None."""
        stored = self.s3.get(layout.job_key(job_id))
        if stored is None:
            self._forget(job_id)
            return None
        job, marker_etag = layout.load_job(stored.body)
        self._remember(job, stored.etag, marker_etag)
        return job, stored.etag, marker_etag

    def _remember(self, job: Job, etag: str, marker_etag: str) -> None:
        with self._lock:
            self._known[job.id] = (job, etag, marker_etag)
            self._known.move_to_end(job.id)
            while len(self._known) > KNOWN_JOBS:
                self._known.popitem(last=False)
            if len(self._static) > 16 * KNOWN_JOBS:
                self._static.clear()
            self._static[job.id] = (frozenset(label_key(name) for name in job.labels), job.type)

    def _forget(self, job_id: int) -> None:
        with self._lock:
            self._known.pop(job_id, None)

    def _cached(self, job_id: int) -> tuple[Job, str, str] | None:
        with self._lock:
            return self._known.get(job_id)

    def _write_new(self, job: Job) -> None:
        """Create the job's object (``If-None-Match: *``), its marker first; Precondition when it exists."""
        marker_etag = self.s3.put(layout.marker_key(job), layout.marker_body())
        etag = self.s3.create(layout.job_key(job.id), layout.dump_job(job, marker_etag))
        self._remember(job, etag, marker_etag)
        self._invalidate_listing()

    def _move(self, old: Job, etag: str, marker_etag: str, new: Job) -> None:
        """Swap the job from ``old`` (as read with ``etag``) to ``new``; Precondition when it changed meanwhile."""
        old_marker, new_marker = layout.marker_key(old), layout.marker_key(new)
        new_marker_etag = marker_etag
        if new_marker != old_marker:
            body = str(new.attempt).encode() if new.state is JobState.PROCESSING else layout.marker_body()
            new_marker_etag = self.s3.put(new_marker, body)
        try:
            new_etag = self.s3.swap(layout.job_key(new.id), layout.dump_job(new, new_marker_etag), etag)
        except Precondition:
            # Someone else moved the job first: the marker just written is an extra, dropped by its next reader.
            self._forget(new.id)
            raise
        self._remember(new, new_etag, new_marker_etag)
        if new_marker != old_marker:
            self._drop_marker(old_marker, marker_etag)
        if new.state is JobState.PENDING:
            self._invalidate_listing()

    def _drop_marker(self, key: str, etag: str) -> None:
        """Delete a marker only if it is still the one named (a marker rewritten since is someone's new one)."""
        if not etag:
            return
        with contextlib.suppress(Precondition):
            self.s3.delete(key, etag)

    def _drop_if_stale(self, marker: layout.Marker, now: datetime) -> None:
        """A marker whose job is gone or elsewhere: delete it once it is too old to be a write in flight."""
        if marker.last_modified < now - GRACE:
            self._drop_marker(marker.key, marker.etag)

    # -- jobs -------------------------------------------------------------------------------------------------
    def _next_id(self) -> int:
        with self._id_lock:
            number = next(self._ids, None)
            if number is None or time.monotonic() > self._ids_until:
                start = self._take_block()
                self._ids = iter(range(start, start + self._id_block))
                self._ids_until = time.monotonic() + 1.0
                number = next(self._ids)
            return number

    def _take_block(self) -> int:
        """Take the next ``id_block`` job numbers with a compare-and-swap on the counter (never one twice)."""
        while True:
            stored = self.s3.get(layout.COUNTER)
            try:
                if stored is None:
                    self.s3.create(layout.COUNTER, layout.dump_json({"next": 1 + self._id_block}))
                    return 1
                start = int(json.loads(stored.body)["next"])
                self.s3.swap(layout.COUNTER, layout.dump_json({"next": start + self._id_block}), stored.etag)
                return start
            except Precondition:
                continue

    def create(self, new: NewJob) -> Job:
        if new.idempotency_key is None:
            job = new.to_job(self._next_id(), self.now())
            self._write_new(job)
            return job
        return self._create_keyed(new, new.idempotency_key)

    def _create_keyed(self, new: NewJob, idempotency_key: str) -> Job:
        """The key object is created first (``If-None-Match: *``) and holds the whole job: whoever finds the key
        without its job (the creator is between the two writes, or died there) writes the job from it."""
        key = layout.key_key(idempotency_key)
        while True:
            stored = self.s3.get(key)
            if stored is None:
                job = new.to_job(self._next_id(), self.now())
                record = {"key": idempotency_key, "job": job.model_dump(mode="json", exclude={"url"})}
                try:
                    self.s3.create(key, layout.dump_json(record))
                except Precondition:
                    continue
                self._write_new(job)
                return job
            job = Job.model_validate(json.loads(stored.body)["job"])
            found = self._read(job.id)
            if found is not None:
                return found[0]
            if stored.last_modified < self.now() - GRACE:
                # An old key without its job: the job was purged (purge deletes the job, then its key).
                with contextlib.suppress(Precondition):
                    self.s3.delete(key, stored.etag)
                continue
            with contextlib.suppress(Precondition):
                self._write_new(job)
            return self.get(job.id)

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        found = self._read(job.id)
        seq = found[0].comments if found is not None else 0
        for note in comments:
            while True:
                seq += 1
                kept = note.model_copy(update={"id": layout.comment_id(job.id, seq), "job_id": job.id})
                try:
                    self.s3.create(layout.comment_key(job.id, seq), layout.dump_comment(kept))
                    break
                except Precondition:
                    continue  # a comment is there already (one made meanwhile): the next place
        while True:
            count = max(seq, found[0].comments) if found is not None else seq
            new = job.model_copy(update={"comments": count, "url": None})
            try:
                if found is None:
                    self._write_new(new)
                else:
                    self._move(*found, new)
                break
            except Precondition:
                found = self._read(job.id)
        self._raise_counter(job.id + 1)
        return new

    def _raise_counter(self, at_least: int) -> None:
        """Make the job counter give no number below ``at_least`` (compare-and-swap), and drop this process's block."""
        while True:
            stored = self.s3.get(layout.COUNTER)
            try:
                if stored is None:
                    self.s3.create(layout.COUNTER, layout.dump_json({"next": at_least}))
                elif int(json.loads(stored.body)["next"]) < at_least:
                    self.s3.swap(layout.COUNTER, layout.dump_json({"next": at_least}), stored.etag)
                break
            except Precondition:
                continue
        with self._id_lock:
            self._ids = iter(())

    def get(self, job_id: int) -> Job:
        found = self._read(job_id)
        if found is None:
            raise JobNotFound(job_id)
        return found[0]

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
        if open is not None:
            by_open = {s for s in JobState if s.is_open == open}
            wanted = by_open if wanted is None else wanted & by_open
        if wanted is not None and not wanted:
            return Page(jobs=[])
        found: list[Job] = []
        seen: set[int] = set()
        for job_id in self._candidate_ids(wanted, after):
            if job_id in seen:
                continue
            seen.add(job_id)
            job = self._read(job_id)
            if job is None:
                continue
            record = job[0]
            if wanted is not None and record.state not in wanted:
                continue
            if not has_labels(record.labels, labels):
                continue
            found.append(record)
            if len(found) > limit:
                break
        more = len(found) > limit
        found = found[:limit]
        return Page(jobs=found, cursor=str(found[-1].id) if more and found else None)

    def _candidate_ids(self, states: set[JobState] | None, after: int) -> Iterator[int]:
        """Job numbers after ``after`` in order: every job, or those the indexes put in ``states``."""
        if states is None:
            for item in self.s3.list_objects(layout.JOBS, start_after=layout.job_key(after)):
                yield layout.job_id_of(item.key)
            return
        streams: list[Iterator[int]] = []
        for state in sorted(states):
            if state is JobState.PENDING:  # keyed by priority first: read it all, sort by number
                pending = sorted(m.job_id for m in self._markers(state) if m.job_id > after)
                streams.append(iter(pending))
            else:
                start = f"{layout.state_prefix(state)}{after:0{layout.ID_WIDTH}d}"
                streams.append(m.job_id for m in self._markers(state, start_after=start))
        yield from heapq.merge(*streams)

    def _markers(self, state: JobState, *, start_after: str = "") -> Iterator[layout.Marker]:
        for item in self.s3.list_objects(layout.state_prefix(state), start_after=start_after):
            marker = layout.read_marker(item.key, item.etag, item.last_modified)
            if marker is not None:
                yield marker

    # -- claiming -----------------------------------------------------------------------------------------------
    def _invalidate_listing(self) -> None:
        with self._lock:
            self._listed_at = -1e9

    def _pending_candidates(self, now: datetime) -> Iterator[layout.Marker]:
        """Runnable pending markers in claim order. Within ``list_ttl`` of its last LIST a process claims from
        that listing (delayed markers included, judged against ``now``), and lists again only when the listing
        did not hold the whole index; so an idle or busy process makes at most one LIST per ``list_ttl``."""
        now_ms = now.timestamp() * 1000
        with self._lock:
            cached = list(self._listing) if time.monotonic() - self._listed_at < self._list_ttl else None
            whole = self._listing_whole
        if cached is not None:
            yield from (m for m in cached if m.run_at_ms <= now_ms)
            if whole:
                return
        listed_at = time.monotonic()
        listing = self._markers(JobState.PENDING)
        head = list(itertools.islice(listing, LISTING_SIZE))
        with self._lock:
            self._listing = head
            self._listed_at = listed_at
            self._listing_whole = len(head) < LISTING_SIZE
        yield from (m for m in head if m.run_at_ms <= now_ms)
        yield from (m for m in listing if m.run_at_ms <= now_ms)

    def _consumed(self, marker: layout.Marker) -> None:
        with self._lock:
            self._listing = [m for m in self._listing if m.key != marker.key]

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
        if limit <= 0 or (types is not None and not types) or (ids is not None and not ids):
            return []
        wanted_labels = frozenset(label_key(name) for name in labels)  # names compare as GitHub compares them
        unwanted_labels = frozenset(label_key(name) for name in exclude_labels)
        unwanted_types = frozenset(exclude_types)
        now = self.now()
        claimed: list[Job] = []
        tried: set[int] = set()
        skip = 0
        deferred: list[layout.Marker] = []  # stepped past after a collision: tried last, not dropped
        deferred_keys: set[str] = set()
        for marker in itertools.chain(self._pending_candidates(now), deferred):
            if marker.job_id in tried or (ids is not None and marker.job_id not in ids):
                continue
            if skip and marker.key not in deferred_keys:
                skip -= 1
                deferred.append(marker)
                deferred_keys.add(marker.key)
                continue
            static = self._static.get(marker.job_id)
            if static is not None and not (
                wanted_labels <= static[0]
                and (types is None or static[1] in types)
                and unwanted_labels.isdisjoint(static[0])
                and static[1] not in unwanted_types
            ):
                continue
            tried.add(marker.job_id)
            found = self._read(marker.job_id)
            if found is None or found[0].state is not JobState.PENDING or layout.marker_key(found[0]) != marker.key:
                self._consumed(marker)
                self._drop_if_stale(marker, now)
                skip = _spread()  # most likely another claimer's: it is probably taking the next ones too
                continue
            job, etag, marker_etag = found
            if not (
                has_labels(job.labels, wanted_labels)
                and (types is None or job.type in types)
                and not has_any_label(job.labels, unwanted_labels)
                and job.type not in unwanted_types
                and (job.run_at is None or job.run_at <= now)
            ):
                continue
            taken = job.model_copy(
                update={
                    "state": JobState.PROCESSING,
                    "open": True,
                    "attempt": job.attempt + 1,
                    "worker": worker,
                    "lease_expires_at": lease_until(now, lease),
                    "started_at": now,
                    "updated_at": now,
                }
            )
            try:
                self._move(job, etag, marker_etag, taken)
            except Precondition:
                skip = _spread()
                continue
            finally:
                self._consumed(marker)
            claimed.append(taken)
            if len(claimed) >= limit:
                break
        return claimed

    # -- transitions ------------------------------------------------------------------------------------------
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
        current = self._cached(job_id)
        while True:
            fresh = current is None
            if current is None:
                current = self._read(job_id)
                if current is None:
                    raise JobNotFound(job_id)
            job, etag, marker_etag = current
            try:
                new = apply_transition(
                    job, expected=expected, target=target, attempt=attempt, changes=changes, now=self.now()
                )
            except (StateConflict, InvalidTransition):
                if fresh:
                    raise
                current = None  # the record this process remembered may be old: decide on the stored one
                continue
            try:
                self._move(job, etag, marker_etag, new)
            except Precondition:
                current = None
                continue
            return new

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        now = self.now()
        recovered: list[Job] = []
        for marker in self._markers(JobState.PROCESSING):
            if len(recovered) >= limit:
                break
            seen_lease = self._leases.get((marker.job_id, marker.etag))
            if seen_lease is not None and seen_lease > now:
                continue  # leases only grow within one claim (one marker): not expired yet
            found = self._read(marker.job_id)
            if found is None or found[0].state is not JobState.PROCESSING:
                self._drop_if_stale(marker, now)
                continue
            job, etag, marker_etag = found
            if not job.lease_expired(now):
                if job.lease_expires_at is not None:
                    if len(self._leases) > KNOWN_JOBS:
                        self._leases.clear()
                    self._leases[(marker.job_id, marker.etag)] = job.lease_expires_at
                continue
            back = expire(job, now)
            try:
                self._move(job, etag, marker_etag, back)
            except Precondition:
                continue
            recovered.append(back)
        self._check_index(now)
        return recovered

    # -- the indexes ------------------------------------------------------------------------------------------
    def _check_index(self, now: datetime) -> None:
        """Rebuild the indexes when ``index/built.json`` is gone (the index was deleted) or too old. One
        process does it: it takes the rebuild by a compare-and-swap on that object."""
        with self._lock:
            if time.monotonic() - self._index_checked_at < INDEX_CHECK_INTERVAL:
                return
            self._index_checked_at = time.monotonic()
        stored = self.s3.get(layout.INDEX_BUILT)
        if stored is not None:
            built = datetime.fromisoformat(json.loads(stored.body)["rebuilt_at"])
            if self._reindex_interval <= 0 or built > now - timedelta(seconds=self._reindex_interval):
                return
        stamp = layout.dump_json({"rebuilt_at": now.isoformat()})
        try:
            if stored is None:
                self.s3.create(layout.INDEX_BUILT, stamp)
            else:
                self.s3.swap(layout.INDEX_BUILT, stamp, stored.etag)
        except Precondition:
            return  # another process is rebuilding
        self.rebuild_index()

    def rebuild_index(self) -> int:
        """Make the indexes agree with the job objects: a marker for every job where its record says, stale
        markers (older than the grace period) deleted. Returns how many markers it wrote or deleted.

        Costs a LIST per 1,000 markers and per 1,000 jobs, and a GET per job."""
        now = self.now()
        markers: dict[int, list[layout.Marker]] = {}
        for item in self.s3.list_objects(layout.INDEX):
            marker = layout.read_marker(item.key, item.etag, item.last_modified)
            if marker is not None:
                markers.setdefault(marker.job_id, []).append(marker)
        fixed = 0
        for item in self.s3.list_objects(layout.JOBS):
            job_id = layout.job_id_of(item.key)
            found = self._read(job_id)
            if found is None:
                continue
            job, etag, _marker_etag = found
            want = layout.marker_key(job)
            have = markers.pop(job_id, [])
            if not any(m.key == want for m in have):
                body = str(job.attempt).encode() if job.state is JobState.PROCESSING else layout.marker_body()
                new_marker_etag = self.s3.put(want, body)
                fixed += 1
                try:  # record the new marker's ETag, so the job's next move deletes it
                    new_etag = self.s3.swap(layout.job_key(job_id), layout.dump_job(job, new_marker_etag), etag)
                    self._remember(job, new_etag, new_marker_etag)
                except Precondition:
                    pass  # the job moved meanwhile: its mover wrote its marker
            for marker in have:
                if marker.key != want and marker.last_modified < now - GRACE:
                    self._drop_marker(marker.key, marker.etag)
                    fixed += 1
        for leftovers in markers.values():  # markers of jobs that are gone
            for marker in leftovers:
                if marker.last_modified < now - GRACE:
                    self._drop_marker(marker.key, marker.etag)
                    fixed += 1
        self._invalidate_listing()
        self.s3.put(layout.INDEX_BUILT, layout.dump_json({"rebuilt_at": now.isoformat()}))
        return fixed

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        wanted = list(states) if states is not None else list(JobState)
        return {state: len({m.job_id for m in self._markers(state)}) for state in wanted}

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        removed = 0
        for state in states:
            for marker in list(self._markers(state)):
                found = self._read(marker.job_id)
                if found is None or found[0].state is not state:
                    continue
                job, etag, _ = found
                if job.updated_at >= older_than:
                    continue
                try:
                    self.s3.delete(layout.job_key(job.id), etag)
                except Precondition:
                    continue  # it moved meanwhile (a requeue): keep it
                self._forget(job.id)
                removed += 1
                if job.idempotency_key is not None:
                    self.s3.delete(layout.key_key(job.idempotency_key))
                for item in list(self.s3.list_objects(layout.comments_prefix(job.id))):
                    self.s3.delete(item.key)
                self._drop_marker(marker.key, marker.etag)
        return removed

    # -- comments ---------------------------------------------------------------------------------------------
    def comment(self, job_id: int, body: str) -> Comment:
        found = self._read(job_id)
        if found is None:
            raise JobNotFound(job_id)
        job, etag, marker_etag = found
        seq = job.comments + 1
        while True:
            note = Comment(id=layout.comment_id(job_id, seq), job_id=job_id, body=body, created_at=self.now())
            try:
                self.s3.create(layout.comment_key(job_id, seq), layout.dump_comment(note))
                break
            except Precondition:
                seq += 1
        while job.comments < seq:  # the job's count follows its comments (a lag is repaired by the next one)
            counted = job.model_copy(update={"comments": seq})
            try:
                self._move(job, etag, marker_etag, counted)
                break
            except Precondition:
                found = self._read(job_id)
                if found is None:
                    break
                job, etag, marker_etag = found
        return note

    def comments(self, job_id: int) -> list[Comment]:
        self.get(job_id)
        notes = []
        for item in self.s3.list_objects(layout.comments_prefix(job_id)):
            stored = self.s3.get(item.key)
            if stored is not None:
                notes.append(layout.load_comment(stored.body))
        return notes

    # -- settings ---------------------------------------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        stored = self.s3.get(layout.setting_key(key))
        return json.loads(stored.body) if stored is not None else None

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        """Read, ``update``, then write as a swap on the object's ETag (or a create when it had none); on a 412
        someone wrote in between: read again and call ``update`` on the fresh value."""
        name = layout.setting_key(key)
        while True:
            stored = self.s3.get(name)
            value = checked_setting(key, update(json.loads(stored.body) if stored is not None else None))
            try:
                if value is None:
                    if stored is not None:
                        self.s3.delete(name, stored.etag)
                elif stored is None:
                    self.s3.create(name, layout.dump_json(value))
                else:
                    self.s3.swap(name, layout.dump_json(value), stored.etag)
                return value
            except Precondition:
                continue


def s3_url(bucket: str, prefix: str = "", **options: str) -> str:
    """The store URL for ``bucket``/``prefix`` with query ``options`` (endpoint_url, region, ...)."""
    query = f"?{urlencode(options)}" if options else ""
    return f"s3://{bucket}/{quote(prefix.strip('/'))}{query}"


__all__ = ["S3Store", "s3_url"]
