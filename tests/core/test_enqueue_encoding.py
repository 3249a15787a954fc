"""The enqueue path encodes a job's data once: the queue's size check makes the compact JSON the stores write, and
hands it on with the NewJob (``NewJob.data_json``). A copy whose data changed (a sealed store's) is encoded afresh."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

import octoqueue.job
from octoqueue.errors import InvalidJobData
from octoqueue.job import NewJob, encode_data
from octoqueue.queue import Queue
from octoqueue.stores.memory import MemoryStore
from octoqueue.stores.sqlite import SQLiteStore


@pytest.fixture
def encodings(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every value ``NewJob.data_json`` encodes itself (none when it reuses the queue's text)."""
    seen: list[Any] = []

    def counting(value: Any) -> str:
        seen.append(value)
        return encode_data(value)

    monkeypatch.setattr(octoqueue.job, "encode_data", counting)
    return seen


def test_the_store_writes_the_text_the_queue_checked(tmp_path: Path, encodings: list[Any]) -> None:
    store = SQLiteStore(tmp_path / "q.db")
    with Queue(store) as queue:
        one = queue.enqueue_job({"text": "é", "n": [1, 2]})
        many = queue.enqueue_many([{"n": 1}, "two", None, [3]], idempotency_keys=["a", None, "c", None])
        assert encodings == []
        assert store.get(one.id).data == one.data == {"text": "é", "n": [1, 2]}
        raw = store._conn().execute("SELECT data FROM jobs WHERE id = ?", (one.id,)).fetchone()[0]
        assert raw == '{"text":"é","n":[1,2]}'
        assert [store.get(job.id).data for job in many] == [{"n": 1}, "two", None, [3]]
        assert [job.idempotency_key for job in many] == ["a", None, "c", None]


def test_a_copy_with_other_data_is_encoded_afresh(encodings: list[Any]) -> None:
    new = NewJob(data={"plain": 1}, title="t").with_data_json('{"plain":1}')
    assert new.data_json() == '{"plain":1}'
    assert encodings == []
    sealed = new.model_copy(update={"data": "octoqueue-encrypted:x"})
    assert sealed.data_json() == '"octoqueue-encrypted:x"'
    assert encodings == ["octoqueue-encrypted:x"]
    item = new.for_item(["other"], "key", '["other"]')
    assert (item.data, item.idempotency_key, item.title, item.data_json()) == (["other"], "key", "t", '["other"]')
    assert item.model_copy(update={"data": 5}).data_json() == "5"


def test_every_item_of_a_batch_is_checked_before_any_job_is_made() -> None:
    with Queue(MemoryStore()) as queue:
        with pytest.raises(InvalidJobData):
            queue.enqueue_many([{"n": 1}, {"n": math.nan}])
        with pytest.raises(InvalidJobData):
            queue.enqueue_many([{"n": 1}, {"n": object()}])
        assert list(queue.store.iter_jobs()) == []


def test_the_default_title_is_the_time_to_the_second() -> None:
    with Queue(MemoryStore()) as queue:
        job = queue.enqueue_job({"n": 1})
        assert re.fullmatch(r"Job \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", job.title)
        assert abs((job.created_at - job.created_at.fromisoformat(job.title[4:])).total_seconds()) < 2
