"""Group commit (octoqueue/stores/grouping.py): concurrent calls share a send, each gets its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from octoqueue.stores.grouping import GroupSender


def test_calls_made_during_a_send_share_the_next_one() -> None:
    sent: list[list[int]] = []
    first_sending, release = threading.Event(), threading.Event()

    def send(items: Sequence[int]) -> list[int]:
        sent.append(list(items))
        if len(sent) == 1:
            first_sending.set()
            release.wait(5)
        return [item * 10 for item in items]

    group: GroupSender[int, int] = GroupSender(send)
    results: dict[int, int] = {}
    first = threading.Thread(target=lambda: results.__setitem__(0, group(0)))
    first.start()
    assert first_sending.wait(5)
    others = [threading.Thread(target=lambda i=i: results.__setitem__(i, group(i))) for i in range(1, 6)]
    for thread in others:
        thread.start()
    while len(group._queued) < 5:  # every other call is queued behind the first send
        threading.Event().wait(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert results == {i: i * 10 for i in range(6)}
    assert sent[0] == [0] and sorted(sent[1]) == [1, 2, 3, 4, 5] and len(sent) == 2


def test_a_failed_send_fails_its_calls_only_and_the_next_send_goes_on() -> None:
    calls = 0

    def send(items: Sequence[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if "boom" in items:
            raise RuntimeError("server gone")
        return [item.upper() for item in items]

    group: GroupSender[str, str] = GroupSender(send)
    with pytest.raises(RuntimeError, match="server gone"):
        group("boom")
    assert group("ok") == "OK"
    assert calls == 2
