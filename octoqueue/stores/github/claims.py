"""Claiming jobs on GitHub: a conditional listing of pending issues, a claim ref, one PATCH.

A claim reads ``labels=pending&state=open&sort=created&direction=asc&per_page=100`` with ``If-None-Match`` (an
idle queue answers 304), keeps that listing for ``listing_ttl`` seconds so that a burst of claims costs one read,
and for each candidate (priority first, then oldest) takes ``refs/octoqueue/claims/{n}-{attempt+1}`` and PATCHes the
issue to processing with the new attempt, the worker and the lease.

Under contention — this store lost a race in the last :data:`CONTENTION_MEMORY` seconds — a cached listing goes
stale fast and trying a job another worker took costs a *write* (the scarce resource), so the listing is read
(one request) before each claim, and candidates are picked at random among the oldest ``claim_spread`` of the best
priority rather than all workers racing for the oldest one. A store that never loses keeps strict order.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from octoqueue.errors import JobNotFound
from octoqueue.job import Job
from octoqueue.states import JobState
from octoqueue.stores.base import claim_order, claimed, is_runnable
from octoqueue.stores.github.issues import Record, claim_ref

if TYPE_CHECKING:
    from octoqueue.stores.github.issue_io import IssueIO
    from octoqueue.stores.github.refs import RefLocks

log = logging.getLogger("octoqueue.github")

#: Seconds a store keeps reading the listing before each claim, and spreading, after it lost a claim race.
CONTENTION_MEMORY = 30.0
#: Listings a claim reads at most when it keeps losing races.
MAX_CLAIM_ROUNDS = 4


@dataclass
class Listing:
    """A cached listing of pending issues, with the claim refs this store already tried (name -> when)."""

    records: list[Record]
    fetched_at: float
    tried: dict[str, float] = field(default_factory=dict)


def claim_name(record: Record) -> str:
    return claim_ref(record.job.id, record.job.attempt + 1, record.gen)


@dataclass(frozen=True)
class Wanted:
    """The filters of one claim (see :meth:`~octoqueue.stores.base.Store.claim`)."""

    labels: Collection[str] = ()
    types: Collection[str] | None = None
    exclude_labels: Collection[str] = ()
    exclude_types: Collection[str] = ()


def runnable(record: Record, now: datetime, wanted: Wanted) -> bool:
    """A job's issue (not the settings') whose job a claim may take (:func:`~octoqueue.stores.base.is_runnable`)."""
    return record.kind == "job" and is_runnable(
        record.job,
        now,
        labels=wanted.labels,
        types=wanted.types,
        exclude_labels=wanted.exclude_labels,
        exclude_types=wanted.exclude_types,
    )


def spread(candidates: list[Record], width: int) -> list[Record]:
    """``candidates`` with the leading ones of the best priority (at most ``width``) shuffled."""
    if len(candidates) < 2:
        return candidates
    best = candidates[0].job.priority
    head = 0
    while head < min(width, len(candidates)) and candidates[head].job.priority == best:
        head += 1
    lead = candidates[:head]
    random.shuffle(lead)
    return lead + candidates[head:]


class Claimer:
    """:meth:`Store.claim` for a :class:`GitHubStore`: reads and writes through ``issues``, takes claim refs with
    ``refs``, reads the time from ``now``. Thread-safe: threads of one store split the listing."""

    def __init__(
        self,
        issues: IssueIO,
        refs: RefLocks,
        now: Callable[[], datetime],
        *,
        listing_ttl: float,
        claim_spread: int,
        scan_pages: int,
    ) -> None:
        self._issues = issues
        self._refs = refs
        self._now = now
        self.listing_ttl = listing_ttl
        self.claim_spread = max(1, claim_spread)
        self.scan_pages = max(1, scan_pages)
        self._lock = threading.Lock()
        self._listings: dict[tuple[str, ...], Listing] = {}
        self._contended_until = 0.0

    @property
    def grace(self) -> float:
        return self._refs.orphan_grace

    def claim(
        self,
        *,
        worker: str,
        lease: float,
        limit: int,
        wanted: Wanted,
        ids: Collection[int] | None,
    ) -> list[Job]:
        if limit < 1:
            return []
        if ids is not None:
            return self._claim_ids(ids, worker, lease, limit, wanted)
        key = tuple(sorted(set(wanted.labels)))
        claimed: list[Job] = []
        with self._lock:
            listing = self._listings.get(key)
        fresh = False
        now = time.monotonic()
        ttl = 0.0 if now < self._contended_until else self.listing_ttl
        if listing is None or now - listing.fetched_at >= ttl or not self._candidates(listing, wanted):
            listing, fresh = self._refresh(key), True
        for _ in range(MAX_CLAIM_ROUNDS):
            got, lost = self._claim_from(listing, worker, lease, limit - len(claimed), wanted)
            claimed += got
            if len(claimed) >= limit or (fresh and not lost):
                break
            listing, fresh = self._refresh(key), True  # stale candidates, or they ran out: look again
        return claimed

    def _refresh(self, key: tuple[str, ...]) -> Listing:
        issues = self._issues
        names = ",".join([issues.labels.label(JobState.PENDING), *key])
        records: list[Record] = []
        url: str | None = issues.issues_url(state="open", labels=names)
        for _ in range(self.scan_pages):
            if not url:
                break
            fetched = issues.client.get(url, what="list pending jobs")
            records.extend(r for r in (issues.record(item) for item in fetched.data) if r.kind == "job")
            url = fetched.links.get("next")
        with self._lock:
            old = self._listings.get(key)
            listing = Listing(records, time.monotonic())
            if old is not None:
                names_now = {claim_name(r) for r in records}
                listing.tried = {n: t for n, t in old.tried.items() if n in names_now}
            self._listings[key] = listing
        return listing

    def _candidates(self, listing: Listing, wanted: Wanted) -> list[Record]:
        now, moment = self._now(), time.monotonic()
        with self._lock:
            found = [
                r
                for r in listing.records
                if runnable(r, now, wanted) and moment - listing.tried.get(claim_name(r), -1e18) >= self.grace
            ]
        return sorted(found, key=lambda r: claim_order(r.job))

    def _claim_from(
        self,
        listing: Listing,
        worker: str,
        lease: float,
        want: int,
        wanted: Wanted,
    ) -> tuple[list[Job], bool]:
        """Claim up to ``want`` jobs from ``listing``; stop at the first lost race (True then: it is stale)."""
        candidates = self._candidates(listing, wanted)
        if time.monotonic() < self._contended_until:
            candidates = spread(candidates, self.claim_spread)
        claimed: list[Job] = []
        while candidates and len(claimed) < want:
            record = candidates.pop(0)
            name = claim_name(record)
            moment = time.monotonic()
            with self._lock:
                if moment - listing.tried.get(name, -1e18) < self.grace:
                    continue  # another thread of this store is on it
                listing.tried[name] = moment
            try:
                job = self.claim_one(record, worker, lease)
            except Exception:
                with self._lock:
                    listing.tried.pop(name, None)
                if claimed:
                    log.warning("claim stopped after %d job(s)", len(claimed), exc_info=True)
                    return claimed, False
                raise
            if job is None:
                self._contended_until = time.monotonic() + CONTENTION_MEMORY
                return claimed, True
            claimed.append(job)
        return claimed, False

    def claim_one(self, record: Record, worker: str, lease: float) -> Job | None:
        """Take the claim ref of ``record``'s pending spell and write the claim; None when another won it."""
        issues = self._issues
        if not self._refs.take(claim_name(record), still_current=lambda: issues.unchanged(record)):
            return None
        started = issues.client.last_sent()  # when the ref was sent: the wait for the pacer before it does not count
        job = claimed(record.job, worker=worker, lease=lease, now=self._now())
        return issues.write(record, job, record.gen, deadline=self._refs.deadline(started))

    def _claim_ids(
        self,
        ids: Collection[int],
        worker: str,
        lease: float,
        limit: int,
        wanted: Wanted,
    ) -> list[Job]:
        """Claims of named jobs (a worker started for one issue): each is read directly, no listing."""
        records: list[Record] = []
        for job_id in sorted(set(ids)):
            try:
                records.append(self._issues.fetch(job_id))
            except JobNotFound:
                continue
        now = self._now()
        ready = sorted((r for r in records if runnable(r, now, wanted)), key=lambda r: claim_order(r.job))
        claimed: list[Job] = []
        for record in ready:
            if len(claimed) >= limit:
                break
            job = self.claim_one(record, worker, lease)
            if job is not None:
                claimed.append(job)
        return claimed
