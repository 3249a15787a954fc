"""Long-poll claims: an arrival wakes one waiting claim of the job's queue, and no arrival is lost.

Over HTTP, the store's ``claim`` is wrapped to count the claims that reach it; below, :class:`ArrivalSignal` on its
own, where the order of events is under the test's control.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from octoqueue.api.longpoll import ArrivalSignal, QueueWatcher
from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy

from .conftest import LiveServer, headers
from .test_workers import Q, claim, make_queue, submit

#: Long enough that no claim in these tests is made because a poll interval passed: only arrivals wake them.
NO_POLL = {"claim_poll_interval": 60.0}


class ClaimCounter:
    """Wraps a store's ``claim``: the claims that reach the store, and the labels each asked for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, queue: Queue) -> None:
        self.calls: list[tuple[str, ...]] = []
        self._lock = threading.Lock()
        original = queue.store.claim

        def counting(**kwargs: Any) -> Any:
            with self._lock:
                self.calls.append(tuple(kwargs.get("labels", ())))
            return original(**kwargs)

        monkeypatch.setattr(queue.store, "claim", counting)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self.calls)


def signal_of(server: LiveServer) -> ArrivalSignal:
    signal: ArrivalSignal = server.app.state.runtime.arrivals
    return signal


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(80) as executor:
        yield executor


def park(
    pool: ThreadPoolExecutor, server: LiveServer, n: int, name: str = "work", count: int = 1, block_ms: int = 15_000
) -> list[Future[tuple[list[dict[str, Any]], float]]]:
    """Start ``n`` long-poll claims on queue ``name``; return once all of them are parked."""
    before = signal_of(server).parked

    def one() -> tuple[list[dict[str, Any]], float]:
        jobs = claim(server, name, count, block_ms)
        return jobs, time.monotonic()

    futures = [pool.submit(one) for _ in range(n)]
    wait_for(lambda: signal_of(server).parked == before + n, what=f"{n} parked claims")
    return futures


def payloads(futures: list[Future[tuple[list[dict[str, Any]], float]]]) -> list[Any]:
    return sorted(job["payload"]["n"] for f in futures for job in f.result(timeout=20)[0])


