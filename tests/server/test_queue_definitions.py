"""Queue definitions (octoqueue/api/queues.py) are one atomic settings update: concurrent definers lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import octoqueue
from octoqueue.api.queues import QueueConfig, QueueExists, QueueRegistry
from octoqueue.stores.memory import MemoryStore
from octoqueue.stores.sqlite import SQLiteStore

ROOT = Path(octoqueue.__file__).resolve().parent.parent

#: Queues each process defines: enough for the two to overlap many times (on main, before update_setting, two such
#: processes lost about half of the definitions).
COUNT = 150
DEFINER = """
import sys, time
from pathlib import Path
from octoqueue.api.queues import QueueConfig, QueueRegistry
from octoqueue.stores.sqlite import SQLiteStore

db, go, prefix, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
registry = QueueRegistry(SQLiteStore(db), ttl=0)
Path(f"{go}-{prefix}-ready").touch()
while not go.exists():
    time.sleep(0.001)
for i in range(count):
    registry.create(QueueConfig(name=f"{prefix}{i}"))
"""


def test_two_processes_defining_queues_at_once_both_keep_theirs(tmp_path: Path) -> None:
    db, go = tmp_path / "jobs.db", tmp_path / "go"
    SQLiteStore(db).close()  # the file exists before they race
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    definers = [
        subprocess.Popen([sys.executable, "-c", DEFINER, str(db), str(go), prefix, str(COUNT)], env=env)
        for prefix in ("a", "b")
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}-{prefix}-ready").exists() for prefix in "ab"):  # both started, waiting for "go"
        assert time.monotonic() < deadline and all(p.poll() is None for p in definers), "a definer did not start"
        time.sleep(0.01)
    go.touch()
    assert [p.wait(timeout=120) for p in definers] == [0, 0]
    names = {config.name for config in QueueRegistry(SQLiteStore(db), ttl=0).list()}
    assert names == {f"{prefix}{i}" for prefix in "ab" for i in range(COUNT)}


def test_create_refuses_a_taken_name_and_delete_says_whether_it_removed() -> None:
    registry = QueueRegistry(MemoryStore(), ttl=0)
    first = registry.create(QueueConfig(name="work", max_retries=1))
    with pytest.raises(QueueExists):
        registry.create(QueueConfig(name="work", max_retries=9))
    assert registry.get("work") == first
    assert registry.delete("work") is True
    assert registry.delete("work") is False
    assert registry.list() == []
