"""Starq batches are all or nothing, and a retried batch with an Idempotency-Key creates nothing new."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LiveServer, headers
from .test_workers import Q, make_queue, submit

#: Over the job-body limit (GitHub's 65,536 characters less octoqueue's metadata).
OVERSIZE = {"blob": "x" * 70_000}


def _submit(server: LiveServer, body: dict[str, Any], key: str, name: str = "work") -> Any:
    return server.post(f"{Q}/{name}/jobs", json=body, headers=headers("producer", **{"Idempotency-Key": key}))


def test_a_batch_with_one_oversize_job_creates_nothing(server: LiveServer) -> None:
    make_queue(server)
    response = submit(server, {"jobs": [{"payload": {"i": 0}}, {"payload": {"i": 1}}, {"payload": OVERSIZE}]})
    assert response.status_code == 413
    assert response.json()["detail"].startswith("jobs[2]: ")
    assert server.queue.count_open() == 0


def test_a_batch_with_one_job_not_matching_the_schema_creates_nothing(server: LiveServer) -> None:
    make_queue(server, job_schema={"required": ["i"]})
    response = submit(server, {"jobs": [{"payload": {"i": 0}}, {"payload": {}}]})
    assert response.status_code == 400
    assert server.queue.count_open() == 0


def test_a_retried_batch_with_an_idempotency_key_returns_the_same_jobs(server: LiveServer) -> None:
    make_queue(server)
    batch = {"jobs": [{"payload": {"i": 0}}, {"payload": {"i": 0}}, {"payload": {"i": 1}, "priority": 0}]}
    first = _submit(server, batch, "batch-1")
    again = _submit(server, batch, "batch-1")
    assert first.status_code == again.status_code == 200
    ids = [job["job_id"] for job in first.json()["jobs"]]
    assert len(set(ids)) == 3
    assert [job["job_id"] for job in again.json()["jobs"]] == ids
    assert again.json()["submitted"] == 3
    assert server.queue.count_open() == 3
    other = _submit(server, batch, "batch-2")
    assert len({job["job_id"] for job in other.json()["jobs"]} & set(ids)) == 0


def test_a_batch_key_reused_for_other_payloads_is_409(server: LiveServer) -> None:
    make_queue(server)
    assert _submit(server, {"jobs": [{"payload": {"i": 0}}]}, "k").status_code == 200
    reused = _submit(server, {"jobs": [{"payload": {"i": 9}}]}, "k")
    assert reused.status_code == 409
    assert "jobs[0]" in reused.json()["detail"]
    assert server.queue.count_open() == 1


def test_a_batch_key_is_per_queue(server: LiveServer) -> None:
    make_queue(server, "a")
    make_queue(server, "b")
    batch = {"payload": {"i": 0}}
    in_a = _submit(server, batch, "k", "a").json()["jobs"][0]["job_id"]
    in_b = _submit(server, batch, "k", "b").json()["jobs"][0]["job_id"]
    assert in_a != in_b


def test_a_batch_is_created_with_one_store_call_per_priority_and_delay(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_queue(server)
    store = server.queue.store
    calls: list[int] = []
    create_many = store.create_many

    def counted(items: Any) -> Any:
        calls.append(len(items))
        return create_many(items)

    monkeypatch.setattr(store, "create_many", counted)
    same = submit(server, {"jobs": [{"payload": {"i": i}, "priority": 1} for i in range(5)]}).json()
    assert same["submitted"] == 5
    assert calls == [5]
    mixed = [{"payload": {"i": 0}}, {"payload": {"i": 1}, "delay": 60}, {"payload": {"i": 2}}]
    ids = [job["job_id"] for job in submit(server, {"jobs": mixed}).json()["jobs"]]
    assert calls == [5, 2, 1]
    assert [server.queue.get(job_id).data for job_id in ids] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert server.queue.get(ids[1]).run_at is not None