# -- over HTTP ---------------------------------------------------------------------------------------------------
def test_one_job_for_64_waiting_claims_makes_one_claim(
    make_server: Any, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(**NO_POLL)
    make_queue(server)
    counter = ClaimCounter(monkeypatch, server.queue)
    futures = park(pool, server, 64)
    counter.reset()

    submitted = time.monotonic()
    submit(server, {"payload": {"n": 0}})
    wait_for(lambda: any(f.done() for f in futures), timeout=5, what="the job to be claimed")
    (winner,) = [f for f in futures if f.done()]
    jobs, at = winner.result()
    assert [job["payload"] for job in jobs] == [{"n": 0}]
    assert at - submitted < 3.0  # woken by the arrival: no poll for 60 s, block_ms is 15 s
    time.sleep(0.3)  # any other claim the arrival caused would have reached the store by now
    assert counter.calls == [("queue:work",)]
    assert signal_of(server).parked == 63

    # The other 63 get one job each, one claim each.
    counter.reset()
    submit(server, {"jobs": [{"payload": {"n": i}} for i in range(1, 64)]})
    assert payloads(futures) == list(range(64))
    assert len(counter) == 63


def test_a_job_on_another_queue_wakes_no_waiting_claim(
    make_server: Any, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(**NO_POLL)
    make_queue(server, "a")
    make_queue(server, "b")
    counter = ClaimCounter(monkeypatch, server.queue)
    futures = park(pool, server, 8, "a")
    counter.reset()

    submit(server, {"payload": {"n": "b"}}, "b")
    server.queue.enqueue({"n": "none"})  # no queue label at all
    time.sleep(0.3)
    assert len(counter) == 0
    assert signal_of(server).parked == 8
    assert not any(f.done() for f in futures)

    submit(server, {"jobs": [{"payload": {"n": i}} for i in range(8)]}, "a")
    assert payloads(futures) == list(range(8))
    assert counter.calls == [("queue:a",)] * 8
    assert [job["payload"] for job in claim(server, "b")] == [{"n": "b"}]


def test_jobs_arriving_together_all_reach_the_waiting_claims(
    make_server: Any, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 24
    server = make_server(**NO_POLL)
    make_queue(server)
    counter = ClaimCounter(monkeypatch, server.queue)
    futures = park(pool, server, n)
    counter.reset()

    submitted = time.monotonic()
    submit(server, {"jobs": [{"payload": {"n": i}} for i in range(n)]})
    wait_for(lambda: all(f.done() for f in futures), timeout=5, what="every claim to return")
    assert max(f.result()[1] for f in futures) - submitted < 3.0  # no poll for 60 s
    assert payloads(futures) == list(range(n))  # each job once, none left behind
    assert len(counter) == n  # one claim per job


def test_jobs_arriving_together_reach_claims_of_several_jobs(make_server: Any, pool: ThreadPoolExecutor) -> None:
    """Workers claiming up to 3 jobs, claiming again as soon as they have them: every job is taken promptly (a
    claim may come back with fewer than 3; the jobs it left are there for that worker's next claim)."""
    n, workers = 24, 8
    server = make_server(**NO_POLL)
    make_queue(server)
    claimed: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if len(claimed) >= n:
                    return
            jobs = claim(server, "work", 3, 2000)
            with lock:
                claimed.extend(job["payload"]["n"] for job in jobs)

    futures = [pool.submit(worker) for _ in range(workers)]
    wait_for(lambda: signal_of(server).parked == workers, what=f"{workers} parked claims")
    submitted = time.monotonic()
    submit(server, {"jobs": [{"payload": {"n": i}} for i in range(n)]})
    wait_for(lambda: len(claimed) >= n, timeout=5, what="every job to be claimed")
    assert time.monotonic() - submitted < 3.0  # no poll for 60 s
    assert sorted(claimed) == list(range(n))
    for f in futures:
        f.result(timeout=20)


def test_arrivals_from_the_queue_object_and_the_api_mix(
    make_server: Any, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs enqueued from threads through the Queue while claims come and go: every job is claimed, promptly."""
    server = make_server(**NO_POLL)
    make_queue(server)
    n = 60
    claimed: list[Any] = []
    lock = threading.Lock()

    def claimer() -> None:
        while True:
            jobs = claim(server, "work", 2, 3000)
            with lock:
                claimed.extend(job["payload"]["n"] for job in jobs)
                if len(claimed) >= n or not jobs:
                    return

    def producer(start: int) -> None:
        for i in range(start, n, 3):
            server.queue.enqueue({"n": i}, queue="work")
            time.sleep(0.002)

    claimers = [pool.submit(claimer) for _ in range(6)]
    wait_for(lambda: signal_of(server).parked == 6, what="6 parked claims")
    started = time.monotonic()
    producers = [pool.submit(producer, k) for k in range(3)]
    for f in producers:
        f.result(timeout=20)
    wait_for(lambda: len(claimed) >= n, timeout=5, what="every job to be claimed")
    assert time.monotonic() - started < 5  # no poll for 60 s
    assert sorted(claimed) == list(range(n))
    for f in claimers:
        f.result(timeout=20)


def test_jobs_another_process_enqueues_are_claimed_within_the_poll_interval(
    make_server: Any, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    queue = Queue(url, retry=RetryPolicy(initial=0.3, jitter=0))
    server = make_server(queue, claim_poll_interval=0.3)
    make_queue(server)
    (future,) = park(pool, server, 1)
    script = (
        "import sys; from octoqueue.queue import Queue; "
        "Queue(sys.argv[1]).enqueue({'n': 'elsewhere'}, queue='work').__class__"
    )
    subprocess.run([sys.executable, "-c", script, url], check=True, timeout=60)
    enqueued = time.monotonic()
    jobs, at = future.result(timeout=10)
    assert [job["payload"] for job in jobs] == [{"n": "elsewhere"}]
    assert at - enqueued < 8.0  # found by the 0.3 s poll, long before block_ms (15 s)
    queue.close()


def test_a_retry_wakes_a_waiting_claim_when_its_backoff_ends(make_server: Any, pool: ThreadPoolExecutor) -> None:
    server = make_server(**NO_POLL)  # the retry is not found by polling
    make_queue(server)
    submit(server, {"payload": {"n": 1}})
    (job,) = claim(server)
    (future,) = park(pool, server, 1)
    response = server.put(f"{Q}/work/jobs/{job['id']}/fail", json={"error": "again"}, headers=headers("worker"))
    assert response.status_code == 200
    failed_at = time.monotonic()
    jobs, at = future.result(timeout=10)
    assert [j["payload"] for j in jobs] == [{"n": 1}]
    assert 0.25 < at - failed_at < 5.0  # the backoff is 0.3 s (conftest's RetryPolicy); no poll for 60 s


# -- ArrivalSignal on its own --------------------------------------------------------------------------------------
def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 10))


def test_an_arrival_wakes_the_claim_parked_longest_of_its_queue_only() -> None:
    async def scenario() -> None:
        signal = ArrivalSignal()
        with (
            signal.waiter(["queue:a"]) as a1,
            signal.waiter(["queue:a"]) as a2,
            signal.waiter(["queue:b"]) as b1,
            signal.waiter([]) as anything,
        ):
            for w in (a1, a2, b1, anything):
                w.claiming()
                assert not w.claimed(0)
            parked = [asyncio.create_task(w.wait(5)) for w in (a1, a2, b1, anything)]
            await asyncio.sleep(0)
            assert signal.parked == 4
            signal.arrive(["queue:a", "other"])
            await asyncio.sleep(0.01)
            assert [t.done() for t in parked] == [True, False, False, False]
            signal.arrive(["queue:c"])  # only the claim for any label can take it
            signal.arrive(["queue:a"])
            await asyncio.sleep(0.01)
            assert [t.done() for t in parked] == [True, True, False, True]
            signal.arrive(["queue:a"])  # every claim that could take it is woken already: dropped
            assert signal.handed == 3
            assert not parked[2].done()
            parked[2].cancel()

    run(scenario())


def test_a_woken_claim_that_leaves_without_claiming_hands_its_arrival_on() -> None:
    async def scenario() -> None:
        signal = ArrivalSignal()
        with signal.waiter(["q"]) as stays:
            stays.claiming()
            stays.claimed(0)
            with signal.waiter(["q"]) as leaves:
                leaves.claiming()
                leaves.claimed(0)
                leaving = asyncio.create_task(leaves.wait(5))
                staying = asyncio.create_task(stays.wait(5))
                await asyncio.sleep(0)
                signal.arrive(["q"])  # to `leaves`, parked first ...
                assert await leaving
                assert not staying.done()
            # ... which went away (its client disconnected) without claiming
            assert await staying
            assert stays.woken

    run(scenario())


def test_an_arrival_during_a_claim_that_took_nothing_makes_it_claim_again() -> None:
    async def scenario() -> None:
        signal = ArrivalSignal()
        with signal.waiter(["q"]) as waiter:
            waiter.claiming()
            signal.arrive(["q"])  # the claim may have read the store before the job was written
            assert waiter.claimed(0)
            waiter.claiming()
            assert not waiter.claimed(1)

    run(scenario())


def test_arrivals_during_a_claim_that_took_jobs_are_handed_on_when_it_returns() -> None:
    async def scenario() -> None:
        signal = ArrivalSignal()
        with signal.waiter(["q"], count=2) as other:
            other.claiming()
            other.claimed(0)
            parked = asyncio.create_task(other.wait(5))
            with signal.waiter(["q"]) as busy:
                busy.claiming()
                await asyncio.sleep(0)
                signal.arrive(["q"])  # goes to the parked claim
                assert await parked
                other.claiming()
                signal.arrive(["q"])  # nobody parked: to the claim that started first
                assert not busy.claimed(1)
                assert other._late == []
            # busy returned with one job: the arrival it held, which its claim may not have seen, is other's now
            assert len(other._late) == 1
            assert other.claimed(0)  # other's claim found nothing: it claims again

    run(scenario())


def test_a_claim_that_comes_back_short_passes_its_arrival_on_once() -> None:
    async def scenario() -> None:
        signal = ArrivalSignal()
        with contextlib.ExitStack() as stack:
            a, b, c = (stack.enter_context(signal.waiter(["q"])) for _ in range(3))
            for w in (a, b, c):
                w.claiming()
                w.claimed(0)
            tasks = [asyncio.create_task(w.wait(5)) for w in (a, b, c)]
            await asyncio.sleep(0)
            signal.arrive(["q"])
            assert await tasks[0]
            a.claiming()
            a.claimed(0)  # someone else took the job: b gets the arrival ...
            assert await tasks[1]
            b.claiming()
            b.claimed(0)  # ... and nobody after b
            await asyncio.sleep(0.01)
            assert not tasks[2].done()
            assert signal.handed == 2
            tasks[2].cancel()

    run(scenario())


def test_a_woken_claim_for_several_jobs_takes_several_arrivals() -> None:
    async def scenario() -> None:
        signal = ArrivalSignal()
        with signal.waiter(["q"], count=3) as big, signal.waiter(["q"], count=3) as next_one:
            for w in (big, next_one):
                w.claiming()
                w.claimed(0)
            tasks = [asyncio.create_task(w.wait(5)) for w in (big, next_one)]
            await asyncio.sleep(0)
            for _ in range(4):
                signal.arrive(["q"])
            await asyncio.sleep(0.01)
            assert len(big._covered) == 3 and len(next_one._covered) == 1
            assert all(t.done() for t in tasks)
            big.claiming()
            assert not big.claimed(2)  # took 2 of 3: one arrival is passed on, to the claim not yet claiming
            assert len(next_one._covered) == 2

    run(scenario())


def test_a_job_that_may_run_only_later_wakes_a_claim_then() -> None:
    async def scenario() -> None:
        signal = ArrivalSignal()
        with signal.waiter(["q"]) as waiter:
            waiter.claiming()
            waiter.claimed(0)
            started = time.monotonic()
            signal.arrive(["q"], delay=0.2)
            assert await waiter.wait(5)
            assert 0.2 <= time.monotonic() - started < 3.0  # at the delay, not the 5 s timeout

    run(scenario())


def test_the_watcher_relays_pending_jobs_with_their_labels() -> None:
    async def scenario() -> None:
        queue = Queue("memory://", retry=RetryPolicy(initial=0.2, jitter=0))
        signal = ArrivalSignal()
        watcher = QueueWatcher(queue, signal, asyncio.get_running_loop())
        watcher.start()
        try:
            with signal.waiter(["queue:a"]) as a, signal.waiter(["queue:b"]) as b:
                for w in (a, b):
                    w.claiming()
                    w.claimed(0)
                waits = [asyncio.create_task(w.wait(5)) for w in (a, b)]
                await asyncio.sleep(0)
                job = await asyncio.to_thread(queue.enqueue_job, {}, None, queue="b", idempotency_key="k")
                assert await waits[1]
                assert not waits[0].done()
                await asyncio.to_thread(queue.complete, job.id)
                b.claiming()
                b.claimed(0)
                again = asyncio.create_task(b.wait(5))
                await asyncio.to_thread(queue.enqueue_job, {}, None, queue="b", idempotency_key="k")  # completed
                await asyncio.to_thread(queue.enqueue, {}, None, queue="a", delay=timedelta(seconds=0.2))
                await asyncio.sleep(0.05)
                assert not waits[0].done() and not again.done()
                assert await waits[0]  # at the job's run_at
                again.cancel()
        finally:
            watcher.stop()
            queue.close()

    run(scenario())


def test_the_watcher_skips_the_loop_when_nobody_waits_but_not_for_a_job_due_later() -> None:
    async def scenario() -> None:
        queue = Queue("memory://")
        signal = ArrivalSignal()
        loop = asyncio.get_running_loop()
        relayed: list[Any] = []
        original = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any) -> Any:
            if callback == signal.arrive:  # not asyncio.to_thread's own hand-backs
                relayed.append(args)
            return original(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        watcher = QueueWatcher(queue, signal, loop)
        watcher.start()
        try:
            await asyncio.to_thread(queue.enqueue, {}, None, queue="a")
            assert relayed == []  # nobody waiting: nothing to wake
            await asyncio.to_thread(queue.enqueue, {}, None, queue="a", delay=timedelta(seconds=0.3))
            assert len(relayed) == 1  # due later: a claim that parks before then must be woken at its run_at
            with signal.waiter(["queue:a"]) as waiter:
                waiter.claiming()
                waiter.claimed(1)  # took the first job; the second is not due yet
                assert await waiter.wait(5)
                await asyncio.to_thread(queue.enqueue, {}, None, queue="a")
                assert len(relayed) == 2  # someone is in line now
        finally:
            del loop.call_soon_threadsafe
            watcher.stop()
            queue.close()

    run(scenario())


def test_arrival_listeners_without_the_job_are_still_called() -> None:
    queue = Queue("memory://")
    calls: list[Any] = []

    def plain() -> None:
        calls.append("plain")

    def with_job(job: Any) -> None:
        calls.append(job.id)

    queue.add_arrival_listener(plain)
    queue.add_arrival_listener(with_job, with_job=True)
    job_id = queue.enqueue({})
    assert calls == ["plain", job_id]
    queue.remove_arrival_listener(plain)
    queue.remove_arrival_listener(with_job)
    queue.enqueue({})
    assert calls == ["plain", job_id]
    with pytest.raises(ValueError):
        queue.remove_arrival_listener(plain)


@pytest.mark.parametrize("seed", range(24))
def test_no_job_is_left_while_a_claim_waits_in_random_interleavings(seed: int) -> None:
    """A model of the server: long-poll claims (one each, of 1 or 1-3 jobs) come and go while jobs arrive; each
    claim reads and takes jobs at a random moment of a random-length claim; arrivals are announced a little after
    the job is stored; depending on the seed, claims go away when woken (their client left) and a claimer that
    never waits (an in-process worker) takes jobs too. Nobody polls, so whenever things come to rest, no job may
    be pending while a claim for it is parked: that would be an arrival lost."""
    rng = random.Random(seed)
    counts, outsider_on, leave = (1, 1 + 2 * (seed % 2)), seed // 2 % 2 == 1, seed // 4 % 3 * 0.1

    async def scenario() -> None:
        signal = ArrivalSignal()
        pending: dict[str, list[int]] = {"a": [], "b": []}
        taken: list[int] = []
        producing = [outsider_on]

        async def pause() -> None:
            await asyncio.sleep(rng.choice([0, 0, 0.0005, 0.001, 0.002]))

        async def take(label: str, count: int) -> list[int]:
            await pause()  # the claim reads the store somewhere in here
            got, pending[label][:count] = pending[label][:count], []
            await pause()
            return got

        async def long_poll(label: str) -> None:
            with signal.waiter([label], rng.randint(*counts)) as waiter:
                while True:
                    waiter.claiming()
                    jobs = await take(label, waiter.count)
                    again = waiter.claimed(len(jobs))
                    if jobs:
                        taken.extend(jobs)
                        return
                    if again:
                        continue
                    await waiter.wait(60)
                    if rng.random() < leave:
                        return  # the client went away

        async def outsider() -> None:
            while producing[0]:
                taken.extend(await take(rng.choice("ab"), 1))
                await asyncio.sleep(rng.choice([0.001, 0.003, 0.01]))

        async def at_rest() -> None:
            await asyncio.sleep(0.01)  # every claim under way has finished: each is parked or gone
            for label in "ab":
                parked = len(signal._groups[label].parked) if label in signal._groups else 0
                assert not (parked and pending[label]), f"{parked} claims parked, {pending[label]} pending ({label})"

        tasks = [asyncio.create_task(long_poll(rng.choice("ab"))) for _ in range(rng.randint(0, 4))]
        inside = asyncio.create_task(outsider())
        for n in range(150):
            label = rng.choice("ab")
            claims = rng.choice([0, 0, 1, 1, 2])  # about one claim per job, for the job's queue, before or after it
            before = rng.randint(0, claims)
            for _ in range(before):
                tasks.append(asyncio.create_task(long_poll(label)))
            if rng.random() < 0.5:
                await pause()
            pending[label].append(n)
            if rng.random() < 0.5:
                await pause()
                signal.arrive([label])
            else:
                asyncio.get_running_loop().call_later(rng.choice([0, 0.0005, 0.001]), signal.arrive, [label])
            for _ in range(claims - before):
                tasks.append(asyncio.create_task(long_poll(label)))
            if rng.random() < 0.3:
                await pause()
            if rng.random() < 0.25:
                await at_rest()
        producing[0] = False
        await inside
        await at_rest()
        assert sorted(taken + pending["a"] + pending["b"]) == list(range(150))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    run(scenario())
