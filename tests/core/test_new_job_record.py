"""``NewJob.of``: the queue's record of a job to make, built unvalidated only when validating would change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from octoqueue.job import NewJob


def fields(**changes: Any) -> dict[str, Any]:
    base = {
        "data": {"n": 1},
        "title": "t",
        "labels": ("a", "b"),
        "type": "kind",
        "priority": 1,
        "run_at": datetime(2030, 1, 1, tzinfo=UTC),
        "max_attempts": 3,
        "idempotency_key": "k",
        "timeout": 2.5,
    }
    return base | changes


@pytest.mark.parametrize(
    "given",
    [fields(), fields(labels=(), type=None, run_at=None, idempotency_key=None, timeout=None)],
)
def test_a_record_of_exact_types_is_the_validated_one(given: dict[str, Any]) -> None:
    made = NewJob.of(dict(given), '{"n":1}')
    assert made.model_dump() == NewJob(**given).model_dump()
    assert made.model_fields_set == NewJob(**given).model_fields_set
    assert made.data_json() == '{"n":1}'
    assert made.model_copy(update={"data": [2]}).data_json() == "[2]"  # a copy's data is encoded afresh


@pytest.mark.parametrize(
    ("change", "becomes"),
    [
        ({"timeout": 5}, {"timeout": 5.0}),
        ({"labels": ["x"]}, {"labels": ("x",)}),
        ({"priority": True}, {"priority": 1}),
    ],
)
def test_other_values_are_validated_and_converted(change: dict[str, Any], becomes: dict[str, Any]) -> None:
    made = NewJob.of(fields(**change), "{}")
    for name, value in becomes.items():
        assert getattr(made, name) == value and type(getattr(made, name)) is type(value)


@pytest.mark.parametrize("change", [{"title": 3}, {"type": 1}, {"idempotency_key": 5}, {"run_at": "soon"}])
def test_values_of_a_wrong_type_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NewJob.of(fields(**change), "{}")
