"""Every route of the app x {no key, a wrong key, each role}: the status each cell must get, from one table.

The routes come from the app itself (``app.routes``, included routers walked), so a route added without a row in
:data:`ACCESS` fails :func:`test_every_route_is_in_the_table` — none can escape the matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fastapi.routing import APIRoute
from starlette.routing import Route

from octoqueue.api import create_app

from .conftest import KEYS, new_queue, serve, test_settings

PUBLIC, READ, PRODUCER, WORKER, ADMIN, SIGNED = "public", "read", "producer", "worker", "admin", "signed"
#: The dashboard authenticates with a session cookie, never the API key header: its pages answer (a page, or a
#: redirect to its login), its forms refuse a request without the CSRF cookie and token (403), whatever the key.
#: Its event stream is tested in test_dashboard.py (it never ends, so the matrix does not call it).
UI_PAGE, UI_FORM, UI_STREAM = "ui-page", "ui-form", "ui-stream"

#: (method, path) -> who may call it. SIGNED: a GitHub signature, which no API key replaces.
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/docs/assets/{name}"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/live"): PUBLIC,
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("GET", "/metrics"): READ,
    ("GET", "/jobs/{job_id}"): READ,
    ("GET", "/jobs/{job_id}/history"): READ,
    ("GET", "/api/v1/queues"): READ,
    ("GET", "/api/v1/queues/{name}"): READ,
    ("GET", "/api/v1/queues/{name}/jobs"): READ,
    ("POST", "/create-job"): PRODUCER,
    ("POST", "/api/v1/queues/{name}/jobs"): PRODUCER,
    ("POST", "/api/v1/queues/{name}/jobs/claim"): WORKER,
    ("PUT", "/api/v1/queues/{name}/jobs/{job_id}/complete"): WORKER,
    ("PUT", "/api/v1/queues/{name}/jobs/{job_id}/fail"): WORKER,
    ("PUT", "/api/v1/queues/{name}/jobs/{job_id}/heartbeat"): WORKER,
    ("POST", "/api/v1/queues/{name}/jobs/complete"): WORKER,
    ("POST", "/api/v1/queues/{name}/jobs/fail"): WORKER,
    ("POST", "/api/v1/queues/{name}/jobs/heartbeat"): WORKER,
    ("POST", "/admin/schema"): ADMIN,
    ("GET", "/admin/schema"): ADMIN,
    ("DELETE", "/admin/schema"): ADMIN,
    ("GET", "/admin/pauses"): ADMIN,
    ("POST", "/admin/pause"): ADMIN,
    ("POST", "/admin/resume"): ADMIN,
    ("POST", "/api/v1/queues"): ADMIN,
    ("DELETE", "/api/v1/queues/{name}"): ADMIN,
    ("POST", "/webhooks/github"): SIGNED,
    ("GET", "/schedules"): READ,
    ("GET", "/schedules/{schedule_id}"): READ,
    ("PUT", "/schedules/{schedule_id}"): ADMIN,
    ("DELETE", "/schedules/{schedule_id}"): ADMIN,
    ("POST", "/schedules/{schedule_id}/enable"): ADMIN,
    ("POST", "/schedules/{schedule_id}/disable"): ADMIN,
    ("POST", "/schedules/{schedule_id}/trigger"): PRODUCER,
    ("GET", "/ui"): UI_PAGE,
    ("GET", "/ui/jobs"): UI_PAGE,
    ("GET", "/ui/jobs/{job_id}"): UI_PAGE,
    ("GET", "/ui/login"): UI_PAGE,
    ("GET", "/ui/static/{name}"): UI_PAGE,
    ("GET", "/ui/events"): UI_STREAM,
    ("POST", "/ui/jobs/{job_id}/{action}"): UI_FORM,
    ("POST", "/ui/clear"): UI_FORM,
    ("POST", "/ui/login"): UI_FORM,
    ("POST", "/ui/logout"): UI_FORM,
}

CALLERS = ["none", "wrong", "producer", "worker", "reader", "admin"]
ALLOWED = "allowed"  # anything but 401/403 (and never 5xx): what the request itself deserves


def expected(access: str, caller: str, open_reads: bool) -> int | str:
    if access in (PUBLIC, UI_PAGE):
        return ALLOWED
    if access == UI_FORM:
        return 403
    if access == SIGNED:
        return 401  # unsigned, whatever the key
    if caller == "wrong" or (caller == "none" and not (access == READ and open_reads)):
        return 401
    if access == READ or caller == "admin" or caller == access:
        return ALLOWED
    return 403


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, (APIRoute, Route)):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, prefix + route.path
        elif hasattr(route, "original_router"):  # FastAPI's included router
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            raise AssertionError(f"a route of a kind this matrix cannot see into: {route!r}")


def app_routes() -> set[tuple[str, str]]:
    return set(_walk(create_app(test_settings(), new_queue()).routes))


def test_every_route_is_in_the_table() -> None:
    routes = app_routes()
    assert len(routes) >= 25
    assert routes - ACCESS.keys() == set(), "routes without a row in ACCESS"
    assert ACCESS.keys() - routes == set(), "rows in ACCESS for routes that are gone"


@pytest.fixture(scope="module", params=[False, True], ids=["closed-reads", "open-reads"])
def live(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    app = create_app(test_settings(open_reads=request.param, max_block_ms=10), new_queue())
    with serve(app) as url:
        yield url, request.param


@pytest.mark.parametrize("caller", CALLERS)
def test_each_cell_gets_its_status(live: tuple[str, bool], caller: str) -> None:
    base, open_reads = live
    headers = {} if caller == "none" else {"X-API-Key": "not-a-key" if caller == "wrong" else KEYS[caller]}
    wrong: list[str] = []
    for (method, path), access in sorted(ACCESS.items()):
        if access == UI_STREAM:
            continue
        url = base + path.replace("{job_id}", "1").replace("{name}", "matrix").replace("{action}", "cancel")
        response = requests.request(method, url, headers=headers, json={}, timeout=10)
        want = expected(access, caller, open_reads)
        got = response.status_code
        ok = got not in (401, 403) and got < 500 if want == ALLOWED else got == want
        if not ok:
            wrong.append(f"{method} {path} as {caller}: {got}, expected {want} ({response.text[:120]})")
    assert not wrong, "\n".join(wrong)
