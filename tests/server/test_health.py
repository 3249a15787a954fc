"""Probes, metrics and the OpenAPI document, through the real HTTP stack."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from octoqueue.errors import StoreUnavailable
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.github.client import RateLimit
from octoqueue.stores.memory import MemoryStore

from .conftest import LiveServer, headers


def test_health_is_the_originals_shape(server: LiveServer) -> None:
    before = time.time()
    response = server.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert isinstance(body["timestamp"], float)
    assert before - 1 <= body["timestamp"] <= time.time() + 1


def test_live_and_api_health(server: LiveServer) -> None:
    assert server.get("/live").json() == {"status": "alive"}
    assert server.get("/api/health").json() == {"status": "ok"}


def test_ready_checks_the_store_and_shows_its_url_to_admins_only(server: LiveServer) -> None:
    response = server.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    for role in ("reader", "producer", "worker"):
        assert server.get("/ready", headers=headers(role)).json() == {"status": "ready"}
    assert server.get("/ready", headers={"X-API-Key": "wrong"}).json() == {"status": "ready"}
    assert server.get("/ready", headers=headers("admin")).json() == {"status": "ready", "store": "memory://"}


def test_without_keys_ready_shows_the_store_to_everyone(make_server: Any) -> None:
    live = make_server(api_keys=None)
    assert live.get("/ready").json() == {"status": "ready", "store": "memory://"}


class BrokenStore(MemoryStore):
    def count(self, states: Any = None) -> dict[JobState, int]:
        raise StoreUnavailable("the store is down")


def test_ready_is_503_when_the_store_fails(make_server: Any) -> None:
    live = make_server(queue=Queue(BrokenStore()))
    response = live.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    detailed = live.get("/ready", headers=headers("admin"))
    assert detailed.status_code == 503
    assert "down" in detailed.json()["detail"]
    assert detailed.json()["store"] == "memory://"
    # /health does not touch the store
    assert live.get("/health").status_code == 200


def test_metrics_report_jobs_and_requests(server: LiveServer) -> None:
    server.queue.enqueue({"n": 1})
    created = server.post("/create-job", json={"data": {"n": 2}}, headers=headers("producer"))
    assert created.status_code == 201
    response = server.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'octoqueue_jobs{state="pending"} 2.0' in text
    assert 'octoqueue_jobs{state="completed"} 0.0' in text
    assert "octoqueue_store_up 1.0" in text
    assert 'octoqueue_jobs_created_total{source="create-job"} 1.0' in text
    assert 'route="/create-job",status="201"' in text
    assert "octoqueue_github_rate_limit_remaining" not in text  # the memory store has no budget


class BudgetedStore(MemoryStore):
    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(remaining=4321, limit=5000, reset=datetime.fromtimestamp(1_800_000_000, UTC))


def test_metrics_show_the_github_budget_when_the_store_has_one(make_server: Any) -> None:
    live = make_server(queue=Queue(BudgetedStore()))
    text = live.get("/metrics").text
    assert "octoqueue_github_rate_limit_remaining 4321.0" in text
    assert "octoqueue_github_rate_limit_limit 5000.0" in text
    assert "octoqueue_github_rate_limit_reset_timestamp_seconds 1.8e+09" in text


def test_two_apps_do_not_share_metrics(make_server: Any) -> None:
    first, second = make_server(), make_server()
    first.post("/create-job", json={"data": {}}, headers=headers("producer"))
    assert 'octoqueue_jobs_created_total{source="create-job"} 1.0' in first.get("/metrics").text
    assert 'octoqueue_jobs_created_total{source="create-job"}' not in second.get("/metrics").text


def test_metrics_need_a_key_when_reads_are_keyed(make_server: Any) -> None:
    live = make_server(open_reads=False)
    assert live.get("/metrics").status_code == 401
    assert live.get("/metrics", headers=headers("reader")).status_code == 200


def test_openapi_documents_every_endpoint(server: LiveServer) -> None:
    spec = server.get("/openapi.json").json()
    paths = spec["paths"]
    for path in [
        "/create-job",
        "/admin/schema",
        "/health",
        "/ready",
        "/live",
        "/metrics",
        "/webhooks/github",
        "/api/v1/queues",
        "/api/v1/queues/{name}",
        "/api/v1/queues/{name}/jobs",
        "/api/v1/queues/{name}/jobs/claim",
        "/api/v1/queues/{name}/jobs/{job_id}/complete",
        "/api/v1/queues/{name}/jobs/{job_id}/fail",
    ]:
        assert path in paths, path
    create = paths["/create-job"]["post"]
    assert set(create["responses"]) >= {"201", "400", "401", "403", "413", "422", "429"}
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("CreateJobResponse")
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert server.get("/docs").status_code == 200


def test_made_up_http_methods_cannot_grow_metrics(server: LiveServer) -> None:
    """B3: the request histogram was labelled with whatever method a client sent (unbounded series)."""
    import requests

    for n in range(30):
        requests.request(f"MADEUP{n}X", server("/health"), timeout=10)
    text = requests.get(server("/metrics"), timeout=10).text
    assert "MADEUP" not in text
    assert 'method="other",route="/health"' in text
