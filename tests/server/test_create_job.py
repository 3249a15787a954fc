"""POST /create-job: the original's contract, its key actually checked, limits, idempotency and rate limiting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from octoqueue.states import JobState, Priority

from .conftest import KEYS, LiveServer, headers


def create(server: LiveServer, body: Any, role: str | None = "producer", **extra: str) -> requests.Response:
    return server.post("/create-job", json=body, headers=headers(role, **extra))


def test_creates_a_pending_job(server: LiveServer) -> None:
    response = create(server, {"data": {"your_key": "v", "another_key": 123}, "title": "T", "additional_labels": ["x"]})
    assert response.status_code == 201
    assert response.json() == {"job_id": 1, "status": "pending", "processing_status": "unscheduled"}
    job = server.queue.get(1)
    assert job.data == {"your_key": "v", "another_key": 123}
    assert job.title == "T"
    assert job.labels == ("x",)
    assert job.state is JobState.PENDING


def test_default_title_is_job_and_a_time(server: LiveServer) -> None:
    job_id = create(server, {"data": {}}).json()["job_id"]
    assert server.queue.get(job_id).title.startswith("Job 20")


def test_accepts_the_extended_options(server: LiveServer) -> None:
    body = {"data": {"a": 1}, "priority": "high", "delay": 60, "max_attempts": 3, "type": "resize", "timeout": 5}
    job = server.queue.get(create(server, body).json()["job_id"])
    assert job.priority == Priority.HIGH
    assert job.max_attempts == 3
    assert job.type == "resize"
    assert job.timeout == 5
    assert job.run_at is not None and job.run_at > job.created_at
    run_at = create(server, {"data": {}, "run_at": "2031-01-01T00:00:00Z", "priority": 0}).json()["job_id"]
    assert server.queue.get(run_at).run_at is not None
    assert server.queue.get(run_at).priority == Priority.CRITICAL


# -- authentication --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["producer", "admin"])
def test_producer_and_admin_keys_may_create(server: LiveServer, role: str) -> None:
    assert create(server, {"data": {}}, role=role).status_code == 201


def test_no_key_is_401(server: LiveServer) -> None:
    response = create(server, {"data": {}}, role=None)
    assert response.status_code == 401
    assert "Missing API key" in response.json()["detail"]
    assert server.queue.count_open() == 0


def test_wrong_key_is_401(server: LiveServer) -> None:
    response = server.post("/create-job", json={"data": {}}, headers={"X-API-Key": "not-a-key"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key"}


@pytest.mark.parametrize("role", ["worker", "reader"])
def test_wrong_role_is_403(server: LiveServer, role: str) -> None:
    response = create(server, {"data": {}}, role=role)
    assert response.status_code == 403
    assert "producer" in response.json()["detail"]
    assert server.queue.count_open() == 0


def test_single_api_key_has_every_role(make_server: Any) -> None:
    live = make_server(api_key="the-one-key", api_keys=None)
    assert live.post("/create-job", json={"data": {}}, headers={"X-API-Key": "the-one-key"}).status_code == 201
    assert live.post("/create-job", json={"data": {}}).status_code == 401


def test_without_keys_the_server_is_open(make_server: Any) -> None:
    live = make_server(api_keys=None)
    assert live.post("/create-job", json={"data": {}}).status_code == 201


# -- validation ------------------------------------------------------------------------------------------------
def test_malformed_json_is_422_with_a_clear_message(server: LiveServer) -> None:
    response = server.post(
        "/create-job", data=b'{"data": {', headers=headers("producer", **{"Content-Type": "application/json"})
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["type"] == "json_invalid"
    assert detail["msg"] == "JSON decode error"
    assert server.queue.count_open() == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"data": [1, 2]},
        {"data": "text"},
        {"data": {}, "additional_labels": ["a,b"]},
        {"data": {}, "priority": 9},
        {"data": {}, "delay": 1, "run_at": "2031-01-01T00:00:00Z"},
        {"data": {}, "run_at": "2031-01-01T00:00:00"},
        {"data": {}, "title": "x" * 257},
        {"data": {"s": "\ud800"}},
    ],
)
def test_invalid_bodies_are_422(server: LiveServer, body: Any) -> None:
    response = server.post("/create-job", json=body, headers=headers("producer"))
    assert response.status_code == 422, response.text
    assert server.queue.count_open() == 0


def test_nan_is_refused(server: LiveServer) -> None:
    response = server.post(
        "/create-job", data=b'{"data": {"x": NaN}}', headers=headers("producer", **{"Content-Type": "application/json"})
    )
    assert response.status_code == 422


def test_a_status_label_cannot_be_an_additional_label(server: LiveServer) -> None:
    response = create(server, {"data": {}, "additional_labels": ["completed"]})
    assert response.status_code == 400
    assert "status label" in response.json()["detail"]


@pytest.mark.parametrize("label", ["Completed", "archived", "octoqueue-settings", "requeue", "queue:work", "  "])
def test_a_reserved_or_blank_label_is_400_and_creates_nothing(server: LiveServer, label: str) -> None:
    response = create(server, {"data": {}, "additional_labels": [label]})
    assert response.status_code == 400, response.text
    assert repr(label) in response.json()["detail"]
    assert server.queue.count_open() == 0


def test_data_too_large_for_an_issue_is_413(make_server: Any) -> None:
    live = make_server(max_body_bytes=0)
    response = live.post("/create-job", json={"data": {"x": "y" * 70_000}}, headers=headers("producer"))
    assert response.status_code == 413
    assert "65,536" in response.json()["detail"] or "at most" in response.json()["detail"]


# -- the admin schema ------------------------------------------------------------------------------------------
def test_data_is_validated_against_the_admin_schema(server: LiveServer) -> None:
    schema = {"type": "object", "properties": {"your_key": {"type": "string"}}, "required": ["your_key"]}
    assert server.post("/admin/schema", json={"schema": schema}, headers=headers("admin")).status_code == 200
    bad = create(server, {"data": {"your_key": 5}})
    assert bad.status_code == 400
    assert "5 is not of type 'string'" in bad.json()["detail"]
    assert "/your_key" in bad.json()["detail"]
    missing = create(server, {"data": {}})
    assert missing.status_code == 400
    assert "'your_key' is a required property" in missing.json()["detail"]
    assert create(server, {"data": {"your_key": "ok"}}).status_code == 201
    assert server.queue.count_open() == 1


# -- body size ---------------------------------------------------------------------------------------------------
def test_declared_body_over_the_limit_is_413(make_server: Any) -> None:
    live = make_server(max_body_bytes=2_000)
    response = live.post(
        "/create-job",
        data=b'{"data": {"x": "' + b"y" * 5_000 + b'"}}',
        headers=headers("producer", **{"Content-Type": "application/json"}),
    )
    assert response.status_code == 413
    assert "2,000 bytes" in response.json()["detail"]
    assert live.queue.count_open() == 0


def test_streamed_body_over_the_limit_is_413(make_server: Any) -> None:
    live = make_server(max_body_bytes=2_000)

    def chunks() -> Iterator[bytes]:
        yield b'{"data": {"x": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}}'

    response = live.post(
        "/create-job", data=chunks(), headers=headers("producer", **{"Content-Type": "application/json"})
    )
    assert response.status_code == 413
    assert live.queue.count_open() == 0


def test_streamed_body_under_the_limit_is_accepted(make_server: Any) -> None:
    live = make_server(max_body_bytes=2_000)

    def chunks() -> Iterator[bytes]:
        yield b'{"data": '
        yield b'{"x": 1}}'

    response = live.post(
        "/create-job", data=chunks(), headers=headers("producer", **{"Content-Type": "application/json"})
    )
    assert response.status_code == 201


# -- idempotency -------------------------------------------------------------------------------------------------
def test_a_retry_with_the_same_idempotency_key_returns_the_same_job(server: LiveServer) -> None:
    body = {"data": {"order": 42}}
    first = create(server, body, **{"Idempotency-Key": "order-42"})
    second = create(server, body, **{"Idempotency-Key": "order-42"})
    assert first.status_code == second.status_code == 201
    assert first.json()["job_id"] == second.json()["job_id"]
    assert server.queue.count_open() == 1
    third = create(server, body, **{"Idempotency-Key": "order-43"})
    assert third.json()["job_id"] != first.json()["job_id"]


def test_a_retry_shows_the_jobs_current_state(server: LiveServer) -> None:
    first = create(server, {"data": {"a": 1}}, **{"Idempotency-Key": "k1"}).json()
    server.queue.claim()
    again = create(server, {"data": {"a": 1}}, **{"Idempotency-Key": "k1"}).json()
    assert again == {"job_id": first["job_id"], "status": "processing", "processing_status": "unknown"}


def test_reusing_a_key_for_different_data_is_409(server: LiveServer) -> None:
    assert create(server, {"data": {"a": 1}}, **{"Idempotency-Key": "same"}).status_code == 201
    response = create(server, {"data": {"a": 2}}, **{"Idempotency-Key": "same"})
    assert response.status_code == 409
    assert "different data" in response.json()["detail"]
    assert server.queue.count_open() == 1


# -- rate limiting -----------------------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(make_server: Any) -> None:
    live = make_server(rate_limit_requests=3, rate_limit_window=30)
    codes = [create(live, {"data": {"i": i}}).status_code for i in range(3)]
    assert codes == [201, 201, 201]
    limited = create(live, {"data": {"i": 3}})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert "Rate limit exceeded" in limited.json()["detail"]
    assert live.queue.count_open() == 3


def test_rate_limit_is_per_client(make_server: Any) -> None:
    live = make_server(rate_limit_requests=1, rate_limit_window=30)
    assert create(live, {"data": {}}, role="producer").status_code == 201
    assert create(live, {"data": {}}, role="producer").status_code == 429
    # another key is another client
    assert create(live, {"data": {}}, role="admin").status_code == 201
    # requests without a (valid) key are counted by IP, and are throttled too
    assert live.post("/create-job", json={"data": {}}).status_code == 401
    assert live.post("/create-job", json={"data": {}}, headers={"X-API-Key": "guess"}).status_code == 429


def test_rate_limit_window_slides(make_server: Any) -> None:
    live = make_server(rate_limit_requests=1, rate_limit_window=0.5)
    assert create(live, {"data": {}}).status_code == 201
    assert create(live, {"data": {}}).status_code == 429
    time.sleep(0.6)
    assert create(live, {"data": {}}).status_code == 201


# -- CORS --------------------------------------------------------------------------------------------------------
def test_cors_allows_the_configured_origins_only(make_server: Any) -> None:
    live = make_server(allowed_origins="https://app.example,http://localhost:3000")
    preflight = requests.options(
        live("/create-job"),
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    created = live.post("/create-job", json={"data": {}}, headers=headers("producer", Origin="http://localhost:3000"))
    assert created.headers["access-control-allow-origin"] == "http://localhost:3000"
    other = live.post("/create-job", json={"data": {}}, headers=headers("producer", Origin="https://evil.example"))
    assert "access-control-allow-origin" not in other.headers
    denied = requests.options(
        live("/create-job"),
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert denied.status_code == 400


def test_keys_are_not_echoed(server: LiveServer) -> None:
    response = server.post("/create-job", json={"data": {}}, headers={"X-API-Key": KEYS["worker"]})
    assert KEYS["worker"] not in response.text


def test_depends_on_makes_a_job_wait_for_its_parents(server: LiveServer) -> None:
    parent = create(server, {"data": {"n": 1}}).json()["job_id"]
    child = create(server, {"data": {"n": 2}, "depends_on": [parent], "on_parent_failure": "cancel"}).json()["job_id"]
    assert server.queue.dependencies.parents(child) == [parent]
    server.queue.cancel(parent)
    assert server.queue.get(child).state is JobState.CANCELLED
    unknown = create(server, {"data": {}, "depends_on": [987654]})
    assert unknown.status_code == 400 and "987654" in unknown.json()["detail"]
    both = create(server, {"data": {}, "depends_on": [parent], "delay": 5})
    assert both.status_code == 400


def test_depends_on_is_refused_with_400_when_waiting_jobs_fill_the_room(server: LiveServer) -> None:
    parents = [server.queue.enqueue({"parent": n}) for n in range(100)]  # pending forever: nobody runs them
    statuses = [create(server, {"data": {"n": n}, "depends_on": parents}).status_code for n in range(20)]
    assert statuses[:5] == [201] * 5
    refused = create(server, {"data": {"late": 1}, "depends_on": parents})
    assert refused.status_code == 400
    assert "too many jobs wait for parents" in refused.json()["detail"]
    assert statuses.count(201) == server.queue.store.count()[JobState.PENDING] - 100  # the refused made nothing
