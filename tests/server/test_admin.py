"""/admin/schema: set, read, reject, persist across restarts and processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import LiveServer, headers, new_queue

SCHEMA = {
    "type": "object",
    "properties": {"your_key": {"type": "string"}, "another_key": {"type": "number"}},
    "required": ["your_key"],
}


@pytest.mark.parametrize("field", ["schema", "job_schema"])
def test_set_and_get_the_schema(server: LiveServer, field: str) -> None:
    response = server.post("/admin/schema", json={field: SCHEMA}, headers=headers("admin"))
    assert response.status_code == 200
    assert response.json() == {"status": "success", "message": "Schema updated successfully"}
    got = server.get("/admin/schema", headers=headers("admin"))
    assert got.status_code == 200
    assert got.json() == {"schema": SCHEMA, "job_schema": SCHEMA}
    assert server.queue.store.get_setting("job_schema") == SCHEMA


def test_no_schema_reads_as_null(server: LiveServer) -> None:
    assert server.get("/admin/schema", headers=headers("admin")).json() == {"schema": None, "job_schema": None}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "not-a-type"}, "Invalid JSON Schema"),
        ({"type": "object", "required": "your_key"}, "Invalid JSON Schema"),
        ({"properties": {"a": {"minimum": "zero"}}}, "Invalid JSON Schema"),
        ({"$ref": "https://example.com/schema.json"}, "only local $ref"),
    ],
)
def test_an_invalid_json_schema_is_400(server: LiveServer, schema: dict[str, Any], message: str) -> None:
    response = server.post("/admin/schema", json={"schema": schema}, headers=headers("admin"))
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert server.queue.store.get_setting("job_schema") is None


@pytest.mark.parametrize("body", [{}, {"schema": SCHEMA, "job_schema": SCHEMA}, {"schema": "text"}, {"schema": []}])
def test_the_schema_must_be_given_once_as_an_object(server: LiveServer, body: dict[str, Any]) -> None:
    assert server.post("/admin/schema", json=body, headers=headers("admin")).status_code == 422


def test_delete_removes_the_schema(server: LiveServer) -> None:
    server.post("/admin/schema", json={"schema": SCHEMA}, headers=headers("admin"))
    assert server.post("/create-job", json={"data": {}}, headers=headers("producer")).status_code == 400
    response = server.delete("/admin/schema", headers=headers("admin"))
    assert response.json() == {"status": "success", "message": "Schema removed"}
    assert server.post("/create-job", json={"data": {}}, headers=headers("producer")).status_code == 201


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize(("role", "status"), [(None, 401), ("producer", 403), ("worker", 403), ("reader", 403)])
def test_admin_calls_need_the_admin_role(server: LiveServer, method: str, role: str | None, status: int) -> None:
    kwargs: dict[str, Any] = {"headers": headers(role)}
    if method == "post":
        kwargs["json"] = {"schema": SCHEMA}
    response = getattr(server, method)("/admin/schema", **kwargs)
    assert response.status_code == status
    assert server.queue.store.get_setting("job_schema") is None


def test_the_schema_survives_a_restart(make_server: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    first = make_server(queue=new_queue(url))
    first.post("/admin/schema", json={"schema": SCHEMA}, headers=headers("admin"))
    first.queue.close()
    second = make_server(queue=new_queue(url))
    assert second.get("/admin/schema", headers=headers("admin")).json()["schema"] == SCHEMA
    assert second.post("/create-job", json={"data": {}}, headers=headers("producer")).status_code == 400


def test_another_processes_update_shows_within_a_second_or_two(make_server: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    a = make_server(queue=new_queue(url))
    b = make_server(queue=new_queue(url))
    assert b.post("/create-job", json={"data": {}}, headers=headers("producer")).status_code == 201  # cached: none
    a.post("/admin/schema", json={"schema": SCHEMA}, headers=headers("admin"))
    deadline = time.monotonic() + 2
    while b.post("/create-job", json={"data": {}}, headers=headers("producer")).status_code == 201:
        assert time.monotonic() < deadline, "the other server never saw the new schema"
        time.sleep(0.1)
