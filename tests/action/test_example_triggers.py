"""The example worker workflow starts exactly one run per job, for the events GitHub really sends.

The emulator records the webhooks a repository would send; each is run through the workflow's ``on:`` filter and
its job-level ``if:`` (evaluated by the same stand-in for the runner that runs action.yml), and the runs counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from octoqueue.queue import Queue
from octoqueue.stores import open_store
from octoqueue.testing.fake_github import FakeGitHub

from .composite import Contexts, condition
from .conftest import REPO, ROOT, TOKEN

WORKFLOW = yaml.safe_load((ROOT / "examples/workflows/worker.yml").read_text())


def starts_a_run(event: str, payload: dict[str, Any]) -> bool:
    """Whether ``event`` with ``payload`` starts the example's ``work`` job."""
    triggers = WORKFLOW[True]  # YAML 1.1 reads the key "on" as True
    if event not in triggers:
        return False
    types = (triggers[event] or {}).get("types")
    if types is not None and payload.get("action") not in types:
        return False
    contexts = Contexts(inputs={}, github={"event_name": event}, runner={}, event=payload)
    return condition(WORKFLOW["jobs"]["work"].get("if"), contexts)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    # Deliveries to a port where nothing listens fail, but each is recorded with its payload.
    with FakeGitHub(repo=REPO, token=TOKEN, webhook_url="http://127.0.0.1:9/hook", webhook_secret="s") as fake:
        yield fake


def runs_started(github: FakeGitHub, since: int) -> list[tuple[str, str | None]]:
    github.flush_webhooks()
    return [(d.event, d.action) for d in github.deliveries[since:] if starts_a_run(d.event, d.payload)]


def test_a_job_created_with_its_labels_starts_one_run(github: FakeGitHub) -> None:
    queue = Queue(open_store(f"github://{REPO}", token=TOKEN, transport=github.transport()))
    with queue:
        queue.enqueue({"text": "one run"}, additional_labels=["images"])
    sent = [(d.event, d.action) for d in github.deliveries]
    assert ("issues", "opened") in sent and sent.count(("issues", "labeled")) == 2  # opened + one per label
    assert runs_started(github, 0) == [("issues", "labeled")]


def test_a_hand_made_job_and_a_requeue_each_start_one_run(github: FakeGitHub) -> None:
    number = github.create_issue("by hand", '```json\n{"text": "x"}\n```', labels=["pending"])
    assert runs_started(github, 0) == [("issues", "labeled")]
    github.edit_issue(number, labels=["failed"], state="closed")
    mark = len(github.deliveries)
    github.edit_issue(number, labels=["pending"], state="open")  # what a requeue does
    assert runs_started(github, mark) == [("issues", "labeled")]


def test_other_issue_events_start_no_run(github: FakeGitHub) -> None:
    number = github.create_issue("a bug", "not a job", labels=["bug"])
    github.comment(number, "any news?")
    github.edit_issue(number, state="closed")
    assert runs_started(github, 0) == []
