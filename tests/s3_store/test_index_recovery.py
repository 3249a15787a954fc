"""The job objects are the truth; the indexes may lag, go stale or be deleted, and are rebuilt from the jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from octoqueue.job import NewJob
from octoqueue.states import JobState
from octoqueue.stores.s3 import layout
from octoqueue.stores.s3 import store as s3_store_module
from tests.s3_store.conftest import open_s3


def _keys(loopback_s3: Any, bucket: str, prefix: str) -> list[str]:
    listed = loopback_s3.client().list_objects_v2(Bucket=bucket, Prefix=f"q/{prefix}")
    return [o["Key"] for o in listed.get("Contents", ())]


def _delete(loopback_s3: Any, bucket: str, keys: list[str]) -> None:
    client = loopback_s3.client()
    for key in keys:
        client.delete_object(Bucket=bucket, Key=key)


@pytest.fixture
def no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Markers count as stale at once (instead of after a minute): the tests move the rule, not the clock."""
    monkeypatch.setattr(s3_store_module, "GRACE", timedelta(0))


def test_deleted_index_is_rebuilt_and_nothing_is_lost(loopback_s3: Any, bucket: str) -> None:
    store = open_s3(loopback_s3, bucket)
    ids = [store.create(NewJob(data={"i": i}, title="t", max_attempts=2)).id for i in range(6)]
    (running,) = store.claim(worker="w", lease=60)
    store.transition(ids[1], expected=JobState.PENDING, target=JobState.CANCELLED)
    _delete(loopback_s3, bucket, _keys(loopback_s3, bucket, "index/"))  # index/built.json goes too

    other = open_s3(loopback_s3, bucket)  # a fresh process: no cached listing
    assert other.claim(worker="w2", lease=60) == []  # the index is the only way claimers find jobs
    assert other.count() == dict.fromkeys(JobState, 0)
    assert other.recover_expired() == []  # ... notices index/built.json is gone and rebuilds
    assert other.count()[JobState.PENDING] == 4
    assert other.count()[JobState.PROCESSING] == 1 and other.count()[JobState.CANCELLED] == 1
    claimed = other.claim(worker="w2", lease=60, limit=10)
    assert sorted(j.id for j in claimed) == sorted(set(ids) - {running.id, ids[1]})
    done = other.transition(running.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1)
    assert done.state is JobState.COMPLETED


def test_a_lost_marker_is_restored_and_stale_ones_are_dropped(loopback_s3: Any, bucket: str, no_grace: None) -> None:
    store = open_s3(loopback_s3, bucket)
    lost = store.create(NewJob(data={}, title="its marker is lost"))
    moved = store.create(NewJob(data={}, title="its old marker stays"))
    pending_marker = layout.marker_key(store.get(moved.id))
    store.transition(moved.id, expected=JobState.PENDING, target=JobState.COMPLETED)
    client = loopback_s3.client()
    client.put_object(Bucket=bucket, Key=f"q/{pending_marker}", Body=b"stale")  # as if a mover died mid-way
    client.put_object(Bucket=bucket, Key="q/index/failed/000000009999", Body=b"no such job")
    _delete(loopback_s3, bucket, [f"q/{layout.marker_key(store.get(lost.id))}"])

    fixed = open_s3(loopback_s3, bucket).rebuild_index()
    assert fixed == 3
    assert _keys(loopback_s3, bucket, "index/pending/") == [f"q/{layout.marker_key(store.get(lost.id))}"]
    assert _keys(loopback_s3, bucket, "index/failed/") == []
    worker = open_s3(loopback_s3, bucket)
    assert [j.id for j in worker.claim(worker="w", lease=60, limit=5)] == [lost.id]
    assert worker.rebuild_index() == 0  # agreed now


@pytest.mark.parametrize("step", [0, 3])
def test_claimers_skip_and_drop_a_stale_marker(
    loopback_s3: Any, bucket: str, no_grace: None, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    # After a marker whose job is elsewhere a claimer steps past `step` candidates; it still tries them last.
    monkeypatch.setattr(s3_store_module, "_spread", lambda: step)
    store = open_s3(loopback_s3, bucket)
    gone = store.create(NewJob(data={}, title="completed elsewhere"))
    live = store.create(NewJob(data={}, title="claimable"))
    stale = layout.marker_key(store.get(gone.id))
    store.transition(gone.id, expected=JobState.PENDING, target=JobState.COMPLETED)
    loopback_s3.client().put_object(Bucket=bucket, Key=f"q/{stale}", Body=b"stale")
    worker = open_s3(loopback_s3, bucket)
    assert [j.id for j in worker.claim(worker="w", lease=60, limit=5)] == [live.id]
    assert f"q/{stale}" not in _keys(loopback_s3, bucket, "index/pending/")
    assert store.get(gone.id).state is JobState.COMPLETED


def test_a_young_stray_marker_is_left_for_its_writer(loopback_s3: Any, bucket: str) -> None:
    store = open_s3(loopback_s3, bucket)
    loopback_s3.client().put_object(Bucket=bucket, Key="q/index/pending/2/000000000777.0", Body=b"in flight")
    assert store.claim(worker="w", lease=60) == []
    assert store.rebuild_index() == 0  # younger than the grace period: a create may be between its two writes
    assert _keys(loopback_s3, bucket, "index/pending/") == ["q/index/pending/2/000000000777.0"]


def test_an_index_older_than_reindex_interval_is_rebuilt(
    loopback_s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_store_module, "INDEX_CHECK_INTERVAL", 0.0)
    patient = open_s3(loopback_s3, bucket, reindex_interval=3600)
    job = patient.create(NewJob(data={}, title="t"))
    patient.recover_expired()  # a new store: index/built.json is written by a first (empty-handed) rebuild
    assert _keys(loopback_s3, bucket, "index/built.json")
    _delete(loopback_s3, bucket, [f"q/{layout.marker_key(job)}"])  # one marker lost; index/built.json stays
    patient.recover_expired()
    assert open_s3(loopback_s3, bucket).claim(worker="w", lease=60) == []  # not rebuilt within the hour
    eager = open_s3(loopback_s3, bucket, reindex_interval=0.001)
    eager.recover_expired()  # index/built.json is older than its interval: it takes the rebuild
    assert [j.id for j in open_s3(loopback_s3, bucket).claim(worker="w", lease=60)] == [job.id]
