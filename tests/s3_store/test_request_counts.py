"""Requests per job lifecycle (S3 bills per request): the figures docs/s3.md gives, held here."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from typing import Any

from octoqueue.job import NewJob
from octoqueue.states import JobState
from octoqueue.stores.s3 import S3Store
from tests.s3_store.conftest import open_s3


def _delta(store: S3Store, before: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in (store.s3.requests - before).items() if v}


def test_requests_per_enqueue_claim_complete(s3store: S3Store, loopback_s3: Any, bucket: str) -> None:
    s3store.create(NewJob(data={}, title="warm-up"))  # takes a block of job numbers (GET + PUT on the counter)
    before = Counter(s3store.s3.requests)
    job = s3store.create(NewJob(data={"n": 1}, title="job"))
    enqueue = _delta(s3store, before)
    assert enqueue == {"PUT": 2}  # marker, job (If-None-Match)

    keyed_before = Counter(s3store.s3.requests)
    s3store.create(NewJob(data={"n": 2}, title="keyed", idempotency_key="k"))
    assert _delta(s3store, keyed_before) == {"GET": 1, "PUT": 3}  # key lookup, key (If-None-Match), marker, job

    worker = open_s3(loopback_s3, bucket)  # another process: nothing cached about these jobs
    before = Counter(worker.s3.requests)
    (claimed,) = worker.claim(worker="w", lease=60)
    claim = _delta(worker, before)
    assert claimed.id < job.id or claimed.id == job.id
    # LIST of the pending index (reused for a second by later claims), GET the job, PUT its processing marker,
    # PUT the job (If-Match), DELETE its pending marker
    assert claim == {"LIST": 1, "GET": 1, "PUT": 2, "DELETE": 1}

    before = Counter(worker.s3.requests)
    worker.transition(claimed.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=claimed.attempt)
    assert _delta(worker, before) == {"PUT": 2, "DELETE": 1}  # completed marker, job (If-Match), old marker

    before = Counter(worker.s3.requests)
    (second,) = worker.claim(worker="w", lease=60)
    assert _delta(worker, before) == {"GET": 1, "PUT": 2, "DELETE": 1}  # the listing is reused: no LIST
    before = Counter(worker.s3.requests)
    worker.transition(second.id, expected=JobState.PROCESSING, target=JobState.PROCESSING, attempt=second.attempt)
    assert _delta(worker, before) == {"PUT": 1}  # a heartbeat: one swap


def test_an_idle_process_lists_the_pending_index_once_per_list_ttl(s3store: S3Store) -> None:
    before = Counter(s3store.s3.requests)
    for _ in range(5):
        assert s3store.claim(worker="w", lease=60) == []
    assert _delta(s3store, before) == {"LIST": 1}


def test_a_delayed_job_is_claimed_when_due_without_a_new_list(s3store: S3Store) -> None:
    job = s3store.create(NewJob(data={}, title="later", run_at=s3store.now() + timedelta(seconds=0.3)))
    assert s3store.claim(worker="w", lease=60) == []
    before = Counter(s3store.s3.requests)
    time.sleep(0.4)
    assert [j.id for j in s3store.claim(worker="w", lease=60)] == [job.id]
    assert "LIST" not in _delta(s3store, before)  # the listing holds delayed markers too
