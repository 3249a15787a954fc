"""``octoqueue info [--watch]``: one frame rendered to a string with a fixed clock, snapshots through the Store
contract (and what they cost it), throughput from successive snapshots, and the command as a user runs it."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from octoqueue.cli.info import duration, frame_text
from octoqueue.job import Job, NewJob, Page
from octoqueue.overview import QUERIES_PER_SNAPSHOT, Rates, Snapshot
from octoqueue.queue import Queue
from octoqueue.registry import WorkerRecord
from octoqueue.states import JobState
from octoqueue.stores.memory import MemoryStore

from .test_cli import oq

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def _job(job_id: int, state: JobState, **fields: Any) -> Job:
    return Job(id=job_id, title=f"job {job_id}", state=state, **{"created_at": T0, "updated_at": T0, **fields})


def _snapshot(at: datetime, completed: int = 40, failed: int = 2) -> Snapshot:
    return Snapshot(
        taken_at=at,
        store_url="sqlite:///jobs.db",
        counts={
            JobState.PENDING: 1200,
            JobState.PROCESSING: 3,
            JobState.COMPLETED: completed,
            JobState.FAILED: failed,
            JobState.CANCELLED: 0,
        },
        oldest_pending=_job(7, JobState.PENDING, created_at=T0 - timedelta(minutes=4, seconds=5)),
        processing=[
            _job(
                9, JobState.PROCESSING, worker="box-a:101:aa11bb", updated_at=T0 - timedelta(seconds=3), type="resize"
            ),
            _job(
                8,
                JobState.PROCESSING,
                worker="box-a:101:aa11bb",
                updated_at=T0 - timedelta(seconds=1),
                labels=("queue:images",),
                type="resize",
            ),
            _job(11, JobState.PROCESSING, worker="box-b:202:cc22dd", updated_at=T0 - timedelta(seconds=12)),
        ],
        recent_failures=[
            _job(5, JobState.FAILED, updated_at=T0 - timedelta(seconds=30), last_error="KeyError: 'n'\nTraceback …"),
            _job(2, JobState.FAILED, updated_at=T0 - timedelta(hours=2, minutes=3), last_error="x" * 200),
        ],
        registered=[
            WorkerRecord("idle-1", "box-c", (), T0 - timedelta(seconds=20)),
            WorkerRecord("box-a:101:aa11bb", "box-a", (8,), T0 - timedelta(seconds=25)),
        ],
        pending=[
            _job(7, JobState.PENDING, labels=("queue:images", "urgent"), type="resize"),
            _job(12, JobState.PENDING, labels=("queue:images",), type="thumb"),
        ],
    )


def test_one_frame_with_a_fixed_clock() -> None:
    rates = Rates(window=300)
    assert rates.add(_snapshot(T0 - timedelta(seconds=60), completed=10, failed=1)) is None
    view = rates.add(_snapshot(T0))
    text = frame_text(_snapshot(T0), view, width=120, watching=True)
    expected = f"""\
octoqueue · sqlite:///jobs.db · 2026-11-30 12:00:00 UTC

Jobs
state        jobs
pending     1,200  oldest waits 4m 05s (job 7)
processing      3
completed      40
failed          2
cancelled       0

Throughput over the last 1m 00s: 0.5 completed/s, 0.0 failed/s (failure rate 3.2%)

By label and type
by     name          pending  processing
label  queue:images        2           1
label  urgent              1           0
type   (none)              0           1
type   resize              1           2
type   thumb               1           0
(counts the oldest 2 pending and 3 processing jobs)

Workers: 3
worker            host   jobs in hand  last seen
box-a:101:aa11bb  box-a  8, 9          1 s ago
box-b:202:cc22dd  box-b  11            12 s ago
idle-1            box-c                20 s ago

Latest failures (up to 5)
job  failed      title  error
5    30 s ago    job 5  KeyError: 'n'
2    2h 03m ago  job 2  {"x" * 79}…

