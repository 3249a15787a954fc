"""``/create-job``'s two paths (:class:`~octoqueue.api.jobs.CreateJobRoute`): the direct one answers only requests
nothing is wrong with, and answers them as FastAPI's declared handler does; every other request goes to FastAPI's
handler. Each request below is sent to a server with the direct path on and to a fresh one with it off, and the
answers must be the same — status, body and the headers a client reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from octoqueue.api import jobs
from octoqueue.api.jobs import CreateJobRoute
from octoqueue.api.ratelimit import rate_limit
from octoqueue.queue import Queue
from octoqueue.stores.sqlite import SQLiteStore

from .conftest import KEYS, LiveServer

PRODUCER = {"X-API-Key": KEYS["producer"], "Content-Type": "application/json"}
COMPARED_HEADERS = ("content-type", "www-authenticate", "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining")


@dataclass
class Call:
    name: str
    body: bytes | str
    headers: dict[str, str] = field(default_factory=lambda: dict(PRODUCER))
    query: str = ""
    direct: bool = False  # whether the direct path must answer it


def good(name: str, body: Any, **headers: str) -> Call:
    return Call(name, json.dumps(body), {**PRODUCER, **headers}, direct=True)


def bad(name: str, body: Any, headers: dict[str, str] | None = None, query: str = "") -> Call:
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return Call(name, raw, dict(PRODUCER) if headers is None else headers, query)


CALLS = [
    good("plain", {"data": {"a": 1}}),
    good(
        "every option",
        {
            "data": {"text": "hi"},
            "title": "greet",
            "additional_labels": ["demo"],
            "priority": "high",
            "delay": 10,
            "max_attempts": 3,
            "type": "greet",
            "timeout": 60,
        },
    ),
    good("run_at", {"data": {}, "run_at": "2031-01-01T00:00:00Z", "priority": 0}),
    good("charset", {"data": {"b": 2}}, **{"Content-Type": "application/json; charset=utf-8"}),
    good("json subtype", {"data": {"c": 3}}, **{"Content-Type": "application/vnd.octo+json"}),
    good("admin key", {"data": {}}, **{"X-API-Key": KEYS["admin"]}),
    good("idempotent", {"data": {"d": 4}}, **{"Idempotency-Key": "key-1"}),
    good("idempotent retry", {"data": {"d": 4}}, **{"Idempotency-Key": "key-1"}),
    # Accepted by the direct path, refused after: the same code runs on both paths from there.
    good("idempotency key reused for other data", {"data": {"d": 5}}, **{"Idempotency-Key": "key-1"}),
    good("schema mismatch", {"data": {"count": "seven"}}),
    good("reserved label", {"data": {}, "additional_labels": ["processing"]}),
    good("unknown parent", {"data": {}, "depends_on": [999]}),
    good("unknown field (ignored, as FastAPI's path does)", {"data": {}, "colour": "red"}),
    bad("no key", {"data": {}}, {"Content-Type": "application/json"}),
    bad("unknown key", {"data": {}}, {"X-API-Key": "not-a-key", "Content-Type": "application/json"}),
    bad("empty key", {"data": {}}, {"X-API-Key": "", "Content-Type": "application/json"}),
    bad("worker key", {"data": {}}, {"X-API-Key": KEYS["worker"], "Content-Type": "application/json"}),
    bad("reader key", {"data": {}}, {"X-API-Key": KEYS["reader"], "Content-Type": "application/json"}),
    bad("query string", {"data": {}}, query="?stauts=1"),
    bad("no content type", b'{"data": {}}', {"X-API-Key": KEYS["producer"]}),
    bad("text content type", {"data": {}}, {**PRODUCER, "Content-Type": "text/plain"}),
    bad("not JSON", b'{"data": ', None),
    bad("empty body", b"", None),
    bad("repeated key", b'{"data": {}, "priority": 0, "priority": 4}'),
    bad("repeated key inside data", b'{"data": {"a": 1, "a": 2}}'),
    bad("an array", [{"data": {}}]),
    bad("a string", "data"),
    bad("no data", {"title": "x"}),
    bad("data not an object", {"data": [1]}),
    bad("priority as text digit", {"data": {}, "priority": "2"}),
    bad("priority true", {"data": {}, "priority": True}),
    bad("priority 2.0", {"data": {}, "priority": 2.0}),
    bad("delay and run_at", {"data": {}, "delay": 5, "run_at": "2031-01-01T00:00:00Z"}),
    bad("naive run_at", {"data": {}, "run_at": "2031-01-01T00:00:00"}),
    bad("NaN in data", b'{"data": {"x": NaN}}'),
    bad("lone surrogate", b'{"data": {"x": "\\ud800"}}'),
    bad("NUL in title", {"data": {}, "title": "a\u0000b"}),
    bad("idempotency key with a space", {"data": {}}, {**PRODUCER, "Idempotency-Key": "a b"}),
    bad("idempotency key too long", {"data": {}}, {**PRODUCER, "Idempotency-Key": "k" * 256}),
    bad("idempotency key non-ASCII", {"data": {}}, {**PRODUCER, "Idempotency-Key": "clé"}),
    bad("too large", {"data": {"x": "y" * 3000}}),
]

SCHEMA = {"type": "object", "properties": {"count": {"type": "integer"}}}


def send(live: LiveServer, call: Call) -> requests.Response:
    body = call.body.encode() if isinstance(call.body, str) else call.body
    return requests.post(live("/create-job") + call.query, data=body, headers=call.headers, timeout=30)


def answer(response: requests.Response) -> tuple[int, Any, dict[str, str]]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return response.status_code, body, {h: response.headers[h] for h in COMPARED_HEADERS if h in response.headers}


@pytest.fixture
def directly_answered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests the direct path answered (it returns None for the others)."""
    answered: list[str] = []
    original = jobs._create_directly

    async def recording(request: Request) -> Response | None:
        try:
            response = await original(request)
        except Exception:
            answered.append(request.headers.get("x-call", "?"))
            raise
        if response is not None:
            answered.append(request.headers.get("x-call", "?"))
        return response

    monkeypatch.setattr(jobs, "_create_directly", recording)
    return answered


