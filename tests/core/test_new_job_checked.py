"""NewJob.checked: the record built without validation is the one validation builds, and values of other types
still go through validation (converted or refused as before)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from octoqueue.job import NewJob
from octoqueue.states import Priority

PLAIN: dict[str, Any] = {
    "title": "t",
    "labels": (),
    "type": None,
    "priority": Priority.NORMAL,
    "run_at": None,
    "max_attempts": 1,
    "idempotency_key": None,
    "timeout": None,
}


class Text(str):
    pass


def same(a: NewJob, b: NewJob) -> bool:
    return (
        a == b
        and a.__dict__ == b.__dict__
        and [type(v) for v in a.__dict__.values()] == [type(v) for v in b.__dict__.values()]
        and a.__pydantic_fields_set__ == b.__pydantic_fields_set__
        and a.__pydantic_private__ == b.__pydantic_private__
    )


@pytest.mark.parametrize(
    "fields",
    [
        PLAIN,
        {
            **PLAIN,
            "labels": ("a", "B"),
            "type": "mail",
            "priority": Priority.CRITICAL,
            "run_at": datetime.now(timezone(timedelta(hours=2))),
            "max_attempts": 3,
            "idempotency_key": "k",
            "timeout": 2.5,
        },
        {**PLAIN, "priority": 4},
        # not of the exact types: validated, and converted as validation converts them
        {**PLAIN, "timeout": 5},
        {**PLAIN, "title": Text("sub")},
        {**PLAIN, "max_attempts": True},
        {**PLAIN, "run_at": datetime(2030, 1, 1, tzinfo=UTC), "timeout": "1.5"},
    ],
)
def test_checked_is_what_validation_makes(fields: dict[str, Any]) -> None:
    data = {"n": 1}
    made = NewJob.checked(data, '{"n":1}', **fields)
    assert same(made, NewJob(data=data, **fields).with_data_json('{"n":1}'))
    assert made.data_json() == '{"n":1}'


def test_checked_refuses_what_validation_refuses() -> None:
    with pytest.raises(ValidationError):
        NewJob.checked({}, "{}", **{**PLAIN, "title": 5})
    with pytest.raises(ValidationError):
        NewJob.checked({}, "{}", **{**PLAIN, "labels": ("a", 1)})