{QUERIES_PER_SNAPSHOT} store calls a refresh · Ctrl-C to stop
"""
    assert [line.rstrip() for line in text.splitlines()] == expected.splitlines()


def test_a_single_look_has_no_throughput_yet() -> None:
    text = frame_text(_snapshot(T0), None)
    assert "Throughput: needs two looks (octoqueue info --watch)" in text
    assert "store calls a refresh" not in text


def test_rates_forget_what_is_older_than_the_window() -> None:
    rates = Rates(window=60)
    rates.add(_snapshot(T0 - timedelta(seconds=600), completed=0, failed=0))
    rates.add(_snapshot(T0 - timedelta(seconds=60), completed=100, failed=0))
    view = rates.add(_snapshot(T0, completed=160, failed=20))
    assert view is not None and view.seconds == 60
    assert (view.completed_per_second, view.failed_per_second) == (1.0, pytest.approx(1 / 3))
    assert view.failure_rate == pytest.approx(0.25)
    purged = rates.add(_snapshot(T0 + timedelta(seconds=30), completed=0, failed=0))  # `clear` ran
    assert purged is not None and purged.completed_per_second == 0.0


@pytest.mark.parametrize(
    ("seconds", "shown"), [(-3, "0 s"), (59, "59 s"), (61, "1m 01s"), (3600 * 5 + 60, "5h 01m"), (86400 * 2, "2d 00h")]
)
def test_durations(seconds: int, shown: str) -> None:
    assert duration(timedelta(seconds=seconds)) == shown


class CountingStore(MemoryStore):
    """Counts the store calls a snapshot makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        self.calls.append("count")
        return super().count(states)

    def list_jobs(self, **filters: Any) -> Page:  # type: ignore[override]
        self.calls.append("list_jobs")
        return super().list_jobs(**filters)

    def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]:
        self.calls.append("recently_changed")
        return super().recently_changed(states, limit=limit)

    def get_setting(self, key: str) -> Any:
        self.calls.append("get_setting")
        return super().get_setting(key)


def test_a_snapshot_reads_the_store_through_its_contract_in_five_calls() -> None:
    store = CountingStore()
    queue = Queue(store, max_attempts=1)
    ids = [queue.enqueue({"n": n}) for n in range(6)]
    held = queue.claim_batch(2, worker="box-a:1:aa")
    queue.claim(worker="box-b:2:bb")
    failing = queue.claim(worker="box-c:3:cc")
    assert failing is not None
    queue.fail(failing, error="boom")
    store.calls.clear()
    snapshot = Snapshot.take(store, clock=lambda: T0 + timedelta(days=1))
    assert len(store.calls) == QUERIES_PER_SNAPSHOT == 6
    assert snapshot.taken_at == T0 + timedelta(days=1)
    assert snapshot.counts[JobState.PENDING] == 2 and snapshot.counts[JobState.PROCESSING] == 3
    assert snapshot.oldest_pending is not None and snapshot.oldest_pending.id == ids[4]
    assert [(w.name, w.job_ids) for w in snapshot.workers()] == [
        ("box-a:1:aa", tuple(j.id for j in held)),
        ("box-b:2:bb", (ids[2],)),
    ]
    assert [j.id for j in snapshot.recent_failures] == [failing.id]
    assert json.loads(json.dumps(snapshot.as_dict()))["recent_failures"][0]["error"] == "boom"


def test_counts_per_label_and_type_are_exact_when_every_waiting_job_was_read() -> None:
    queue = Queue(MemoryStore(), max_attempts=1)
    queue.enqueue({"n": 1}, None, ["urgent"], queue="images", type="resize")
    queue.enqueue({"n": 2}, None, queue="images", type="thumb")
    queue.enqueue({"n": 3})
    assert queue.claim(worker="box-a:1:aa") is not None  # the first job: processing
    snapshot = Snapshot.take(queue.store, clock=lambda: T0)
    assert not snapshot.breakdown_sampled
    text = frame_text(snapshot, None, width=120)
    assert "By label and type" in text and "(counts the oldest" not in text
    rows = [line.split() for line in text.splitlines() if line.startswith(("label ", "type "))]
    assert rows == [
        ["label", "queue:images", "1", "1"],
        ["label", "urgent", "0", "1"],
        ["type", "(none)", "1", "0"],
        ["type", "resize", "0", "1"],
        ["type", "thumb", "1", "0"],
    ]
    breakdown = json.loads(json.dumps(snapshot.as_dict()))["breakdown"]
    assert breakdown["counts_only_jobs_read"] is False
    assert breakdown["by_label"] == {
        "queue:images": {"pending": 1, "processing": 1},
        "urgent": {"pending": 0, "processing": 1},
    }
    assert breakdown["by_type"]["thumb"] == {"pending": 1, "processing": 0}


