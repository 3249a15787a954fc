"""Workers register themselves in the store's ``workers`` setting so ``octoqueue info`` shows them, idle ones too:
records on the store's clock (moved by a ManualClock), dropped when stale, removed at a clean stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from octoqueue.cli.info import frame_text
from octoqueue.overview import Snapshot
from octoqueue.queue import Queue
from octoqueue.registry import LIVE_FOR, WORKERS_SETTING, live_workers, register, unregister
from octoqueue.stores.memory import MemoryStore
from octoqueue.testing.clock import ManualClock
from octoqueue.worker import Worker

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def test_records_are_live_for_two_minutes_and_a_writer_drops_stale_ones() -> None:
    clock = ManualClock(T0)
    store = MemoryStore(clock=clock)
    register(store, "a:1:x", "a", [3, 1])
    clock.advance(30)
    register(store, "b:2:y", "b", [])
    assert [(r.name, r.host, r.job_ids, r.seen) for r in live_workers(store.get_setting(WORKERS_SETTING), clock())] == [
        ("a:1:x", "a", (1, 3), T0),
        ("b:2:y", "b", (), T0 + timedelta(seconds=30)),
    ]
    clock.advance(LIVE_FOR - 29)  # a's record is now LIVE_FOR + 1 s old
    assert [r.name for r in live_workers(store.get_setting(WORKERS_SETTING), clock())] == ["b:2:y"]
    register(store, "b:2:y", "b", [7])
    assert set(store.get_setting(WORKERS_SETTING)) == {"b:2:y"}  # the writer dropped a's stale record
    unregister(store, "b:2:y")
    assert store.get_setting(WORKERS_SETTING) is None


def test_records_that_are_not_a_workers_record_are_left_out() -> None:
    value = {"ok": {"host": "h", "jobs": [1], "seen": T0.isoformat()}, "bad": {"seen": "yesterday"}, "x": 3}
    assert [r.name for r in live_workers(value, T0)] == ["ok"]
    assert live_workers("not a dict", T0) == []


def test_info_shows_an_idle_registered_worker() -> None:
    clock = ManualClock(T0)
    store = MemoryStore(clock=clock)
    register(store, "idle:9:zz", "box-z", [])
    clock.advance(5)
    text = frame_text(Snapshot.take(store, clock=clock), None, width=120)
    assert "Workers: 1" in text
    assert ["idle:9:zz", "box-z", "5", "s", "ago"] in [line.split() for line in text.splitlines()]
    assert Snapshot.take(store, clock=clock).as_dict()["workers"][0]["host"] == "box-z"


def test_a_running_worker_keeps_its_record_and_removes_it_when_stopped() -> None:
    store = MemoryStore()
    queue = Queue(store)
    release = threading.Event()
    worker = Worker(queue, lambda data: release.wait(10), name="w:1:reg", register_every=0.05)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not live_workers(store.get_setting(WORKERS_SETTING), store.now()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.name for r in live_workers(store.get_setting(WORKERS_SETTING), store.now())] == ["w:1:reg"]
        job_id = queue.enqueue({"n": 1})
        while time.monotonic() < deadline:
            records = live_workers(store.get_setting(WORKERS_SETTING), store.now())
            if records and records[0].job_ids == (job_id,):
                break
            time.sleep(0.01)
        assert live_workers(store.get_setting(WORKERS_SETTING), store.now())[0].job_ids == (job_id,)
    finally:
        release.set()
        worker.stop(timeout=10)
    assert store.get_setting(WORKERS_SETTING) is None


class SettingsWrites(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        self.written.append(key)
        return super().update_setting(key, update)


def test_a_once_run_does_not_register() -> None:
    store = SettingsWrites()
    queue = Queue(store)
    queue.enqueue({"n": 1})
    Worker(queue, lambda data: data, register_every=0.01).run(once=True)
    assert WORKERS_SETTING not in store.written
