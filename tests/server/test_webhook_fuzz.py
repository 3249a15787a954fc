"""Signed webhook deliveries of any shape: the receiver answers 2xx or 4xx, never 5xx, and never crashes.

The signature only proves the sender knows the secret; everything inside (numbers, labels, comment bodies,
nesting) is still untrusted. Generated payloads mix the real shapes (issue numbers, labels, commands, author
associations) with wrong types everywhere.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octoqueue.api import create_app

from .conftest import WEBHOOK_SECRET, new_queue, serve, sign, test_settings

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["/retry", "/requeue", "/cancel", "OWNER", "MEMBER", "pending", "failed", "processing"]),
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
labels = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"name": st.one_of(st.sampled_from(["pending", "failed", "processing", "completed", "requeue"]), anything)}
        ),
        anything,
    ),
    max_size=4,
)
issue = st.fixed_dictionaries(
    {"number": st.one_of(st.integers(-5, 5), anything), "labels": labels},
    optional={"state": anything, "body": anything, "user": anything, "author_association": anything},
)
comment = st.fixed_dictionaries(
    {"body": st.one_of(st.sampled_from(["/retry", "/requeue", "/cancel", "  /RETRY now"]), anything)},
    optional={
        "author_association": st.one_of(st.sampled_from(["OWNER", "MEMBER", "NONE"]), anything),
        "user": anything,
    },
)
payloads = st.one_of(
    anything,
    st.fixed_dictionaries(
        {"action": st.one_of(st.sampled_from(["created", "labeled", "opened", "edited"]), anything)},
        optional={
            "issue": st.one_of(issue, anything),
            "comment": st.one_of(comment, anything),
            "label": anything,
            "repository": anything,
            "sender": anything,
        },
    ),
)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    queue = new_queue()
    for n in range(5):  # jobs 1..5 exist, so numbers can hit them
        queue.enqueue({"n": n})
    with serve(create_app(test_settings(), queue)) as base:
        yield base


def _deliver(url: str, event: str, body: bytes) -> requests.Response:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
    }
    return requests.post(f"{url}/webhooks/github", data=body, headers=headers, timeout=30)


@given(event=st.sampled_from(["issues", "issue_comment", "ping", "push", ""]), payload=payloads)
@settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_signed_payloads_of_any_shape_never_get_a_5xx(url: str, event: str, payload: Any) -> None:
    response = _deliver(url, event, json.dumps(payload).encode())
    assert response.status_code < 500, response.text


def test_a_signed_deeply_nested_body_is_a_400(url: str) -> None:
    assert _deliver(url, "issues", b"[" * 100_000).status_code == 400
