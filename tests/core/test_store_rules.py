"""The pieces stores are built from: the ManualClock, the job rules of stores/base.py, the declared capabilities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from octoqueue.job import NewJob
from octoqueue.states import JobState
from octoqueue.stores.base import RemovesLabels, ReportsRateLimit, WakesWorkflows, claimed, is_listed, is_runnable
from octoqueue.stores.github import GitHubStore
from octoqueue.stores.memory import MemoryStore
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.testing.clock import ManualClock

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_manual_clock_moves_only_forward_and_only_when_told() -> None:
    clock = ManualClock(START)
    assert clock() == clock() == START
    assert clock.advance(1.5) == START + timedelta(seconds=1.5)
    clock.set(START + timedelta(hours=1))
    assert clock() == START + timedelta(hours=1)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set(START)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))  # a naive moment
    assert clock() == START + timedelta(hours=1)


def test_every_store_reads_the_clock_it_was_given(tmp_path: Path) -> None:
    clock = ManualClock(START)
    stores = [
        MemoryStore(clock=clock),
        SQLiteStore(tmp_path / "jobs.db", clock=clock),
        GitHubStore("o/r", token="t", clock=clock),
    ]
    clock.advance(60)
    assert [store.now() for store in stores] == [START + timedelta(seconds=60)] * 3
    for store in stores:
        store.close()


def test_the_claim_rules() -> None:
    job = NewJob(data={}, title="t", labels=("GPU",), type="resize").to_job(7, START)
    assert is_runnable(job, START, labels=["gpu"], types=["resize"], ids=[7])
    assert not is_runnable(job, START, labels=["gpu", "big"])
    assert not is_runnable(job, START, types=["other"])
    assert not is_runnable(job, START, ids=[8])
    later = job.model_copy(update={"run_at": START + timedelta(seconds=5)})
    assert not is_runnable(later, START) and is_runnable(later, START + timedelta(seconds=5))
    taken = claimed(job, worker="w", lease=30, now=START)
    assert (taken.state, taken.attempt, taken.worker) == (JobState.PROCESSING, 1, "w")
    assert taken.lease_expires_at == START + timedelta(seconds=30)
    assert not is_runnable(taken, START)
    assert is_listed(taken, states=[JobState.PROCESSING], labels=["gpu"], open=True)
    assert not is_listed(taken, open=False) and not is_listed(taken, states=[])


def test_capabilities_are_declared_by_the_stores_that_have_them() -> None:
    github = GitHubStore("o/r", token="t")
    assert isinstance(github, RemovesLabels) and isinstance(github, ReportsRateLimit)
    assert isinstance(github, WakesWorkflows)
    memory = MemoryStore()
    assert not isinstance(memory, RemovesLabels | ReportsRateLimit | WakesWorkflows)
    github.close()
