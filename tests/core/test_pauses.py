"""The pause state (octoqueue.pauses): read leniently after a hand edit, cached per process, changed by CAS."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from octoqueue.pauses import SETTING, PauseControl, Pauses
from octoqueue.queue import Queue
from octoqueue.stores.memory import MemoryStore


@pytest.mark.parametrize(
    ("stored", "queue", "labels"),
    [
        (None, None, {}),
        ("yes", None, {}),
        ({"queue": None, "labels": {"a": "t"}}, None, {"a": "t"}),
        ({"queue": "t", "labels": ["a"]}, "t", {}),  # labels edited into a list: ignored, not a crash
        ({"labels": {"a": "", "b": "t"}}, None, {"b": "t"}),  # an emptied entry is no pause
    ],
)
def test_a_hand_edited_setting_is_read_leniently(stored: Any, queue: str | None, labels: dict[str, str]) -> None:
    assert Pauses.from_setting(stored) == Pauses(queue, labels)


def test_a_process_trusts_its_last_read_for_the_interval_and_its_own_changes_at_once() -> None:
    store = MemoryStore()
    here = Queue(store, pause_check_interval=3600)
    there = Queue(store)
    here.enqueue({"n": 1})
    assert here.claim_batch(0) == []  # reads (and caches) the state: nothing paused
    there.pause()
    assert store.get_setting(SETTING)["queue"]
    assert here.pauses.current().queue is None  # within its interval it has not looked again
    assert here.paused().queue is not None  # paused() reads the store; the claims now see it too
    assert here.claim() is None
    here.resume()
    assert store.get_setting(SETTING) is None and here.claim() is not None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_setting(self, key: str) -> Any:
        if key == SETTING:
            self.reads += 1
        return super().get_setting(key)


def test_refresh_ahead_reads_only_when_the_state_goes_stale_within_the_window() -> None:
    store, clock = _CountingStore(), _Clock()
    pauses = PauseControl(store, 5.0, clock=clock)
    pauses.refresh_ahead(1.0)
    assert store.reads == 1 and pauses.read_at == 0.0  # nothing read yet: stale already
    clock.now = 3.0
    pauses.refresh_ahead(1.0)
    assert store.reads == 1  # fresh for 2 s more
    pauses.refresh_ahead(2.5)
    assert store.reads == 2 and pauses.read_at == 3.0
    pauses.current()
    assert store.reads == 2
    PauseControl(store, 0.0, clock=clock).refresh_ahead(10.0)
    assert store.reads == 2  # with no interval every claim reads anyway


def test_a_claim_about_to_wait_reads_the_pause_state_ahead_so_a_wake_up_does_not() -> None:
    store, clock = _CountingStore(), _Clock()
    queue = Queue(store)
    queue.pauses = PauseControl(store, 5.0, clock=clock)
    assert queue.claim_batch(1) == []  # reads the state at 0
    clock.now = 3.0
    got: list[int] = []
    waiting = threading.Thread(target=lambda: got.extend(j.id for j in queue.claim_batch(1, wait=30, poll_interval=30)))
    waiting.start()
    try:
        # Its claim finds the state fresh (3 s old); before waiting it reads it again, since it goes stale meanwhile.
        deadline = time.monotonic() + 10
        while queue.pauses.read_at != 3.0:
            assert time.monotonic() < deadline, "the waiting claim did not read the pause state ahead"
            time.sleep(0.005)
        reads = store.reads
        clock.now = 6.0  # the read at 0 would be stale now; the one made ahead is not
        job = queue.enqueue({"n": 1})
    finally:
        waiting.join(10)
    assert got == [job]
    assert store.reads == reads == 2  # the woken claim went straight to the store's claim


def test_stale_within_tells_without_reading() -> None:
    store, clock = _CountingStore(), _Clock()
    pauses = PauseControl(store, 5.0, clock=clock)
    assert pauses.stale_within(0.0)  # never read
    pauses.current()
    clock.now = 3.0
    assert not pauses.stale_within(1.9) and pauses.stale_within(2.0)
    assert store.reads == 1
    assert not PauseControl(store, 0.0, clock=clock).stale_within(100.0)  # every claim reads: nothing to refresh
