"""An encrypted queue on the GitHub emulator: no job data, result or error text in any issue, comment, title, ref,
event or webhook delivery, and the jobs run normally."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from octoqueue import Queue
from octoqueue.sealing import new_key
from octoqueue.states import JobState
from octoqueue.testing.fake_github import FakeGitHub
from octoqueue.worker import Worker

from .conftest import MakeStore

DATA_TEXT, RESULT_TEXT, ERROR_TEXT = "plaintext-data-7f3a", "plaintext-result-91bc", "plaintext-error-c0de"


def _strings(value: Any, seen: dict[int, Any] | None = None) -> Iterator[str]:
    """Every string reachable from ``value``: containers, dataclasses and plain objects walked."""
    seen = {} if seen is None else seen
    if id(value) in seen:
        return
    seen[id(value)] = value  # kept alive, so that no later object reuses its id
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, seen)
            yield from _strings(item, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings(item, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name), seen)
    elif hasattr(value, "__dict__") and not callable(value):
        yield from _strings(vars(value), seen)


def test_nothing_readable_is_stored_on_github_and_the_jobs_run(fake: FakeGitHub, make_store: MakeStore) -> None:
    key = new_key()
    queue = Queue(make_store(), encryption_keys=key)
    good = queue.enqueue({"text": DATA_TEXT})
    bad = queue.enqueue({"text": DATA_TEXT, "fail": True})

    def handler(data: dict[str, Any]) -> dict[str, str]:
        if data.get("fail"):
            raise ValueError(ERROR_TEXT)
        return {"echo": RESULT_TEXT}

    stats = Worker(queue, handler, on_failure="fail").run(once=True)
    assert (stats.completed, stats.failed) == (1, 1)
    other = Queue(make_store(), encryption_keys=key)  # another process with the key reads everything back
    assert other.get(good).result == {"echo": RESULT_TEXT}
    assert other.get(bad).state is JobState.FAILED and ERROR_TEXT in (other.get(bad).last_error or "")
    assert any(RESULT_TEXT in c.body for c in other.comments(good))

    stored = list(_strings(fake.state)) + list(_strings(fake.deliveries))
    assert sum("octoqueue/fernet" in s for s in stored) >= 2  # the walk reaches the jobs' issue bodies
    assert sum("Encrypted by octoqueue" in s for s in stored) >= 2  # and their comments
    for text in (DATA_TEXT, RESULT_TEXT, ERROR_TEXT):
        assert not [s for s in stored if text in s], f"{text} is readable on GitHub"
    body = fake.get_issue(good)["body"]
    assert "octoqueue/fernet" in body  # the issue says the job is encrypted
