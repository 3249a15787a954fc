"""The pause state (octoqueue.pauses): read leniently after a hand edit, cached per process, changed by CAS."""

from __future__ import annotations

from typing import Any

import pytest

from octoqueue.pauses import SETTING, Pauses
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
