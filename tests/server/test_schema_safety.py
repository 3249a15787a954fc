"""Schemas that would stall the server: catastrophic-backtracking patterns run in linear time (RE2), and schemas
that never stop referring to themselves, or that RE2 cannot run, are refused when set."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from octoqueue.api.jobschema import InvalidSchema, JobSchema
from octoqueue.stores import open_store

from .conftest import LiveServer, headers

#: Python's backtracking ``re`` needs about 2^n steps for n a's and a mismatch: 26 take seconds there.
EVIL = "^(a+)+$"
ATTACK = "a" * 26 + "!"


def _schema(server: LiveServer, schema: dict[str, Any]) -> requests.Response:
    return server.post("/admin/schema", json={"schema": schema}, headers=headers("admin"))


@pytest.mark.parametrize(
    ("schema", "data"),
    [
        ({"properties": {"x": {"type": "string", "pattern": EVIL}}}, {"x": ATTACK}),
        ({"patternProperties": {EVIL: {"type": "integer"}}, "additionalProperties": False}, {ATTACK: 1}),
        ({"patternProperties": {EVIL: {"type": "integer"}}, "unevaluatedProperties": False}, {ATTACK: 1}),
        ({"$schema": "http://json-schema.org/draft-07/schema#", "patternProperties": {EVIL: {}}}, {ATTACK: 1}),
    ],
)
def test_a_backtracking_pattern_is_matched_in_milliseconds(
    server: LiveServer, schema: dict[str, Any], data: dict[str, Any]
) -> None:
    assert _schema(server, schema).status_code == 200
    started = time.monotonic()
    response = server.post("/create-job", json={"data": data}, headers=headers("producer"))
    assert time.monotonic() - started < 1.0  # Python's re: seconds
    assert response.status_code in (201, 400)


def test_the_server_stays_responsive_during_a_pattern_attack(server: LiveServer) -> None:
    assert _schema(server, {"properties": {"x": {"type": "string", "pattern": EVIL}}}).status_code == 200
    answers: list[int] = []

    def attack() -> None:
        response = requests.post(
            server("/create-job"), json={"data": {"x": ATTACK}}, headers=headers("producer"), timeout=120
        )
        answers.append(response.status_code)

    attackers = [threading.Thread(target=attack) for _ in range(4)]
    for thread in attackers:
        thread.start()
    slowest = 0.0
    for _ in range(5):
        started = time.monotonic()
        assert server.get("/health").status_code == 200
        slowest = max(slowest, time.monotonic() - started)
    for thread in attackers:
        thread.join(timeout=120)
    assert slowest < 1.0
    assert answers == [400] * 4


def test_format_regex_values_are_checked_with_re2(server: LiveServer) -> None:
    assert _schema(server, {"properties": {"r": {"type": "string", "format": "regex"}}}).status_code == 200
    ok = server.post("/create-job", json={"data": {"r": "^a+$"}}, headers=headers("producer"))
    assert ok.status_code == 201
    lookahead = server.post("/create-job", json={"data": {"r": "(?=a)a"}}, headers=headers("producer"))
    assert lookahead.status_code == 400
    assert "is not a 'regex'" in lookahead.json()["detail"]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "#"}, "refers to itself"),
        ({"allOf": [{"$ref": "#"}]}, "refers to itself"),
        ({"properties": {"a": {"$ref": "#/properties/a"}}}, "refers to itself"),
        (
            {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"},
            "#/$defs/a -> #/$defs/b",
        ),
        ({"$defs": {"a": {"not": {"$ref": "#/$defs/a"}}}, "properties": {"x": {"$ref": "#/$defs/a"}}}, "itself"),
        ({"$dynamicAnchor": "node", "if": {"$dynamicRef": "#node"}}, "refers to itself"),
        ({"$ref": "#/$defs/missing"}, "does not resolve"),
        ({"pattern": "(a)\\1"}, "regex"),  # a backreference: RE2 (linear time) cannot run it
        ({"pattern": "a(?=b)"}, "regex"),  # lookahead, likewise
        ({"patternProperties": {"(?<=x)y": {}}}, "regex"),
        ({"pattern": "((a{100}){100}){100}"}, "regex"),  # too large to compile into bounded memory
    ],
)
def test_a_schema_that_would_stall_validation_is_refused_when_set(
    server: LiveServer, schema: dict[str, Any], message: str
) -> None:
    response = _schema(server, schema)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert server.queue.store.get_setting("job_schema") is None


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}},
        {"$defs": {"n": {"type": "integer"}}, "allOf": [{"$ref": "#/$defs/n"}, {"$ref": "#/$defs/n"}]},
        {"$defs": {"tree": {"properties": {"kids": {"additionalProperties": {"$ref": "#/$defs/tree"}}}}}},
        {"patternProperties": {"^x-[a-z]+$": {"type": "string"}}, "properties": {"p": {"pattern": "^\\d{3}$"}}},
    ],
)
def test_recursive_schemas_that_descend_into_the_data_are_accepted(server: LiveServer, schema: dict[str, Any]) -> None:
    assert _schema(server, schema).status_code == 200


def _laughs(levels: int) -> dict[str, Any]:
    """A "billion laughs" of references: each level refers twice to the next, so 2**levels applications."""
    defs: dict[str, Any] = {
        f"l{i}": {"allOf": [{"$ref": f"#/$defs/l{i + 1}"}, {"$ref": f"#/$defs/l{i + 1}"}]} for i in range(levels)
    }
    defs[f"l{levels}"] = {"type": "object"}
    return {"$defs": defs, "$ref": "#/$defs/l0"}


def test_references_that_fan_out_exponentially_are_refused(server: LiveServer) -> None:
    started = time.monotonic()
    response = _schema(server, _laughs(40))
    assert time.monotonic() - started < 5.0
    assert response.status_code == 400
    assert "more than 100,000 times" in response.json()["detail"]
    assert _schema(server, _laughs(10)).status_code == 200  # 2,047 applications: fine


def test_a_tree_schema_validates_nested_data() -> None:
    schema = JobSchema(open_store("memory://"), ttl=0)
    schema.set({"type": "object", "required": ["v"], "properties": {"kids": {"items": {"$ref": "#"}}}})
    schema.validate({"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}]})
    with pytest.raises(ValueError, match="'v' is a required property"):
        schema.validate({"v": 1, "kids": [{"kids": []}]})


def test_a_stored_schema_is_checked_the_same_way() -> None:
    with pytest.raises(InvalidSchema, match="refers to itself"):
        JobSchema(open_store("memory://")).set({"$ref": "#"})
