"""``/create-job`` answers ``processing_status`` as the original did: whether a worker was woken for the job."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from octoqueue.queue import Queue

from .conftest import LiveServer, headers
from .test_workers import Q, make_queue


def _create(server: LiveServer, **body: Any) -> dict[str, Any]:
    response = server.post("/create-job", json={"data": {"n": 1}, **body}, headers=headers("producer"))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_nobody_to_wake_on_a_private_store_is_unscheduled(server: LiveServer) -> None:
    assert _create(server) == {"job_id": 1, "status": "pending", "processing_status": "unscheduled"}


def test_a_claim_waiting_on_a_named_queue_does_not_schedule_a_create_job(server: LiveServer) -> None:
    make_queue(server, "q")
    claimed: list[requests.Response] = []
    waiting = threading.Thread(
        target=lambda: claimed.append(
            server.post(f"{Q}/q/jobs/claim", json={"block_ms": 20_000}, headers=headers("worker"))
        )
    )
    waiting.start()
    deadline = threading.Event()
    while server.app.state.runtime.arrivals.waiters == 0 and not deadline.wait(0.01):
        pass
    # /create-job cannot put a job in a named queue (queue labels are reserved), so the claim waiting on "q" does
    # not take it: nothing here will.
    assert _create(server, additional_labels=["other"])["processing_status"] == "unscheduled"
    submitted = server.post(f"{Q}/q/jobs", json={"payload": {"n": 1}}, headers=headers("producer"))
    assert submitted.status_code == 200, submitted.text
    waiting.join(timeout=30)
    assert [job["job_id"] for job in claimed[0].json()["jobs"]] == [submitted.json()["jobs"][0]["job_id"]]


def test_the_in_process_worker_makes_it_scheduled(make_server: Any) -> None:
    server = make_server(worker=True, handler="json:dumps")
    assert _create(server)["processing_status"] == "scheduled"


def test_an_in_process_worker_for_other_labels_does_not(make_server: Any) -> None:
    server = make_server(worker=True, handler="json:dumps", worker_labels="gpu")
    assert _create(server)["processing_status"] == "unscheduled"
    assert _create(server, additional_labels=["gpu"])["processing_status"] == "scheduled"


def test_a_shared_store_without_a_local_worker_is_unknown(make_server: Any, tmp_path: Any) -> None:
    server = make_server(queue=Queue(f"sqlite:///{tmp_path / 'q.db'}"))
    assert _create(server)["processing_status"] == "unknown"


@pytest.mark.parametrize(("wake", "expected"), [(True, "scheduled"), (False, "unknown")])
def test_a_workflow_dispatch_sent_makes_it_scheduled(
    github_queue: Any, make_server: Any, wake: bool, expected: str
) -> None:
    gh, queue = github_queue
    queue.store.wake_workflow = wake
    server = make_server(queue=queue)
    assert _create(server)["processing_status"] == expected
    assert len(gh.dispatches) == (1 if wake else 0)
    assert _create(server, delay=3600)["processing_status"] == "unknown"  # not due: no dispatch


def test_a_dispatch_github_refused_makes_it_unscheduled(
    github_queue: Any, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = github_queue[1]
    queue.store.wake_workflow = True
    monkeypatch.setattr(queue.store, "_wake", lambda job_id: False)  # as when GitHub refuses the dispatch
    server = make_server(queue=queue)
    assert _create(server)["processing_status"] == "unscheduled"
