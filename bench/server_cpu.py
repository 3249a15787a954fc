"""CPU per ``/create-job`` request in this process, by layer: the ASGI application called directly (no socket, no
HTTP parsing: what uvicorn costs is the same for every app), next to the no-op ceiling app called the same way.

    .venv/bin/python -m bench.server_cpu                     # 6000 requests, 32 at a time
    .venv/bin/python -m bench.server_cpu --profile 25        # and cProfile's 25 costliest functions (event loop)

Rows: the ceiling's ``POST /noop``; octoqueue's ``POST /create-job`` on a fresh SQLite file (rate limit off, no
keys, as ``--suite server`` runs it); the same with the store's part left out (each request gets the job the first
one created: routing, middleware, checks, the thread trip, the answer); the blocking part alone, called in a loop
(``jobs._create``: schema check and ``Queue.enqueue_job``). ``time.process_time`` counts every thread of the
process, so the thread that writes is counted too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench.server import CREATE_JOB_BODY

App = Callable[..., Any]


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(CREATE_JOB_BODY)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def _request(app: App, path: str) -> int:
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": CREATE_JOB_BODY, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path), receive, send)
    return status


async def _cpu_per_request(
    app: App, path: str, requests: int, concurrency: int, profile: cProfile.Profile | None = None
) -> float:
    """CPU µs per request, ``concurrency`` requests in flight, after a warm-up; every answer must be a success."""
    for _ in range(200):
        status = await _request(app, path)
        if status not in (200, 201):
            raise RuntimeError(f"POST {path} answered {status}")
    each = max(1, requests // concurrency)

    async def client() -> None:
        for _ in range(each):
            await _request(app, path)

    started = time.process_time()
    if profile is not None:
        profile.enable()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    if profile is not None:
        profile.disable()
    return (time.process_time() - started) / (each * concurrency) * 1e6


@contextlib.contextmanager
def _octoqueue(folder: str) -> Iterator[Any]:
    from octoqueue.api import Settings, create_app

    settings = Settings(_env_file=None, store=f"sqlite:///{folder}/bench.db", rate_limit_requests=0)  # type: ignore[call-arg]
    yield create_app(settings)


@contextlib.contextmanager
def _store_left_out() -> Iterator[None]:
    """``jobs._create`` answers every call with the job its first call created."""
    from octoqueue.api import jobs

    original = jobs._create
    first: list[Any] = []

    def created_once(*args: Any) -> Any:
        if not first:
            first.append(original(*args))
        return first[0]

    jobs._create = created_once  # type: ignore[assignment]
    try:
        yield
    finally:
        jobs._create = original  # type: ignore[assignment]


async def _measure(requests: int, concurrency: int, profile: cProfile.Profile | None) -> dict[str, float]:
    from bench.ceiling_app import app as ceiling
    from octoqueue.api import jobs

    rows: dict[str, float] = {}
    async with ceiling.router.lifespan_context(ceiling):
        rows["ceiling POST /noop"] = await _cpu_per_request(ceiling, "/noop", requests, concurrency)
    with tempfile.TemporaryDirectory() as folder, _octoqueue(folder) as app:
        async with app.router.lifespan_context(app):
            rows["octoqueue POST /create-job"] = await _cpu_per_request(
                app, "/create-job", requests, concurrency, profile
            )
            with _store_left_out():
                rows["  the same, the store's part left out"] = await _cpu_per_request(
                    app, "/create-job", requests, concurrency
                )
            runtime = app.state.runtime
            body = jobs.CreateJobRequest.model_validate(json.loads(CREATE_JOB_BODY))
            started = time.process_time()
            for _ in range(requests):
                jobs._create(runtime, body, None)
            rows["  the store's part alone (schema check, Queue.enqueue_job)"] = (
                (time.process_time() - started) / requests * 1e6
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", "-n", type=int, default=6000, help="requests measured per row (6000)")
    parser.add_argument("--concurrency", "-c", type=int, default=32, help="requests in flight (32)")
    parser.add_argument("--profile", type=int, metavar="N", default=0, help="print cProfile's N costliest functions")
    args = parser.parse_args(argv)
    os.environ.setdefault("OCTOQUEUE_LOG_LEVEL", "warning")
    profile = cProfile.Profile() if args.profile else None
    rows = asyncio.run(_measure(args.requests, args.concurrency, profile))
    width = max(len(name) for name in rows)
    print(f"CPU per request, in this process ({args.requests} requests, {args.concurrency} in flight):")
    for name, value in rows.items():
        print(f"  {name:<{width}}  {value:6.0f} µs")
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
