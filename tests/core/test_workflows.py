"""Workflows end to end: a 50-job DAG run by 4 worker threads, a failed parent's subtree, and its revival."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from octoqueue.cli import main
from octoqueue.dependencies import is_waiting
from octoqueue.errors import PermanentError
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores import open_store
from octoqueue.testing.clock import ManualClock
from octoqueue.worker import Worker
from octoqueue.workflows import Workflow, WorkflowCycle, render, show


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/dag.db"


def open_queue(url: str, clock: ManualClock) -> Queue:
    return Queue(open_store(url, clock=clock), max_attempts=1, lease=60)


@pytest.fixture
def queue(url: str, clock: ManualClock) -> Iterator[Queue]:
    q = open_queue(url, clock)
    yield q
    q.close()


def fifty_step_dag(seed: int = 7) -> Workflow:
    """50 steps; each after 0-3 random earlier ones (so some have several parents, some none)."""
    rng = random.Random(seed)
    workflow = Workflow("dag50")
    for i in range(50):
        parents = rng.sample([f"s{j}" for j in range(i)], k=min(i, rng.randint(0, 3)))
        workflow.add_job({"step": f"s{i}"}, name=f"s{i}", depends_on=parents)
    return workflow


class Recorder:
    """A handler that records the order jobs start in and checks, as each starts, that its parents completed."""

    def __init__(self, queue: Queue, parents: dict[int, list[int]], fail: set[str] | None = None) -> None:
        self.queue, self.parents, self.fail = queue, parents, fail or set()
        self.started: list[int] = []
        self.early: list[int] = []
        self.workers: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, data: Any, job: Any) -> Any:
        if any(self.queue.get(p).state is not JobState.COMPLETED for p in self.parents[job.id]):
            self.early.append(job.id)
        with self.lock:
            self.started.append(job.id)
            self.workers.add(job.worker)
        if data["step"] in self.fail:
            raise PermanentError(f"{data['step']} broke")
        return data["step"]


def drain(queue: Queue, recorder: Recorder, clock: ManualClock) -> int:
    """Run 4 workers, each with a queue and store of its own on the queue's SQLite file (as 4 processes would),
    until nothing is runnable; return how many jobs they completed. Each takes one job at a time (prefetch 1), so
    that the workers share the DAG's few runnable jobs rather than the first one taking them all."""
    crew = [Worker(open_queue(queue.store.url, clock), recorder, poll_interval=0.01, prefetch=1) for _ in range(4)]
    for _ in range(60):  # a worker stops when nothing is runnable for it: what others release runs next round
        threads = [
            threading.Thread(target=w.run, kwargs={"once": True, "install_signal_handlers": False}) for w in crew
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if all(is_waiting(job) for job in queue.store.iter_jobs(states=[JobState.PENDING])):
            break
    for worker in crew:
        worker.queue.close()
    return sum(worker.stats.completed for worker in crew)


def test_a_50_job_dag_completes_in_a_topological_order_with_4_workers(queue: Queue, clock: ManualClock) -> None:
    workflow = fifty_step_dag()
    ids = workflow.submit_all(queue)
    parents = {ids[s.name]: [ids[p] for p in s.depends_on] for s in workflow.steps.values()}
    assert sum(len(p) > 1 for p in parents.values()) > 5  # a real DAG, not a chain
    recorder = Recorder(queue, parents)
    assert drain(queue, recorder, clock) == 50 and recorder.early == []
    assert len(recorder.workers) > 1  # the workers shared the DAG (4 took part in every run seen)
    position = {job_id: n for n, job_id in enumerate(recorder.started)}
    assert all(position[p] < position[child] for child, ps in parents.items() for p in ps)
    assert all(queue.get(i).state is JobState.COMPLETED for i in ids.values())
    assert queue.store.get_setting("dependents") is None  # completed parents forget their children


def subtree(workflow: Workflow, root: str) -> set[str]:
    below, grew = {root}, True
    while grew:
        more = {s.name for s in workflow.steps.values() if set(s.depends_on) & below} - below
        below |= more
        grew = bool(more)
    return below


def test_a_failed_parent_fails_its_subtree_with_reasons_and_requeueing_it_revives_them(
    queue: Queue, clock: ManualClock
) -> None:
    workflow = fifty_step_dag()
    ids = workflow.submit_all(queue)
    names = {job_id: name for name, job_id in ids.items()}
    parents = {ids[s.name]: [ids[p] for p in s.depends_on] for s in workflow.steps.values()}
    root = "s3"
    doomed = subtree(workflow, root)
    assert len(doomed) > 10
    recorder = Recorder(queue, parents, fail={root})
    drain(queue, recorder, clock)

    for name, job_id in ids.items():
        job = queue.get(job_id)
        if name == root:
            assert job.state is JobState.FAILED and "s3 broke" in (job.last_error or "")
        elif name in doomed:
            assert job.state is JobState.FAILED, name
            # the reason names a parent that failed
            blamed = int((job.last_error or "").split()[2])
            assert blamed in parents[job_id] and names[blamed] in doomed
        else:
            assert job.state is JobState.COMPLETED, name
    assert set(recorder.started) == {ids[n] for n in ids if n not in doomed or n == root}

    recorder.fail.clear()
    queue.requeue(ids[root])
    assert all(queue.get(ids[n]).state is JobState.PENDING for n in doomed)
    drain(queue, recorder, clock)
    assert all(queue.get(i).state is JobState.COMPLETED for i in ids.values())
    assert recorder.early == []


def test_cancel_policy_and_parents_already_finished(queue: Queue) -> None:
    done = queue.enqueue({"n": 1})
    queue.complete(done)
    released = queue.enqueue_job({"n": 2}, depends_on=[done])
    assert released.state is JobState.PENDING and not is_waiting(released)
    broken = queue.enqueue({"n": 3})
    queue.cancel(broken)
    child = queue.enqueue_job({"n": 4}, depends_on=[done, broken], on_parent_failure="cancel")
    assert child.state is JobState.CANCELLED and child.last_error == f"parent job {broken} was cancelled"


def test_cycles_and_unknown_parents_are_refused(queue: Queue) -> None:
    workflow = Workflow("loop")
    workflow.add_job({}, name="a", depends_on=["c"])
    workflow.add_job({}, name="b", depends_on=["a"])
    workflow.add_job({}, name="c", depends_on=["b"])
    with pytest.raises(WorkflowCycle, match=r"has a cycle: a -> c -> b -> a$"):
        workflow.submit_all(queue)
    assert queue.count_open() == 0
    lost = Workflow("lost")
    lost.add_job({}, name="a", depends_on=["nowhere"])
    with pytest.raises(ValueError, match="nowhere"):
        lost.submit_all(queue)
    with pytest.raises(ValueError, match="run_at or delay"):
        queue.enqueue({}, depends_on=[1], delay=5)


def test_workflow_show_prints_the_dag_with_states(url: str) -> None:
    queue = Queue(url, max_attempts=1)
    workflow = Workflow("etl", workflow_id="etl-1")
    fetch = workflow.add_job({"url": "x"}, name="fetch")
    workflow.add_job({"n": 1}, name="parse", depends_on=[fetch])
    ids = workflow.submit_all(queue)
    queue.complete(queue.claim())
    nodes = show(queue, "etl-1")
    assert [(n.job.id, n.state, n.parents) for n in nodes] == [
        (ids["fetch"], "completed", ()),
        (ids["parse"], "pending", (ids["fetch"],)),
    ]
    assert "etl: parse" in render(nodes)
    queue.close()
    out = CliRunner().invoke(main, ["workflow", "show", "etl-1", "--store", url])
    assert out.exit_code == 0, out.output
    assert "completed" in out.output and f"{ids['fetch']}" in out.output.splitlines()[2]
    missing = CliRunner().invoke(main, ["workflow", "show", "nope", "--store", url])
    assert missing.exit_code == 1 and "no jobs" in missing.output


def test_parents_finishing_at_once_in_two_processes_release_each_child_once(url: str) -> None:
    left, right = Queue(url, max_attempts=1), Queue(url, max_attempts=1)
    pairs = [(left.enqueue({"p": i}), left.enqueue({"q": i})) for i in range(20)]
    children = [left.enqueue({"child": i}, depends_on=pair) for i, pair in enumerate(pairs)]
    barrier = threading.Barrier(2)

    def finish(queue: Queue, side: int) -> None:
        barrier.wait()
        for pair in pairs:
            queue.complete(pair[side])

    threads = [threading.Thread(target=finish, args=(q, side)) for side, q in enumerate((left, right))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = left.claim_batch(100)
    assert sorted(job.id for job in taken) == children
    assert all(job.attempt == 1 for job in taken)
    left.close()
    right.close()
