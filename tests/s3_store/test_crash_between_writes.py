"""A process that dies between two writes leaves nothing half-done that the next one cannot finish or undo."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from octoqueue.job import NewJob
from octoqueue.stores.s3 import layout
from octoqueue.stores.s3 import store as s3_store_module
from tests.s3_store.conftest import open_s3


def _orphan_key(loopback_s3: Any, bucket: str, key: str, job_id: int) -> dict[str, Any]:
    """The key object of a create that died before writing its job."""
    job = NewJob(data={"from": "the dead creator"}, title="orphan", idempotency_key=key).to_job(
        job_id, open_s3(loopback_s3, bucket).now()
    )
    record = {"key": key, "job": job.model_dump(mode="json", exclude={"url"})}
    loopback_s3.client().put_object(Bucket=bucket, Key=f"q/{layout.key_key(key)}", Body=json.dumps(record).encode())
    return record


def test_a_key_without_its_job_gets_the_job_it_promised(loopback_s3: Any, bucket: str) -> None:
    _orphan_key(loopback_s3, bucket, "k-1", 500)
    store = open_s3(loopback_s3, bucket)
    job = store.create(NewJob(data={"from": "the retry"}, title="retry", idempotency_key="k-1"))
    assert (job.id, job.data) == (500, {"from": "the dead creator"})
    assert store.get(500).idempotency_key == "k-1"
    assert [j.id for j in store.claim(worker="w", lease=60)] == [500]  # its marker was written too


def test_an_old_key_whose_job_was_purged_makes_a_new_job(
    loopback_s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_store_module, "GRACE", timedelta(0))  # the key counts as old at once
    _orphan_key(loopback_s3, bucket, "k-2", 600)
    store = open_s3(loopback_s3, bucket)
    job = store.create(NewJob(data={"from": "the retry"}, title="retry", idempotency_key="k-2"))
    assert job.id != 600 and job.data == {"from": "the retry"}
    again = store.create(NewJob(data={"from": "a third try"}, title="retry", idempotency_key="k-2"))
    assert again.id == job.id


def test_racing_comments_all_kept_in_order_with_distinct_ids(loopback_s3: Any, bucket: str) -> None:
    stores = [open_s3(loopback_s3, bucket) for _ in range(4)]
    job = stores[0].create(NewJob(data={}, title="talked about"))
    barrier = threading.Barrier(4)

    def talk(i: int) -> None:
        barrier.wait()
        for n in range(3):
            stores[i].comment(job.id, f"{i}-{n}")

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    notes = stores[0].comments(job.id)
    assert sorted(n.body for n in notes) == sorted(f"{i}-{n}" for i in range(4) for n in range(3))
    assert len({n.id for n in notes}) == 12
    assert stores[0].get(job.id).comments == 12
