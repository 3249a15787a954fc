"""A queue copied GitHub -> SQLite -> PostgreSQL -> Redis -> S3 -> GitHub comes back equal, field by field; a second
run changes nothing; the CLI says so."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from octoqueue.cli import main
from octoqueue.mirror import Mirror, Selection
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.base import Store
from octoqueue.stores.s3 import S3Store
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.testing.clock import ManualClock
from tests.mirror.conftest import MakeGitHub, assert_same_queue
from tests.postgres.server import fresh_schema
from tests.redis_store.server import fresh_store


def fill(queue: Queue, people: Any) -> None:
    """Jobs in every state, with labels, types, priorities, results, errors, people's comments and a purged job
    (a gap in the numbers)."""
    store = queue.store
    for n in range(12):
        queue.enqueue_job(
            {"n": n, "text": "a ```fence``` and ünïcode", "nested": {"list": [1, 2.5, None, True]}},
            title=f"job {n}",
            additional_labels=("mail", "Urgent") if n % 3 == 0 else (),
            priority=n % 5,
            type="email" if n % 2 else None,
            max_attempts=2,
            timeout=30.0 if n == 4 else None,
            idempotency_key=f"key-{n}" if n == 5 else None,
            run_at=store.now() + timedelta(hours=1) if n == 11 else None,
        )
    done = queue.claim(ids=[1])
    assert done is not None
    queue.complete(done, result={"sent": True, "to": ["a@example.org"]})
    failing = queue.claim(ids=[2])
    assert failing is not None
    queue.fail(failing, error="SMTP said no\nTraceback: ...")
    queue.claim(ids=[3])  # stays processing, under a lease
    queue.cancel(4)
    requeued = queue.claim(ids=[6])
    assert requeued is not None
    queue.fail(requeued, error="first try broke")
    queue.requeue(6)
    people.comment(7, "a person's note\n\n/looks fine", author="mona")
    queue.create_comment(8, "a note from the queue")
    purged = queue.claim(ids=[9])
    assert purged is not None
    queue.complete(purged)


def test_round_trip_through_every_store_comes_back_equal(
    make_github: MakeGitHub, tmp_path: Path, request: pytest.FixtureRequest, loopback_s3: Any
) -> None:
    clock = ManualClock()
    fake, github = make_github("octo-org/source", clock=clock)
    fill(Queue(github), fake)
    assert github.purge(states=[JobState.COMPLETED], older_than=clock() + timedelta(seconds=1)) == 2  # 1 and 9
    _, github_again = make_github("octo-org/copy", clock=clock)
    chain: list[Store] = [
        github,
        SQLiteStore(tmp_path / "copy.db"),
        fresh_schema(request),
        fresh_store(request),
        S3Store(loopback_s3.new_bucket(), "q", endpoint_url=loopback_s3.endpoint_url, session=loopback_s3.session()),
        github_again,
    ]
    try:
        for source, target in itertools.pairwise(chain):
            tally = Mirror(source, target).run()
            assert (tally.created, tally.updated) == (10, 0), target.url
            assert_same_queue(github, target)
            again = Mirror(source, target).run()
            assert (again.examined, again.changed, again.unchanged) == (10, 0, 10), target.url
        assert [j.id for j in github_again.iter_jobs()] == [2, 3, 4, 5, 6, 7, 8, 10, 11, 12]  # the gaps kept
        states = {j.id: j.state for j in github_again.iter_jobs()}
        assert states[2] is JobState.FAILED and states[3] is JobState.PROCESSING and states[4] is JobState.CANCELLED
    finally:
        for store in chain[1:-1]:
            store.close()


def test_filters_and_dry_run(make_github: MakeGitHub, tmp_path: Path) -> None:
    clock = ManualClock()
    fake, github = make_github("octo-org/source", clock=clock)
    fill(Queue(github), fake)
    copy = SQLiteStore(tmp_path / "copy.db")
    dry = Mirror(github, copy, selection=Selection(states=frozenset({JobState.FAILED})), dry_run=True).run()
    assert (dry.created, dry.comments) == (1, 1) and list(copy.iter_jobs()) == []
    failed = Mirror(github, copy, selection=Selection(states=frozenset({JobState.FAILED}))).run()
    assert failed.created == 1 and [j.id for j in copy.iter_jobs()] == [2]
    mail = Mirror(github, copy, selection=Selection(labels=("mail",))).run()
    assert [j.id for j in copy.iter_jobs()] == [1, 2, 4, 7, 10]
    assert mail.created == 4
    later = Mirror(github, copy, selection=Selection(since=github.get(12).updated_at + timedelta(days=1))).run()
    assert later.examined == 0
    copy.close()


def test_cli_copies_then_says_nothing_changed(tmp_path: Path) -> None:
    source_url, target_url = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    queue = Queue(source_url)
    for n in range(3):
        queue.enqueue({"n": n})
    queue.cancel(2, comment="not needed")
    queue.close()
    runner = CliRunner()
    dry = runner.invoke(main, ["mirror", source_url, target_url, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "3 would be created" in dry.output
    first = runner.invoke(main, ["mirror", source_url, target_url, "--states", "pending,cancelled"])
    assert first.exit_code == 0, first.output
    assert "3 jobs examined: 3 created, 0 updated (1 comments copied), 0 unchanged" in first.output
    second = runner.invoke(main, ["mirror", source_url, target_url])
    assert second.exit_code == 0, second.output
    assert "the mirror is up to date, nothing changed" in second.output
    bad = runner.invoke(main, ["mirror", source_url, target_url, "--states", "done"])
    assert bad.exit_code == 1 and "unknown state 'done'" in bad.output
    source, target = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "b.db")
    assert_same_queue(source, target)
    source.close()
    target.close()
