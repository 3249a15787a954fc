"""octoqueue's Redis store against RQ, Huey (RedisHuey) and Dramatiq (RedisBroker), doing the same work on the same
Redis (``--redis-url``, default the local 127.0.0.1:6379, db 0).

Each ``run_*`` function does one round in keys of its own (a fresh octoqueue prefix, a fresh queue or namespace for
the peers), deleted afterwards:

1. **enqueue**: ``jobs`` no-op jobs, one library call per job from one thread (``octoqueue-redis-batch``: the store's
   ``create_many``, 100 jobs a call);
2. **drain**: ``workers`` workers run them all, each handler recording its job's number; timed from starting the
   workers until every job ran — octoqueue's until ``Worker.run(once=True)`` returned, so its last acknowledgement
   is inside the time; the peers' until their last handler ran (they are stopped afterwards);
3. **check**: every number seen exactly once (RQ: every job finished, its return value the number), and octoqueue's
   store agrees that every job completed after one attempt.

Process model: octoqueue, Huey and Dramatiq run in this process with ``workers`` worker threads (each library's
default kind of worker); RQ runs ``workers`` worker processes, each its default ``Worker`` in burst mode, which forks
a work horse per job.

What a job survives: octoqueue leases each job and acknowledges it (a crashed worker's job runs again); Dramatiq's
Redis broker acknowledges too (messages wait in a per-worker list until acked); RQ moves a job between registries
and a dead work horse's job is failed; Huey pops a task off its list (a crashed worker loses it). All of them keep
what Redis keeps: the durability of the Redis itself, read back with ``CONFIG GET`` into the table.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.sqlite_peers import DRAIN_TIMEOUT, RunResult, Tally, _result

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
BATCH = 100


def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def durability(url: str) -> dict[str, Any]:
    """The Redis's persistence settings, as every system here runs on them."""
    client = _client(url)
    try:
        config = client.config_get("appendonly") | client.config_get("appendfsync") | client.config_get("save")
    finally:
        client.close()
    text = {k: v.decode() if isinstance(v, bytes) else v for k, v in config.items()}
    return {
        "journal_mode": f"aof={text.get('appendonly')}",
        "synchronous": text.get("appendfsync"),
        "save": text.get("save"),
    }


# -- octoqueue ----------------------------------------------------------------------------------------------------
def run_octoqueue_redis(
    jobs: int, workers: int, *, url: str = DEFAULT_REDIS_URL, batch: bool = False, **_: Any
) -> RunResult:
    from octoqueue.job import NewJob
    from octoqueue.queue import Queue
    from octoqueue.states import JobState
    from octoqueue.stores.redis import RedisStore
    from octoqueue.worker import Worker

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    store = RedisStore.from_url(f"{url}?prefix={prefix}")
    queue = Queue(store)
    tally = Tally(jobs)
    try:
        t0 = time.perf_counter()
        if batch:
            for start in range(0, jobs, BATCH):
                store.create_many(
                    [NewJob(data={"n": i}, title=f"job {i}") for i in range(start, min(jobs, start + BATCH))]
                )
        else:
            for i in range(jobs):
                queue.enqueue({"n": i})
        t1 = time.perf_counter()
        worker = Worker(queue, lambda data: tally.hit(data["n"]), concurrency=workers)
        prefetch = worker.prefetch  # the store's default (octoqueue.worker.default_prefetch)
        t2 = time.perf_counter()
        worker.run(once=True, install_signal_handlers=False)
        t3 = time.perf_counter()
        counts = {s.value: n for s, n in store.count().items() if n}
        attempts = sorted({job.attempt for job in store.iter_jobs(limit=1000)})
        ok = counts == ({JobState.COMPLETED.value: jobs} if jobs else {}) and attempts in ([1], [])
        detail = f"counts {counts}, attempts {attempts}"
    finally:
        queue.close()
        _drop(url, "{" + prefix + "}:*")
    name = "octoqueue-redis-batch" if batch else "octoqueue-redis"
    settings = {**durability(url), "prefetch": prefetch}
    return _result(name, "threads", jobs, workers, (t0, t1, t2, t3), tally, ok, detail, settings)


def run_octoqueue_redis_batch(jobs: int, workers: int, **options: Any) -> RunResult:
    return run_octoqueue_redis(jobs, workers, batch=True, **options)


def _drop(url: str, pattern: str) -> None:
    client = _client(url)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


# -- RQ -----------------------------------------------------------------------------------------------------------
def rq_noop(n: int) -> int:
    """RQ imports a job's function by name; the return value (kept by RQ) is what the check reads."""
    return n


def _rq_worker(url: str, queue_name: str, barrier: Any) -> None:
    from rq import Queue as RQQueue
    from rq import Worker as RQWorker

    connection = _client(url)
    worker = RQWorker([RQQueue(queue_name, connection=connection)], connection=connection)
    barrier.wait()
    worker.work(burst=True, logging_level="WARNING")