def test_info_and_info_json_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    oq("enqueue", "-", store=db, input='{"n": 1}\n{"n": 2}\n')
    shown = oq("info", store=db)
    assert shown.returncode == 0, shown.stderr
    assert f"octoqueue · sqlite:///{db} · " in shown.stdout
    assert any(line.split()[:3] == ["pending", "2", "oldest"] for line in shown.stdout.splitlines()), shown.stdout
    data = json.loads(oq("info", "--json", store=db).stdout)
    assert data["counts"]["pending"] == 2 and data["oldest_pending"] == 1 and data["rates"] is None


def test_info_watch_json_measures_throughput_while_a_worker_drains(tmp_path: Path) -> None:
    import subprocess
    import sys

    from .test_cli import ROOT

    db = tmp_path / "w.db"
    oq("enqueue", "-", store=db, input="".join(json.dumps({"n": n}) + "\n" for n in range(300)))
    env = {"PYTHONPATH": str(ROOT), "OCTOQUEUE_STORE": f"sqlite:///{db}", "PATH": "/usr/bin:/bin"}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "octoqueue.cli", "info", "--watch", "--json", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert watcher.stdout is not None
        frames = [json.loads(watcher.stdout.readline())]
        worker = threading.Thread(
            target=oq,
            args=("work", "--handler", "tests.core.handlers_for_tests:double", "--once", "--log-level", "error"),
            kwargs={"store": db},
        )
        worker.start()
        while frames[-1]["counts"]["completed"] < 300:
            frames.append(json.loads(watcher.stdout.readline()))
        worker.join()
    finally:
        watcher.terminate()
        watcher.communicate(timeout=20)
    assert frames[0]["rates"] is None
    assert any(frame["rates"] and frame["rates"]["completed_per_second"] > 0 for frame in frames[1:])
    spans = [
        (datetime.fromisoformat(b["taken_at"]) - datetime.fromisoformat(a["taken_at"])).total_seconds()
        for a, b in itertools.pairwise(frames)
    ]
    assert max(spans) < 1.0, spans  # more than a refresh a second while 300 jobs drain


def test_snapshot_on_a_store_with_no_jobs() -> None:
    store = MemoryStore()
    store.create(NewJob(data=1, title="x"))
    store.transition(1, expected=JobState.PENDING, target=JobState.CANCELLED)
    snapshot = Snapshot.take(store)
    assert snapshot.oldest_pending is None and snapshot.oldest_pending_age is None and snapshot.workers() == []
    assert "oldest waits" not in frame_text(snapshot, None)


def test_a_github_snapshot_shows_the_rate_limit_and_what_it_cost() -> None:
    from octoqueue.stores.github import GitHubStore
    from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

    with FakeGitHub(repo="octo/watch", token="t") as gh:
        store = GitHubStore("octo/watch", token="t", base_url=IN_PROCESS_URL, transport=gh.transport())
        with Queue(store, max_attempts=1) as queue:
            queue.enqueue({"n": 1})
            first = Snapshot.take(store)
            again = Snapshot.take(store)
    assert first.budget is not None and again.budget is not None
    assert first.budget.limit == 5000 and first.budget.remaining is not None and first.budget.requests >= 4
    assert again.budget.not_modified > 0  # nothing changed: the ETag cache answers most of it
    line = frame_text(again, None, width=160)
    assert f"GitHub: {again.budget.remaining:,} of 5,000 requests left" in line
    assert f"this look cost {again.budget.requests} request(s), {again.budget.not_modified} of them 304" in line
    assert Snapshot.take(MemoryStore()).budget is None
