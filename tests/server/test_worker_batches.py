"""Batch completions, failures and heartbeats over HTTP: one request for the jobs a worker holds, one answer per
job — what its own endpoint would have answered — each still fenced by its attempt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy
from octoqueue.states import JobState

from .conftest import KEYS, LiveServer, headers
from .test_workers import Q, claim, make_queue, submit


@pytest.fixture(params=["memory", "redis"])
def batch_server(request: pytest.FixtureRequest, make_server: Any) -> Iterator[LiveServer]:
    """The memory store completes one job at a time (each patient, as GitHub's must be); Redis batches."""
    if request.param == "memory":
        queue = Queue("memory://", retry=RetryPolicy(initial=0.3, jitter=0), lease=300)
    else:
        from tests.redis_store.server import fresh_store

        queue = Queue(fresh_store(request), retry=RetryPolicy(initial=0.3, jitter=0), lease=300)
    yield make_server(queue)
    queue.close()


def _count_batches(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    store = server.queue.store
    sizes: list[int] = []
    original = store.transition_many

    def counted(moves: Any) -> Any:
        sizes.append(len(moves))
        return original(moves)

    monkeypatch.setattr(store, "transition_many", counted)
    return sizes


def post(server: LiveServer, verb: str, jobs: list[dict[str, Any]], name: str = "work") -> dict[str, Any]:
    response = server.post(f"{Q}/{name}/jobs/{verb}", json={"jobs": jobs}, headers=headers("worker"))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_complete_many_answers_each_job_as_its_own_endpoint_would(
    batch_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = batch_server
    make_queue(server)
    make_queue(server, "other")
    submit(server, {"jobs": [{"payload": {"i": i}} for i in range(4)]})
    submit(server, {"payload": {"elsewhere": True}}, "other")
    a, b, c, d = claim(server, count=4)
    (foreign,) = claim(server, "other")
    sizes = _count_batches(server, monkeypatch)
    answer = post(
        server,
        "complete",
        [
            {"id": a["id"], "result": {"n": 1}},
            {"id": f"{b['job_id']}.{b['attempt'] + 1}"},  # a stale attempt
            {"id": str(c["job_id"])},  # no attempt: 400
            {"id": foreign["id"]},  # another queue's job: 404
            {"id": "999999.1"},
            {"id": d["id"], "result": {"blob": "x" * 70_000}},  # too large for a comment: 413, left in hand
            {"id": str(c["job_id"]), "attempt": c["attempt"], "result": [3]},
        ],
    )
    codes = [r["code"] for r in answer["results"]]
    assert codes == [200, 409, 400, 404, 404, 413, 200] and answer["done"] == 2
    assert [r["id"] for r in answer["results"]][:2] == [a["id"], f"{b['job_id']}.{b['attempt'] + 1}"]
    assert answer["results"][0]["job"]["status"] == "completed" and "no longer holds" in answer["results"][1]["detail"]
    stored = {j: server.queue.get(j) for j in (a["job_id"], b["job_id"], c["job_id"], d["job_id"])}
    assert [(s.state, s.result) for s in stored.values()] == [
        (JobState.COMPLETED, {"n": 1}),
        (JobState.PROCESSING, None),
        (JobState.COMPLETED, [3]),
        (JobState.PROCESSING, None),
    ]
    assert server.queue.get(foreign["job_id"]).state is JobState.PROCESSING
    # Redis: the two completions that reached the store (and the stale one) in one call; memory: each on its own
    assert sizes == ([3] if server.queue.store.batches_transitions else [])
    assert 'octoqueue_stale_results_total{queue="work"} 1.0' in server.get("/metrics").text


def test_fail_many_retries_or_fails_each_job(batch_server: LiveServer) -> None:
    server = batch_server
    make_queue(server, max_retries=1)
    submit(server, {"jobs": [{"payload": {"i": i}} for i in range(2)]})
    a, b = claim(server, count=2)
    answer = post(
        server,
        "fail",
        [
            {"id": a["id"], "error": "try again"},
            {"id": b["id"], "error": "bad input", "retry": False},
            {"id": a["id"], "error": "twice"},  # that attempt no longer holds the job
        ],
    )
    assert [r["code"] for r in answer["results"]] == [200, 200, 409]
    assert [r["job"]["status"] for r in answer["results"][:2]] == ["pending", "failed"]
    assert answer["results"][0]["job"]["retry_at"] is not None
    assert server.queue.get(a["job_id"]).last_error == "try again"
    assert server.queue.get(b["job_id"]).state is JobState.FAILED


def test_heartbeat_many_extends_each_lease(batch_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server = batch_server
    make_queue(server, claim_timeout=300)
    submit(server, {"jobs": [{"payload": {"i": i}} for i in range(2)]})
    a, b = claim(server, count=2)
    sizes = _count_batches(server, monkeypatch)
    answer = post(server, "heartbeat", [{"id": a["id"]}, {"id": b["id"]}, {"id": f"{a['job_id']}.9"}])
    assert [r["code"] for r in answer["results"]] == [200, 200, 409]
    for claimed, renewed in zip([a, b], answer["results"], strict=False):
        assert renewed["job"]["status"] == "processing"
        assert renewed["job"]["lease_expires_at"] > claimed["lease_expires_at"]
    assert sizes == [3]  # one store call for every renewal, batching store or not


def test_batches_are_for_workers_and_bounded(server: LiveServer) -> None:
    make_queue(server)
    for verb in ("complete", "fail", "heartbeat"):
        path = f"{Q}/work/jobs/{verb}"
        body = {"jobs": [{"id": "1.1"}]}
        assert server.post(path, json=body, headers=headers("producer")).status_code == 403
        assert server.post(path, json=body).status_code == 401
        assert server.post(path, json={"jobs": []}, headers=headers("worker")).status_code == 422
        too_many = {"jobs": [{"id": f"{i}.1"} for i in range(1, 1002)]}
        assert server.post(path, json=too_many, headers=headers("worker")).status_code == 422
        assert server.post(f"{Q}/missing/jobs/{verb}", json=body, headers=headers("worker")).status_code == 404


def test_a_worker_key_cannot_finish_a_job_another_key_claimed(make_server: Any) -> None:
    """The attempt in '<job>.<attempt>' is a small number anyone can guess: a claim is bound to its key."""
    other_key = "other-worker-key-0123456789"
    keys = ",".join(f"{role}:{key}" for role, key in KEYS.items()) + f",worker:{other_key}"
    server = make_server(api_keys=keys)
    make_queue(server)
    assert submit(server, {"jobs": [{"payload": {"n": n}} for n in range(3)]}).ok
    held = [job["id"] for job in claim(server, count=3)]
    other = {"X-API-Key": other_key, "X-Worker-Id": f"w1{held[0]}"}
    for verb in ("complete", "fail", "heartbeat"):
        single = server.put(f"{Q}/work/jobs/{held[0]}/{verb}", json={}, headers=other)
        assert single.status_code == 409 and "not held by a claim of this API key" in single.text
        batch = server.post(f"{Q}/work/jobs/{verb}", json={"jobs": [{"id": i} for i in held]}, headers=other)
        assert batch.status_code == 200 and batch.json()["done"] == 0
        assert {r["code"] for r in batch.json()["results"]} == {409}
    assert all(job.state is JobState.PROCESSING for job in server.queue.store.iter_jobs())
    # The key that claimed them finishes them; an admin may too.
    assert post(server, "complete", [{"id": held[0]}, {"id": held[1]}])["done"] == 2
    admin = server.put(f"{Q}/work/jobs/{held[2]}/fail", json={"retry": False}, headers=headers("admin"))
    assert admin.status_code == 200 and admin.json()["status"] == "failed"
