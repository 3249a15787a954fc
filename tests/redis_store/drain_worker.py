"""One worker process for the multi-process tests: ``python -m tests.redis_store.drain_worker STORE_URL RAN_KEY``.

Runs :class:`~octoqueue.worker.Worker` on the store; its handler pushes each job's number ``n`` onto the Redis list
``RAN_KEY`` (every run of a handler, so a job run twice shows twice) after sleeping ``--sleep`` seconds; each of its
threads takes ``--prefetch`` jobs at a time (the Worker's default on Redis unless told). With
``--once`` it stops when nothing is runnable; otherwise it works until SIGTERM.
"""

from __future__ import annotations

import argparse
import time
from urllib.parse import urlsplit, urlunsplit

import redis

from octoqueue.queue import Queue
from octoqueue.stores import open_store
from octoqueue.worker import DEFAULT_PREFETCH, Worker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("ran_key")
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=DEFAULT_PREFETCH)  # each thread holds a batch
    args = parser.parse_args()
    parts = urlsplit(args.store)
    tally = redis.Redis.from_url(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
    queue = Queue(open_store(args.store), lease=args.lease)

    def record(data: dict[str, int]) -> None:
        if args.sleep:
            time.sleep(args.sleep)
        while True:
            try:
                tally.rpush(args.ran_key, data["n"])
                return
            except redis.exceptions.ConnectionError:  # the Redis under test restarting: the run still counts
                time.sleep(0.1)

    worker = Worker(
        queue,
        record,
        concurrency=args.concurrency,
        prefetch=args.prefetch,
        lease=args.lease,
        recover_interval=0.5,
        poll_interval=0.2,
    )
    try:
        worker.run(once=args.once)
    finally:
        queue.close()


if __name__ == "__main__":
    main()