def run_rq(jobs: int, workers: int, *, url: str = DEFAULT_REDIS_URL, **_: Any) -> RunResult:
    from rq import Queue as RQQueue
    from rq.job import Job as RQJob

    connection = _client(url)
    queue = RQQueue(f"bench-{uuid.uuid4().hex[:8]}", connection=connection)
    tally = Tally(jobs)
    ids: list[str] = []
    try:
        t0 = time.perf_counter()
        for i in range(jobs):
            ids.append(queue.enqueue(rq_noop, i).id)
        t1 = time.perf_counter()
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(workers + 1)
        procs = [ctx.Process(target=_rq_worker, args=(url, queue.name, barrier)) for _ in range(workers)]
        for proc in procs:
            proc.start()
        barrier.wait(timeout=120)
        t2 = time.perf_counter()
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while queue.finished_job_registry.count < jobs and time.monotonic() < deadline:
            time.sleep(0.005)
        t3 = time.perf_counter()
        for proc in procs:
            proc.join(timeout=60)
        for job in RQJob.fetch_many(ids, connection=connection):
            if job is not None and job.get_status() == "finished":
                tally.hit(job.return_value())
        finished = queue.finished_job_registry.count
        ok, detail = finished == jobs, f"finished registry: {finished}"
    finally:
        for job_id in ids:
            RQJob(job_id, connection=connection).delete()
        queue.delete(delete_jobs=True)
        connection.close()
        _drop(url, f"*{queue.name}*")  # its registries
    return _result("rq", "processes", jobs, workers, (t0, t1, t2, t3), tally, ok, detail, durability(url))


# -- Huey ---------------------------------------------------------------------------------------------------------
def run_huey_redis(jobs: int, workers: int, *, url: str = DEFAULT_REDIS_URL, **_: Any) -> RunResult:
    from huey import RedisHuey

    huey = RedisHuey(name=f"bench-{uuid.uuid4().hex[:8]}", url=url)
    tally = Tally(jobs)

    @huey.task()
    def noop(n: int) -> None:
        tally.hit(n)

    try:
        t0 = time.perf_counter()
        for i in range(jobs):
            noop(i)
        t1 = time.perf_counter()
        consumer = huey.create_consumer(
            workers=workers, worker_type="thread", periodic=False, check_worker_health=False
        )
        t2 = time.perf_counter()
        consumer.scheduler.start()
        for _, thread in consumer.worker_threads:
            thread.start()
        tally.done.wait(DRAIN_TIMEOUT)
        t3 = time.perf_counter()
        consumer.stop(graceful=True)
        left = huey.pending_count()
        ok, detail = left == 0, f"tasks left in queue: {left}"
    finally:
        huey.flush()
    return _result("huey-redis", "threads", jobs, workers, (t0, t1, t2, t3), tally, ok, detail, durability(url))


# -- Dramatiq -----------------------------------------------------------------------------------------------------
def run_dramatiq_redis(jobs: int, workers: int, *, url: str = DEFAULT_REDIS_URL, **_: Any) -> RunResult:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

    middleware = [m() for m in (AgeLimit, TimeLimit, ShutdownNotifications, Callbacks, Pipelines, Retries)]
    broker = RedisBroker(url=url, namespace=f"bench-{uuid.uuid4().hex[:8]}", middleware=middleware)
    tally = Tally(jobs)

    def noop(n: int) -> None:
        tally.hit(n)

    namespace = broker.namespace
    actor = dramatiq.actor(noop, broker=broker, actor_name="noop", queue_name="bench", max_retries=0)
    try:
        t0 = time.perf_counter()
        for i in range(jobs):
            actor.send(i)
        t1 = time.perf_counter()
        worker = dramatiq.Worker(broker, worker_threads=workers, worker_timeout=100)
        t2 = time.perf_counter()
        worker.start()
        tally.done.wait(DRAIN_TIMEOUT)
        t3 = time.perf_counter()
        worker.stop()
        worker.join()
        ok, detail = True, "acks: the worker joined after the last message"
    finally:
        broker.flush_all()
        broker.close()
        _drop(url, f"{namespace}*")  # its heartbeats
    return _result("dramatiq-redis", "threads", jobs, workers, (t0, t1, t2, t3), tally, ok, detail, durability(url))


#: name -> runner(jobs, workers, url=...)
SYSTEMS: dict[str, Callable[..., RunResult]] = {
    "octoqueue-redis": run_octoqueue_redis,
    "octoqueue-redis-batch": run_octoqueue_redis_batch,
    "rq": run_rq,
    "huey-redis": run_huey_redis,
    "dramatiq-redis": run_dramatiq_redis,
}

#: The systems octoqueue's Redis store is compared against.
PEERS = ("rq", "huey-redis", "dramatiq-redis")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("redis", "rq", "huey", "dramatiq"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
