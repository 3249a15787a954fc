"""GET /jobs/{id}: poll a job created over HTTP."""

from __future__ import annotations

from collections.abc import Callable

from .conftest import LiveServer, headers


def test_status_follows_the_job(server: LiveServer) -> None:
    job_id = server.post("/create-job", json={"data": {"n": 1}, "title": "T"}, headers=headers("producer")).json()[
        "job_id"
    ]
    first = server.get(f"/jobs/{job_id}")
    assert first.status_code == 200
    body = first.json()
    assert body["job_id"] == job_id and body["status"] == "pending" and body["title"] == "T"
    assert body["attempt"] == 0 and body["result"] is None
    job = server.queue.claim()
    assert job is not None
    server.queue.complete(job, result={"answer": 2})
    done = server.get(f"/jobs/{job_id}").json()
    assert done["status"] == "completed" and done["result"] == {"answer": 2} and done["attempt"] == 1


def test_missing_and_malformed_ids(server: LiveServer) -> None:
    assert server.get("/jobs/999999").status_code == 404
    assert server.get("/jobs/0").status_code == 422
    assert server.get("/jobs/abc").status_code == 422


def test_keyed_reads(make_server: Callable[..., LiveServer]) -> None:
    keyed = make_server(open_reads=False)
    job_id = keyed.queue.enqueue({"a": 1})
    assert keyed.get(f"/jobs/{job_id}").status_code == 401
    assert keyed.get(f"/jobs/{job_id}", headers=headers("reader")).status_code == 200
    assert keyed.get(f"/jobs/{job_id}", headers={"X-API-Key": "wrong"}).status_code == 401
