"""ThreadBatches: the blocking calls made in one turn of the event loop go to a thread together; each keeps its own
result, exception and context."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from octoqueue.api.threadbatch import ThreadBatches

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_calls_of_one_turn_share_a_trip_and_keep_their_own_outcomes() -> None:
    batches = ThreadBatches()
    loop_thread = threading.get_ident()
    ran_in: list[int] = []

    def work(value: int) -> int:
        ran_in.append(threading.get_ident())
        if value == 2:
            raise ValueError("two")
        return value * 10

    async def main() -> list[object]:
        calls = [batches.run(lambda v=v: work(v)) for v in (1, 2, 3)]  # type: ignore[misc]
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        outcomes = asyncio.run(main())
    finally:
        batches.close()
    assert outcomes[0] == 10 and outcomes[2] == 30
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "two"
    assert (batches.batches, batches.calls) == (1, 3)
    assert len(set(ran_in)) == 1 and ran_in[0] != loop_thread


def test_a_call_alone_leaves_at_once_and_calls_in_later_turns_make_new_batches() -> None:
    batches = ThreadBatches()

    async def main() -> list[int]:
        first = await batches.run(lambda: 1)
        second = await batches.run(lambda: 2)
        return [first, second]

    try:
        assert asyncio.run(main()) == [1, 2]
    finally:
        batches.close()
    assert (batches.batches, batches.calls) == (2, 2)


def test_each_call_runs_in_the_context_of_its_caller() -> None:
    batches = ThreadBatches()

    async def caller(name: str) -> str:
        request_id.set(name)
        return await batches.run(request_id.get)

    async def main() -> list[str]:
        return list(await asyncio.gather(caller("a"), caller("b"), caller("c")))

    try:
        assert asyncio.run(main()) == ["a", "b", "c"]
    finally:
        batches.close()
    assert batches.batches == 1


def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    batches = ThreadBatches()
    release = threading.Event()

    def slow() -> str:
        assert release.wait(10)
        return "slow"

    async def main() -> str:
        doomed = asyncio.ensure_future(batches.run(slow))
        kept = asyncio.ensure_future(batches.run(lambda: "kept"))
        await asyncio.sleep(0)  # both made in this turn: one batch
        doomed.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        return await kept

    try:
        assert asyncio.run(main()) == "kept"
    finally:
        batches.close()
