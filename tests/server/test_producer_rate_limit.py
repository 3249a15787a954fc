"""Every route a producer makes jobs through counts against the one per-client rate limit (B7: a schedule's
trigger did not, so a producer over its /create-job limit could go on making jobs through it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from octoqueue.api import create_app
from octoqueue.api.ratelimit import rate_limit

from .conftest import LiveServer, headers, new_queue, test_settings


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # FastAPI's included router
            yield from _api_routes(route.original_router.routes, prefix + route.include_context.prefix)


def test_every_producer_route_is_rate_limited() -> None:
    routes = list(_api_routes(create_app(test_settings(), new_queue()).routes))
    producer = {
        path for path, r in routes if any(getattr(c, "__name__", "") == "require_producer" for c in _calls(r.dependant))
    }
    limited = {path for path, route in routes if rate_limit in set(_calls(route.dependant))}
    assert "/schedules/{schedule_id}/trigger" in producer
    assert producer <= limited, producer - limited


def test_a_producer_over_its_limit_cannot_trigger_schedules_either(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(rate_limit_requests=2, rate_limit_window=3600)
    server.put("/schedules/s", json={"cron": "@daily", "data": {}}, headers=headers("admin"))
    producer = headers("producer")
    assert server.post("/create-job", json={"data": {}}, headers=producer).status_code == 201
    assert server.post("/schedules/s/trigger", headers=producer).status_code == 201
    refused = server.post("/schedules/s/trigger", headers=producer)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "3600")
    assert server.post("/create-job", json={"data": {}}, headers=producer).status_code == 429
