"""The ``dependents`` setting has a size cap: a producer cannot fill the settings (on GitHub, the one settings issue
that schedules, pauses and queue definitions share) with jobs waiting for parents that never finish."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from octoqueue.cli import main
from octoqueue.dependencies import MAX_SETTING_CHARS, PRUNE_INTERVAL, SETTING_KEY, setting_chars
from octoqueue.errors import DependentsFull
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores import open_store
from octoqueue.testing.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def queue(clock: ManualClock) -> Iterator[Queue]:
    q = Queue(open_store("memory://", clock=clock), max_attempts=1)
    yield q
    q.close()


def fill(queue: Queue, parents: list[int]) -> list[int]:
    """Enqueue jobs each waiting for all of ``parents`` (none of which finishes) until one is refused; return the
    ids of the jobs made."""
    made: list[int] = []
    for n in range(100):
        try:
            made.append(queue.enqueue({"n": n}, depends_on=parents))
        except DependentsFull:
            return made
    raise AssertionError("100 jobs with 100 parents each were all accepted")


def test_a_producer_cannot_fill_the_settings_with_waiting_jobs(queue: Queue) -> None:
    parents = [queue.enqueue({"parent": n}) for n in range(100)]  # pending forever: no worker takes them
    made = fill(queue, parents)
    assert 5 <= len(made) <= 15  # the first job's links take about 3,600 characters, each next one 1,300
    edges = queue.store.get_setting(SETTING_KEY)
    assert setting_chars(edges) <= MAX_SETTING_CHARS
    before = queue.store.count()
    with pytest.raises(DependentsFull, match="too many jobs wait for parents") as refused:
        queue.enqueue({"late": 1}, depends_on=parents)
    assert isinstance(refused.value, ValueError)  # the API answers 400, the CLI exits 1
    assert queue.store.count() == before  # nothing was made
    assert queue.store.get_setting(SETTING_KEY) == edges
    # A job with fewer parents may still fit; the settings keep room for the rest.
    queue.store.set_setting("schedules", {"x" * 100: "y" * 40_000})


def test_links_of_jobs_that_are_gone_or_no_longer_wait_are_dropped_to_make_room(
    queue: Queue, clock: ManualClock
) -> None:
    parents = [queue.enqueue({"parent": n}) for n in range(100)]
    made = fill(queue, parents)
    for child in made[:2]:
        queue.cancel(child)  # no longer waits: its links would stay until every parent finished
    # The refusal in fill() looked for stale links a moment ago: a second look waits PRUNE_INTERVAL, so refused
    # producers cannot make the store read every link again and again.
    with pytest.raises(DependentsFull):
        queue.enqueue({"too soon": True}, depends_on=parents)
    clock.advance(PRUNE_INTERVAL)
    queue.enqueue({"fits": True}, depends_on=parents)
    edges = queue.store.get_setting(SETTING_KEY)
    assert not any(child in children for child in made[:2] for children in edges.values())
    assert queue.dependencies.prune() is False


def test_purged_parents_and_children_leave_the_setting(queue: Queue, clock: ManualClock) -> None:
    parent = queue.enqueue({"p": 1})
    child = queue.enqueue({"c": 1}, depends_on=[parent])
    kept = queue.enqueue({"c": 2}, depends_on=[queue.enqueue({"p": 2})])
    queue.cancel(parent)  # the child fails with it; the link stays so that a requeue revives it
    assert queue.get(child).state is JobState.FAILED
    assert queue.dependencies.prune() is True
    assert queue.dependencies.dependents(parent) == [child]  # failed by that parent: kept
    clock.advance(PRUNE_INTERVAL)
    queue.store.purge(states=[JobState.FAILED, JobState.CANCELLED], older_than=clock())
    assert queue.dependencies.prune() is True
    assert list(queue.store.get_setting(SETTING_KEY).values()) == [[kept]]


def test_a_child_whose_links_no_longer_fit_is_cancelled_and_refused(queue: Queue) -> None:
    parents = [queue.enqueue({"parent": n}) for n in range(100)]
    fill(queue, parents[:50])
    # Another producer's links arrive between the check and the write: the check passed, the write does not fit.
    queue.store.update_setting(SETTING_KEY, lambda edges: {**edges, "999999": list(range(10**6, 10**6 + 2_000))})
    child = queue.store.create(queue._new_job({"raced": 1}, None, None, run_at=None))
    with pytest.raises(DependentsFull):
        queue.dependencies.attach(child, parents[50:], "fail")
    refused = queue.get(child.id)
    assert refused.state is JobState.CANCELLED
    assert refused.last_error is not None and "too many jobs wait for parents" in refused.last_error


def test_enqueue_on_the_command_line_exits_1_when_the_room_is_full(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/full.db"
    q = Queue(url, max_attempts=1)
    parents = [q.enqueue({"parent": n}) for n in range(100)]
    fill(q, parents)
    q.close()
    args = ["enqueue", "{}", "--store", url]
    for parent in parents:
        args += ["--depends-on", str(parent)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "too many jobs wait for parents" in result.output
