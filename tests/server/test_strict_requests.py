"""Requests are read one way only: repeated JSON keys are refused on every route, integers are strict, and a
storm of /metrics scrapes costs one store round per cache period."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prometheus_client import generate_latest

from octoqueue.api.metrics import Metrics

from .conftest import LiveServer, headers
from .test_workers import Q, make_queue


def _raw(server: LiveServer, path: str, body: str, role: str = "producer", **extra: str) -> Any:
    return server.post(path, data=body.encode(), headers=headers(role, **{"Content-Type": "application/json", **extra}))


@pytest.mark.parametrize(
    ("path", "role", "body", "key"),
    [
        ("/create-job", "producer", '{"data": {"a": 1}, "priority": 0, "priority": 4}', "priority"),
        ("/create-job", "producer", '{"data": {"a": 1, "a": 2}}', "a"),
        ("/create-job", "producer", '{"data": {"deep": [{"x": 1, "x": 1}]}}', "x"),
        (f"{Q}/work/jobs", "producer", '{"jobs": [{"payload": {}, "priority": 1, "priority": 0}]}', "priority"),
        (f"{Q}/work/jobs/claim", "worker", '{"count": 1, "count": 100}', "count"),
        ("/admin/schema", "admin", '{"schema": {"type": "object", "type": "string"}}', "type"),
    ],
)
def test_a_repeated_json_key_is_422_naming_it(server: LiveServer, path: str, role: str, body: str, key: str) -> None:
    make_queue(server)
    response = _raw(server, path, body, role)
    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert problem["type"] == "json_invalid"
    assert f"Duplicate key {key!r}" in problem["msg"]
    assert problem["ctx"] == {"key": key}
    assert server.queue.count_open() == 0
    assert server.queue.store.get_setting("job_schema") is None


def test_repeated_keys_are_refused_without_a_content_type_and_for_json_subtypes(server: LiveServer) -> None:
    body = b'{"data": {}, "title": "a", "title": "b"}'
    for content_type in (None, "application/vnd.api+json"):
        extra = {"Content-Type": content_type} if content_type else {}
        response = server.post("/create-job", data=body, headers=headers("producer", **extra))
        assert response.status_code == 422
    assert server.queue.count_open() == 0


def test_keys_that_differ_only_in_case_or_nesting_are_fine(server: LiveServer) -> None:
    response = _raw(server, "/create-job", '{"data": {"a": {"a": 1}, "A": 2}}')
    assert response.status_code == 201


@pytest.mark.parametrize("value", ["2.0", '"2"', "true"])
def test_integers_are_strict(server: LiveServer, value: str) -> None:
    make_queue(server)
    assert _raw(server, "/create-job", f'{{"data": {{}}, "priority": {value}}}').status_code == 422
    assert _raw(server, "/create-job", f'{{"data": {{}}, "max_attempts": {value}}}').status_code == 422
    assert _raw(server, f"{Q}/work/jobs", f'{{"payload": {{}}, "priority": {value}}}').status_code == 422
    assert _raw(server, f"{Q}/work/jobs", f'{{"jobs": [{{"priority": {value}}}]}}').status_code == 422
    assert _raw(server, f"{Q}/work/jobs/claim", f'{{"count": {value}}}', "worker").status_code == 422
    assert _raw(server, f"{Q}/work/jobs/claim", f'{{"block_ms": {value}}}', "worker").status_code == 422
    assert _raw(server, Q, f'{{"name": "x", "max_retries": {value}}}', "admin").status_code == 422
    assert _raw(server, Q, f'{{"name": "y", "claim_timeout": {value}}}', "admin").status_code == 422
    assert server.queue.count_open() == 0
    assert _raw(server, "/create-job", '{"data": {}, "priority": 2}').status_code == 201


# -- /metrics --------------------------------------------------------------------------------------------------
def test_a_scrape_storm_costs_one_store_round(github_queue: Any, make_server: Any) -> None:
    gh, queue = github_queue
    queue.enqueue({"n": 1})
    server = make_server(queue=queue, metrics_cache_seconds=60, recover_interval=3600)  # no background reads
    gh.reset_counters()
    answers: list[str] = []
    storm = [threading.Thread(target=lambda: answers.append(server.get("/metrics").text)) for _ in range(10)]
    for thread in storm:
        thread.start()
    for thread in storm:
        thread.join(timeout=60)
    one_round = len(gh.request_log)
    assert 0 < one_round <= 10
    for _ in range(10):
        assert 'octoqueue_jobs{state="pending"} 1.0' in server.get("/metrics").text
    assert len(gh.request_log) == one_round
    assert len(answers) == 10 and all('octoqueue_jobs{state="pending"} 1.0' in text for text in answers)


def test_the_counts_are_read_again_after_the_cache_period(github_queue: Any) -> None:
    gh, queue = github_queue
    queue.enqueue({"n": 1})
    now = [1000.0]
    metrics = Metrics(lambda: queue, cache_seconds=5.0, clock=lambda: now[0])
    assert b'octoqueue_jobs{state="pending"} 1.0' in generate_latest(metrics.registry)
    gh.reset_counters()
    queue.enqueue({"n": 2})
    enqueued = len(gh.request_log)
    now[0] += 4.9
    assert b'octoqueue_jobs{state="pending"} 1.0' in generate_latest(metrics.registry)
    assert len(gh.request_log) == enqueued
    now[0] += 0.2
    assert b'octoqueue_jobs{state="pending"} 2.0' in generate_latest(metrics.registry)
    assert len(gh.request_log) > enqueued