def run_calls(live: LiveServer, calls: list[Call]) -> list[tuple[int, Any, dict[str, str]]]:
    admin = {"X-API-Key": KEYS["admin"]}
    assert live.post("/admin/schema", json={"schema": SCHEMA}, headers=admin).status_code == 200
    out = []
    for call in calls:
        call.headers["X-Call"] = call.name
        out.append(answer(send(live, call)))
    return out


def both_paths(
    make_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch, calls: list[Call], **settings: Any
) -> tuple[list[Any], list[Any]]:
    direct = run_calls(make_server(max_body_bytes=2048, **settings), calls)
    monkeypatch.setattr(CreateJobRoute, "direct", False)
    declared = run_calls(make_server(max_body_bytes=2048, **settings), calls)
    return direct, declared


def test_the_direct_path_answers_as_fastapis_handler_does(
    make_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch, directly_answered: list[str]
) -> None:
    direct, declared = both_paths(make_server, monkeypatch, CALLS)
    for call, mine, theirs in zip(CALLS, direct, declared, strict=True):
        assert mine == theirs, call.name
    statuses = {call.name: status for call, (status, _, _) in zip(CALLS, direct, strict=True)}
    assert statuses["plain"] == statuses["idempotent retry"] == 201
    assert statuses["idempotency key reused for other data"] == 409
    assert statuses["schema mismatch"] == statuses["reserved label"] == statuses["unknown parent"] == 400
    assert statuses["no key"] == statuses["unknown key"] == statuses["empty key"] == 401
    assert statuses["worker key"] == statuses["reader key"] == 403
    assert statuses["too large"] == 413
    assert all(statuses[call.name] == 422 for call in CALLS if not call.direct and call.name not in statuses_not_422)
    # Only the good requests took the direct path (the second server's requests all went to FastAPI's).
    assert directly_answered == [call.name for call in CALLS if call.direct]


statuses_not_422 = {"no key", "unknown key", "empty key", "worker key", "reader key", "too large"}


def test_the_rate_limit_counts_each_request_once_on_either_path(
    make_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch, directly_answered: list[str]
) -> None:
    calls = [
        good("first", {"data": {"n": 1}}),
        bad("refused body, counted", {"data": {}, "priority": "2"}),
        bad("no key, counted against the IP", {"data": {}}, {"Content-Type": "application/json"}),
        good("third", {"data": {"n": 3}}),
        Call("over the limit", json.dumps({"data": {"n": 4}})),
        Call("still over", json.dumps({"data": {"n": 5}})),
    ]
    direct, declared = both_paths(make_server, monkeypatch, calls, rate_limit_requests=3, rate_limit_window=3600)
    assert direct == declared
    assert [status for status, _, _ in direct] == [201, 422, 401, 201, 429, 429]
    assert direct[3][2]["x-ratelimit-remaining"] == "0"
    assert direct[4][2]["retry-after"]
    assert directly_answered == ["first", "third"]


def test_the_openapi_document_still_describes_the_declared_endpoint(server: LiveServer) -> None:
    operation = server.get("/openapi.json").json()["paths"]["/create-job"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CreateJobRequest")
    assert {p["name"] for p in operation["parameters"]} == {"Idempotency-Key"}
    assert operation["security"] == [{"APIKeyHeader": []}]
    assert set(operation["responses"]) == {"201", "400", "401", "403", "409", "413", "422", "429", "503"}


@pytest.mark.parametrize(("synchronous", "batched"), [("NORMAL", True), ("FULL", False)])
def test_only_quick_writes_share_a_thread(
    make_server: Callable[..., LiveServer], tmp_path: Path, synchronous: str, batched: bool
) -> None:
    """At ``synchronous=FULL`` each commit waits for its fsync: the writes keep a thread each, so that concurrent
    ones share a commit (and one fsync) in the store's group commit instead of waiting in line."""
    queue = Queue(SQLiteStore(tmp_path / "jobs.db", synchronous=synchronous))
    try:
        live = make_server(queue=queue)
        response = live.post("/create-job", json={"data": {"n": 1}}, headers={"X-API-Key": KEYS["producer"]})
        assert response.status_code == 201
        assert queue.get(response.json()["job_id"]).data == {"n": 1}
        assert live.app.state.runtime.thread_batches.calls == (1 if batched else 0)
    finally:
        queue.close()


def test_overridden_dependencies_are_honoured(server: LiveServer, directly_answered: list[str]) -> None:
    """An application that overrides a dependency of ``/create-job`` gets FastAPI's path, which applies it."""

    async def closed(request: Request) -> None:
        raise HTTPException(503, detail="closed for maintenance")

    server.app.dependency_overrides[rate_limit] = closed
    response = server.post("/create-job", json={"data": {}}, headers={"X-API-Key": KEYS["producer"]})
    assert (response.status_code, response.json()) == (503, {"detail": "closed for maintenance"})
    assert directly_answered == []
    del server.app.dependency_overrides[rate_limit]
    assert server.post("/create-job", json={"data": {}}, headers={"X-API-Key": KEYS["producer"]}).status_code == 201
    assert len(directly_answered) == 1
