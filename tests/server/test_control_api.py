"""Issue 13 over HTTP: GET /jobs/{id}/history (readers), POST /admin/pause and /admin/resume (admins only)."""

from __future__ import annotations

import pytest

from .conftest import LiveServer, headers


def test_history_lists_the_attempts(server: LiveServer) -> None:
    job_id = server.queue.enqueue({"n": 1}, max_attempts=2)
    assert server.get(f"/jobs/{job_id}/history").json() == {"job_id": job_id, "attempts": []}
    first = server.queue.claim(worker="box-a:1:aa")
    assert first is not None
    server.queue.fail(first, error="flaky", retry=True, delay=0)
    second = server.queue.claim(worker="box-b:2:bb")
    assert second is not None
    running = server.get(f"/jobs/{job_id}/history").json()["attempts"]
    assert [(a["attempt"], a["outcome"], a["worker"]) for a in running] == [
        (1, "retried", "box-a:1:aa"),
        (2, "running", "box-b:2:bb"),
    ]
    assert running[0]["error"] == "flaky" and running[0]["duration"] is not None and running[1]["ended_at"] is None
    server.queue.complete(second)
    done = server.get(f"/jobs/{job_id}/history").json()["attempts"]
    assert done[1]["outcome"] == "completed" and done[1]["ended_at"] is not None
    assert server.get("/jobs/999999/history").status_code == 404


def test_pause_and_resume_need_the_admin_role(server: LiveServer) -> None:
    for role in (None, "producer", "worker", "reader"):
        assert server.post("/admin/pause", headers=headers(role)).status_code in (401, 403)
    assert server.get("/admin/pauses", headers=headers("reader")).status_code == 403
    paused = server.post("/admin/pause", headers=headers("admin"))
    assert paused.status_code == 200 and paused.json()["queue"] is True and paused.json()["since"]
    job_id = server.post("/create-job", json={"data": {"n": 1}}, headers=headers("producer")).json()["job_id"]
    assert server.queue.claim() is None  # the queue is paused; the job was still taken
    labelled = server.post("/admin/pause", json={"label": "queue:images"}, headers=headers("admin")).json()
    assert labelled["labels"].keys() == {"queue:images"}
    left = server.post("/admin/resume", json={}, headers=headers("admin")).json()
    assert left["queue"] is False and left["labels"].keys() == {"queue:images"}
    assert server.get("/admin/pauses", headers=headers("admin")).json() == left
    taken = server.queue.claim()
    assert taken is not None and taken.id == job_id
    assert server.post("/admin/pause", json={"label": "a,b"}, headers=headers("admin")).status_code == 422
    assert server.post("/admin/resume", json={"label": "queue:images"}, headers=headers("admin")).json() == {
        "queue": False,
        "since": None,
        "labels": {},
    }


def test_a_paused_named_queue_gives_its_worker_api_claims_nothing(server: LiveServer) -> None:
    admin, worker = headers("admin"), headers("worker", **{"X-Worker-Id": "w1"})
    assert server.post("/api/v1/queues", json={"name": "images"}, headers=admin).status_code in (200, 201)
    server.post("/api/v1/queues/images/jobs", json={"payload": {"n": 1}}, headers=headers("producer"))
    server.post("/admin/pause", json={"label": "queue:images"}, headers=admin)
    claim = server.post("/api/v1/queues/images/jobs/claim", json={"count": 1, "block_ms": 0}, headers=worker)
    assert claim.status_code == 200 and claim.json()["jobs"] == []
    server.post("/admin/resume", json={"label": "queue:images"}, headers=admin)
    claim = server.post("/api/v1/queues/images/jobs/claim", json={"count": 1, "block_ms": 0}, headers=worker)
    assert [job["payload"] for job in claim.json()["jobs"]] == [{"n": 1}]


def test_serve_takes_per_type_limits_for_its_worker() -> None:
    from octoqueue.cli.serve import build_settings
    from octoqueue.errors import ConfigurationError

    settings = build_settings({"worker_limits": ("email=2", "report=1")})
    assert settings.worker_type_limits == {"email": 2, "report": 1}
    with pytest.raises(ConfigurationError, match="TYPE=N"):
        build_settings({"worker_limits": ("email=0",)})
