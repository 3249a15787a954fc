"""ChatOps command syntax, and why no comment octoqueue writes can be one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from octoqueue.commands import defuse, parse_command
from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy

HOSTILE = "it broke\n/requeue\r\n  /CANCEL\r/retry\u2028/cancel"


def test_parse_command() -> None:
    assert parse_command("/retry") == "requeue"
    assert parse_command("/Cancel now") == "cancel"
    assert parse_command("x /cancel") is None
    assert parse_command(None) is None


@pytest.mark.parametrize("text", [HOSTILE, "/requeue", "\t/cancel", "a\n\n /retry"])
def test_defused_text_holds_no_command_on_any_line(text: str) -> None:
    safe = defuse(text)
    assert parse_command(safe) is None
    for line in safe.replace("\r", "\n").replace("\u2028", "\n").splitlines():
        assert not line.lstrip().startswith("/"), line


def test_defuse_keeps_other_text() -> None:
    assert defuse("a / b\nhttps://x/y") == "a / b\nhttps://x/y"
    assert defuse("x\n/requeue") == "x\n\\/requeue"  # a Markdown escape: GitHub shows "/requeue"


def _claimed(queue: Queue) -> Any:
    queue.enqueue({"n": 1}, max_attempts=2)
    job = queue.claim()
    assert job is not None
    return job


WRITERS: dict[str, Callable[[Queue], None]] = {
    "fail": lambda q: q.fail(_claimed(q), error=HOSTILE),
    "fail with a comment": lambda q: q.fail(_claimed(q), comment=HOSTILE),
    "retry": lambda q: q.fail(_claimed(q), error=HOSTILE, retry=True),
    "complete": lambda q: q.complete(_claimed(q), comment=HOSTILE, result={"text": HOSTILE}),
    "cancel": lambda q: q.cancel(_claimed(q), comment=HOSTILE),
    "requeue": lambda q: q.requeue(q.fail(_claimed(q), error="x"), comment=HOSTILE),
    "create_comment": lambda q: q.create_comment(_claimed(q).id, HOSTILE),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_no_comment_octoqueue_writes_is_a_command(writer: str) -> None:
    queue = Queue("memory://", retry=RetryPolicy(initial=0, jitter=0))
    WRITERS[writer](queue)
    comments = queue.comments(1)
    assert comments
    for comment in comments:
        assert parse_command(comment.body) is None, comment.body
