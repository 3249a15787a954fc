"""Property-based fuzzing of the running server from its own OpenAPI document (schemathesis + hypothesis).

Stateless: every operation on its own. Stateful: sequences chained by the links schemathesis infers from the
document (create a queue -> enqueue -> claim -> complete/fail/heartbeat the claimed job -> delete the queue...),
so later calls act on real queues and jobs instead of 404s.

Every operation gets generated requests — valid ones, and invalid ones (schemathesis's negative mode) — with an
admin key; the server must never answer 5xx and every answer must match what the document declares. Bounded:
a few dozen examples per operation and mode, well under a minute in all. Derandomized by default so CI is
reproducible; OCTOQUEUE_FUZZ_RANDOM=1 explores new examples.

(Driven programmatically: schemathesis's lazy pytest fixture loader does not work with pytest 9.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from octoqueue.api import create_app

from .conftest import KEYS, new_queue, serve, test_settings

EXAMPLES = 50


@pytest.fixture(scope="module")
def fuzzed_url() -> Iterator[str]:
    # Short long-polls (claims would otherwise wait up to their block_ms), keyed reads (so the documented
    # security holds everywhere), a body limit the generator can reach.
    config = test_settings(max_block_ms=20, open_reads=False, max_body_bytes=200_000, rate_limit_requests=0)
    app = create_app(config, new_queue())
    with serve(app) as url:
        yield url


# Schema-valid requests the server may still refuse for reasons a JSON Schema cannot state (data that fails the
# admin's job schema, a status label used as an extra label, a job id without its attempt, no such job...).
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", 400, 401, 403, 404, 409, 413, 429]},
            # Invalid requests may be refused for their size (413) before their shape is looked at.
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            },
        }
    }
)


def _whole_numbers_as_integers(value: Any) -> Any:
    """JSON Schema's ``integer`` includes ``2.0``; the server is stricter (``priority: 2.0`` is refused), so a
    generated whole-number float is sent as the integer it stands for (everywhere: where a float is expected, an
    integer is accepted too)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers_as_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_integers(item) for item in value]
    return value


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=CONFIG)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_no_server_errors_and_answers_match_the_document(fuzzed_url: str, mode: GenerationMode) -> None:
    operations = _operations(fuzzed_url)
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:
        if failures:
            break

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=os.environ.get("OCTOQUEUE_FUZZ_RANDOM") != "1",  # CI: reproducible; set 1 to explore
        )
        def check(case: Any) -> None:
            if mode is GenerationMode.POSITIVE and isinstance(case.body, dict | list):
                case.body = _whole_numbers_as_integers(case.body)
            case.call_and_validate(headers={"X-API-Key": KEYS["admin"]})

        try:
            check()
        except Unsatisfiable:
            continue  # nothing to make invalid: the operation takes no input
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


STATEFUL_EXAMPLES = 30


def test_stateful_sequences_never_get_a_server_error(fuzzed_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_url}/openapi.json", config=CONFIG)
    machine = schema.as_state_machine()
    linked = [name for name in dir(machine) if "__" in name and not name.startswith(("_", "RANDOM"))]
    assert len(linked) >= 20, "schemathesis found (almost) no links between the operations"

    class AdminWorkflow(machine):  # type: ignore[misc,valid-type]
        def setup(self) -> None:
            # Each sequence starts from no queues, so the same draws meet the same answers (hypothesis replays).
            admin = {"X-API-Key": KEYS["admin"]}
            for queue in requests.get(f"{fuzzed_url}/api/v1/queues", headers=admin, timeout=30).json()["queues"]:
                requests.delete(f"{fuzzed_url}/api/v1/queues/{queue['name']}", headers=admin, timeout=30)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            if case.body is not None:
                case.body = _whole_numbers_as_integers(case.body)
            return {"headers": {"X-API-Key": KEYS["admin"]}}

    AdminWorkflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=os.environ.get("OCTOQUEUE_FUZZ_RANDOM") != "1",
        )
    )
