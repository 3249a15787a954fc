"""GET /jobs/{id}?wait=N: a long poll that answers when the job is finished, without holding a thread."""

from __future__ import annotations

import threading
import time

from .conftest import LiveServer, headers


def test_the_answer_comes_when_the_job_finishes(server: LiveServer) -> None:
    job_id = server.post("/create-job", json={"data": {"a": 1}}, headers=headers("producer")).json()["job_id"]
    threading.Timer(0.3, server.queue.complete, args=(job_id,), kwargs={"result": {"n": 2}}).start()
    started = time.monotonic()
    answer = server.get(f"/jobs/{job_id}", params={"wait": 10})
    took = time.monotonic() - started
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["result"]) == ("completed", {"n": 2})
    assert 0.25 < took < 2.0


def test_a_wait_that_runs_out_answers_the_state_then(server: LiveServer) -> None:
    job_id = server.post("/create-job", json={"data": {"a": 1}}, headers=headers("producer")).json()["job_id"]
    started = time.monotonic()
    answer = server.get(f"/jobs/{job_id}", params={"wait": 0.3})
    assert answer.json()["status"] == "pending"
    assert 0.3 <= time.monotonic() - started < 2.0
    assert server.get(f"/jobs/{job_id}", params={"wait": 61}).status_code == 422


def test_many_waiters_hold_no_threads(server: LiveServer) -> None:
    job_id = server.post("/create-job", json={"data": {"a": 1}}, headers=headers("producer")).json()["job_id"]
    answers: list[int] = []
    waiters = [
        threading.Thread(target=lambda: answers.append(server.get(f"/jobs/{job_id}", params={"wait": 20}).status_code))
        for _ in range(60)  # more than the server's 40 worker threads
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert server.get("/jobs/999999").status_code == 404  # a plain read still gets a thread at once
    assert time.monotonic() - started < 1.0
    server.queue.complete(job_id)
    for waiter in waiters:
        waiter.join(timeout=10)
    assert answers == [200] * 60
