"""The original Octoqueue's clients run unchanged: every public method of its ``GithubQueue`` (ping13/octoqueue,
``src/octoqueue/queue.py``, v0.1.0) has the same parameters here — order, names, defaults — and answers in the same
shape when called the original way (issue 8, item 10)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from octoqueue.github import GithubQueue
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

REQUIRED = inspect.Parameter.empty

#: The original's public methods as its source declares them: (name, default) in order, REQUIRED for none.
ORIGINAL: dict[str, list[tuple[str, Any]]] = {
    "__init__": [("repo", REQUIRED), ("token", None)],
    "enqueue": [("data", REQUIRED), ("title", None), ("additional_labels", None)],
    "count_open": [("wait_sec", 0)],
    "dequeue": [("wait_sec", 0)],
    "fail": [("job_id", REQUIRED), ("comment", None)],
    "create_comment": [("job_id", REQUIRED), ("comment", None)],
    "complete": [("job_id", REQUIRED), ("comment", None)],
    "requeue": [("job_id", REQUIRED), ("comment", None)],
    "get_job_status": [("job_id", REQUIRED)],
    "get_jobs": [("labels", ["processing"]), ("state", "open")],
}

POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _same_default(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, list):  # the original's mutable list default; an equal tuple serves callers alike
        return isinstance(ours, (list, tuple)) and list(ours) == theirs
    return bool(ours == theirs) and type(ours) is type(theirs)


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_each_method_takes_the_originals_parameters(name: str) -> None:
    params = list(inspect.signature(getattr(GithubQueue, name)).parameters.values())[1:]  # without self
    expected = ORIGINAL[name]
    ours = [(p.name, p.default) for p in params[: len(expected)]]
    assert [n for n, _ in ours] == [n for n, _ in expected], f"{name}: parameters in another order or named apart"
    for param, (_, default) in zip(params, expected, strict=False):
        assert param.kind in POSITIONAL, f"{name}({param.name}) must be passable by position"
        if default is not REQUIRED:  # (a parameter the original requires may have a default here: repo from env)
            assert _same_default(param.default, default), f"{name}({param.name}={param.default!r}), not {default!r}"
    for extra in params[len(expected) :]:  # octoqueue's additions may not make an old call fail
        assert extra.default is not REQUIRED or extra.kind is inspect.Parameter.VAR_KEYWORD, f"{name}({extra.name})"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(repo="someone/jobs", token="t0k3n", enforce_secondary=False) as emulator:
        yield emulator


def test_the_original_calls_run_and_answer_in_its_shapes(fake: FakeGitHub) -> None:
    options: dict[str, Any] = {"base_url": IN_PROCESS_URL, "transport": fake.transport(), "writes_per_minute": None}
    queue = GithubQueue("someone/jobs", "t0k3n", **options)  # positionally, as the original's constructor
    try:
        first = queue.enqueue({"n": 1}, "first", ["gpu"])
        second = queue.enqueue(data={"n": 2}, title=None, additional_labels=None)
        assert isinstance(first, int) and isinstance(second, int)
        assert queue.count_open() == 2 and queue.count_open(0) == 2 and queue.count_open(wait_sec=0.01) == 2
        assert queue.get_job_status(first) == queue.get_job_status(job_id=second) == "pending"
        assert queue.get_job_status(999) is None

        taken = queue.dequeue(0)
        assert taken == (first, {"n": 1})
        processing = queue.get_jobs(["processing"], "open")
        assert [(job_id, data) for job_id, _, data in processing] == [(first, {"n": 1})]
        assert isinstance(processing[0], tuple) and isinstance(processing[0][1], datetime)
        assert queue.create_comment(first, None) is None  # the original posts nothing then
        queue.create_comment(job_id=first, comment="half way")
        queue.complete(job_id=first, comment="done")
        assert queue.get_job_status(first) == "completed"
        said, done = (c.body for c in queue.comments(first))
        assert said == "half way" and done.startswith("done\n\n<sub>attempt 1 · worker ")  # the attempt's footer

        assert queue.dequeue(wait_sec=0) == (second, {"n": 2})
        queue.fail(second, "broke")
        assert queue.get_job_status(second) == "failed"
        queue.requeue(job_id=second, comment="again")
        assert queue.get_job_status(second) == "pending"
        assert queue.dequeue() == (second, {"n": 2})
        queue.fail(job_id=second, comment="broke again")
        queue.requeue(second)
        assert [job_id for job_id, _, _ in queue.get_jobs(labels=["pending"], state="open")] == [second]
        assert queue.get_jobs() == []  # nothing processing
        closed = queue.get_jobs(["completed"], "closed")
        assert [(job_id, data) for job_id, _, data in closed] == [(first, {"n": 1})]
    finally:
        queue.close()
