"""Bulk requeue and cancel by filter: the Python API and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from octoqueue import Queue
from octoqueue.states import JobState
from octoqueue.stores.sqlite import SQLiteStore

from .test_cli import oq


def _queue_with_jobs(path: Path) -> tuple[Queue, dict[str, int]]:
    queue = Queue(SQLiteStore(path))
    ids = {
        "failed-images": queue.enqueue(1, additional_labels=["images"]),
        "failed-other": queue.enqueue(2),
        "pending-images": queue.enqueue(3, additional_labels=["images"]),
        "done-images": queue.enqueue(4, additional_labels=["images"]),
    }
    queue.fail(ids["failed-images"], error="x")
    queue.fail(ids["failed-other"], error="y")
    queue.complete(ids["done-images"])
    return queue, ids


def test_requeue_and_cancel_where(tmp_path: Path) -> None:
    queue, ids = _queue_with_jobs(tmp_path / "jobs.db")
    assert [j.id for j in queue.requeue_where(labels=["images"], dry_run=True)] == [ids["failed-images"]]
    assert queue.get(ids["failed-images"]).state is JobState.FAILED  # a dry run changes nothing
    assert [j.id for j in queue.requeue_where(labels=["images"])] == [ids["failed-images"]]
    assert queue.get(ids["failed-images"]).state is JobState.PENDING
    assert queue.get(ids["failed-other"]).state is JobState.FAILED
    cancelled = queue.cancel_where(labels=["images"])
    assert sorted(j.id for j in cancelled) == sorted([ids["failed-images"], ids["pending-images"]])
    with pytest.raises(ValueError, match="only pending or processing jobs can be cancelled"):
        queue.cancel_where(states=["completed"])
    assert [j.id for j in queue.requeue_where(states=["completed", "cancelled"], labels=["images"])] == sorted(
        [ids["failed-images"], ids["pending-images"], ids["done-images"]]
    )


def test_the_cli_takes_ids_or_filters(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    queue, ids = _queue_with_jobs(db)
    queue.close()
    dry = oq("requeue", "--status", "failed", "--dry-run", store=db)
    assert dry.returncode == 0 and "would requeue 2 job(s)" in dry.stderr
    done = oq("requeue", "--status", "failed", "--label", "images", store=db)
    assert done.stdout.split() == [str(ids["failed-images"]), "pending"]
    assert "Requeued 1 job(s)" in done.stderr
    both = oq("cancel", str(ids["pending-images"]), str(ids["failed-images"]), store=db)
    assert both.returncode == 0 and both.stdout.count("cancelled") == 2
    neither = oq("cancel", store=db)
    assert neither.returncode != 0 and "give the job ids to cancel" in neither.stderr


def test_a_cancel_dry_run_speaks_english_and_blank_label_filters_are_refused(tmp_path: Path) -> None:
    """A3: "would be canceld"; A4: `--label ''` was taken as a filter although enqueue refuses blank labels."""
    db = tmp_path / "jobs.db"
    queue, ids = _queue_with_jobs(db)
    queue.close()
    dry = oq("cancel", "--label", "images", "--dry-run", store=db)
    assert dry.stdout.splitlines() == [f"{ids['pending-images']}  would be cancelled"]
    done = oq("cancel", "--label", "images", store=db)
    assert "Cancelled 1 job(s)" in done.stderr
    for command in ("cancel", "requeue", "list"):
        blank = oq(command, "--label", " ", store=db)
        assert blank.returncode == 1 and "a label cannot be blank" in blank.stderr, command
