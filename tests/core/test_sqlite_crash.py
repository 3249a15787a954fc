"""A process SIGKILLed in the middle of its writes loses no job it had acknowledged, at every ``synchronous``
setting of the SQLite store: every enqueue (one job, or a batch) that returned is in the file, and every completion
the Worker reported (batched with other threads' completions and claims in shared commits) is completed, while the
store's checkpointer thread copies the WAL into the database file.

A SIGKILL tests what survives the death of the process, which is all of what SQLite has written to the operating
system; what survives a power cut depends on the fsync that ``synchronous=FULL`` (or EXTRA) adds to each commit and
cannot be tested by killing a process (docs/benchmarks.md, "Crash safety")."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from octoqueue.states import JobState
from octoqueue.stores.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]

# The doomed process: two threads enqueue (one job, then five in one call) and a Worker with four job threads
# completes them; each acknowledgement is printed once the call that made it returned.
CHILD = """
import sys, threading
from octoqueue.queue import Queue
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.worker import Worker

store = SQLiteStore(sys.argv[1], synchronous=sys.argv[2])
store.checkpointer.pages, store.checkpointer.interval = 20, 0  # the WAL copied into the file all along
queue = Queue(store)
out = threading.Lock()

def say(kind, ids):
    with out:
        sys.stdout.write(kind + " " + " ".join(map(str, ids)) + "\\n")
        sys.stdout.flush()

def produce():
    n = 0
    while True:
        n += 1
        say("E", [queue.enqueue({"n": n})])
        say("E", [job.id for job in queue.enqueue_many([{"n": n}] * 5)])

for _ in range(2):
    threading.Thread(target=produce, daemon=True).start()
worker = Worker(
    queue,
    lambda data: data["n"],
    concurrency=4,
    poll_interval=0.01,
    on_report=lambda job, report: report.status == "completed" and say("C", [job.id]),
)
worker.run(install_signal_handlers=False)
"""


def _acknowledged(path: Path, synchronous: str, enqueued: int, completed: int) -> tuple[set[int], set[int]]:
    """Run the child until it acknowledged at least ``enqueued`` jobs and ``completed`` completions, SIGKILL it, and
    return every id it acknowledged, each kind apart (lines it wrote before dying included; a cut line is not)."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), synchronous],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert child.stdout is not None
    seen: dict[str, set[int]] = {"E": set(), "C": set()}

    def take(line: bytes) -> None:
        kind, *ids = line.decode().split()
        seen[kind].update(int(i) for i in ids)

    deadline = time.monotonic() + 30
    try:
        while len(seen["E"]) < enqueued or len(seen["C"]) < completed:
            line = child.stdout.readline()
            assert line.endswith(b"\n"), f"the child ended early ({child.poll()})"
            assert time.monotonic() < deadline, {kind: len(ids) for kind, ids in seen.items()}
            take(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    for line in child.stdout.read().splitlines(keepends=True):
        if line.endswith(b"\n"):
            take(line)
    child.stdout.close()
    return seen["E"], seen["C"]


@pytest.mark.parametrize("synchronous", ["OFF", "NORMAL", "FULL", "EXTRA"])
def test_a_killed_process_loses_no_acknowledged_job(tmp_path: Path, synchronous: str) -> None:
    path = tmp_path / "crash.db"
    enqueued, completed = _acknowledged(path, synchronous, enqueued=600, completed=300)
    assert path.stat().st_size > 4096 * 40  # the checkpointer's thread had copied WAL frames into the file
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    store = SQLiteStore(path, synchronous=synchronous)
    try:
        states = {job.id: job.state for job in store.iter_jobs()}
    finally:
        store.close()
    assert enqueued <= set(states), f"acknowledged jobs lost: {sorted(enqueued - set(states))[:10]}"
    lost = sorted(i for i in completed if states[i] is not JobState.COMPLETED)
    assert not lost, f"acknowledged completions lost: {lost[:10]}"
    assert completed < enqueued  # the kill came while jobs were still arriving and being completed
