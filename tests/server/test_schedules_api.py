"""/schedules: admins define, producers trigger, readers read; the server's scheduler fires due ticks."""

from __future__ import annotations

import time
from typing import Any

from octoqueue.states import JobState

from .conftest import LiveServer, headers

DEFINITION: dict[str, Any] = {"cron": "*/5 * * * *", "data": {"report": "daily"}, "labels": ["reports"]}


def test_define_read_trigger_disable_and_delete(server: LiveServer) -> None:
    made = server.put("/schedules/nightly", json=DEFINITION, headers=headers("admin"))
    assert made.status_code == 200, made.text
    view = made.json()
    assert (view["id"], view["cron"], view["enabled"], view["last_run"]) == ("nightly", "*/5 * * * *", True, None)
    assert view["next_run"] is not None
    assert [s["id"] for s in server.get("/schedules").json()] == ["nightly"]

    triggered = server.post("/schedules/nightly/trigger", headers=headers("producer"))
    assert triggered.status_code == 201
    job = server.queue.get(triggered.json()["job_id"])
    assert (job.data, job.labels, job.state) == ({"report": "daily"}, ("reports",), JobState.PENDING)

    off = server.post("/schedules/nightly/disable", headers=headers("admin")).json()
    assert (off["enabled"], off["next_run"]) == (False, None)
    assert server.post("/schedules/nightly/enable", headers=headers("admin")).json()["enabled"] is True
    assert server.delete("/schedules/nightly", headers=headers("admin")).status_code == 204
    missing = server.get("/schedules/nightly")
    assert (missing.status_code, missing.json()["detail"]) == (404, "schedule 'nightly' does not exist")


def test_only_admins_define_and_producers_cannot_take_over_schedules(server: LiveServer) -> None:
    for role in (None, "producer", "worker", "reader"):
        assert server.put("/schedules/x", json=DEFINITION, headers=headers(role)).status_code in (401, 403)
    server.put("/schedules/x", json=DEFINITION, headers=headers("admin"))
    for role in (None, "worker", "reader"):
        assert server.post("/schedules/x/trigger", headers=headers(role)).status_code in (401, 403)
        assert server.delete("/schedules/x", headers=headers(role)).status_code in (401, 403)
        assert server.post("/schedules/x/disable", headers=headers(role)).status_code in (401, 403)


def test_bad_definitions_are_a_400_or_422_and_store_nothing(server: LiveServer) -> None:
    admin = headers("admin")
    cases = [
        ({**DEFINITION, "cron": "every tuesday"}, 400, "is not a cron expression"),
        ({**DEFINITION, "cron": "0 0 31 2 *"}, 400, "never fires"),  # B2: refused, not a 500 after storing it
        ({**DEFINITION, "timezone": "Mars/Olympus"}, 400, "unknown time zone"),
        ({**DEFINITION, "labels": ["completed"]}, 400, "reserved"),
        ({**DEFINITION, "catchup": 1.0}, 422, None),
        ({**DEFINITION, "surprise": 1}, 422, None),
    ]
    for body, status, text in cases:
        response = server.put("/schedules/x", json=body, headers=admin)
        assert response.status_code == status, (body, response.text)
        if text is not None:
            assert text in response.json()["detail"]
    assert server.put("/schedules/..", json=DEFINITION, headers=admin).status_code in (404, 422)
    assert server.get("/schedules").json() == []


def test_schedule_data_must_match_the_admin_schema(server: LiveServer) -> None:
    schema = {"type": "object", "required": ["report"]}
    server.post("/admin/schema", json={"schema": schema}, headers=headers("admin"))
    time.sleep(0.6)  # the settings cache of the test server
    bad = server.put("/schedules/x", json={**DEFINITION, "data": {"other": 1}}, headers=headers("admin"))
    assert bad.status_code == 400
    assert "Job data does not match required schema" in bad.json()["detail"]


def test_the_server_s_scheduler_fires_due_ticks(make_server: Any) -> None:
    server: LiveServer = make_server(scheduler=True)
    server.put("/schedules/every-second", json={"cron": "* * * * * *", "data": 1}, headers=headers("admin"))
    deadline = time.monotonic() + 10
    while server.queue.counts().get(JobState.PENDING, 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.queue.counts().get(JobState.PENDING, 0) >= 1
    assert server.get("/schedules/every-second").json()["last_job_id"] is not None


def test_anonymous_schedule_reads_spend_no_github_budget_within_the_cache(github_queue: Any, make_server: Any) -> None:
    """B1: /schedules, /schedules/{id} and /ui read the schedules through the /metrics cache, not once each (with
    no settings issue yet, every uncached read lists refs: a counted request)."""
    gh, queue = github_queue
    server = make_server(queue=queue, metrics_cache_seconds=3600.0)
    assert server.get("/ui").status_code == 200  # the dashboard's first count sample (then one per 20 s)
    gh.reset_counters()
    for _ in range(20):
        assert server.get("/schedules").json() == []
        assert server.get("/schedules/nightly").status_code == 404
        assert server.get("/ui").status_code == 200
    # Reads GitHub counts (not a 304); the store's start-up label creation may still be under way.
    counted = [(m, path) for m, path, status in gh.request_log if status != 304 and not path.endswith("/labels")]
    assert counted == [], counted
    assert server.put("/schedules/nightly", json=DEFINITION, headers=headers("admin")).status_code == 200
    assert [s["id"] for s in server.get("/schedules").json()] == ["nightly"]  # a write here is seen at once
