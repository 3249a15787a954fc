"""The ceiling for ``python -m bench --suite server``: a plain FastAPI app whose endpoints do (almost) nothing,
served by uvicorn with the same settings as ``octoqueue serve``.

    uvicorn bench.ceiling_app:app --host 127.0.0.1 --port 8099 --log-level warning

- ``POST /noop``: an ``async def`` that returns a constant; it neither reads nor validates the body. The most a
  FastAPI endpoint on this uvicorn can answer: the ceiling for ``/create-job``'s requests/s.
- ``POST /noop-sync``: the same as a plain ``def`` (FastAPI runs it in its threadpool, as it runs
  ``/create-job``): what the threadpool hop alone costs.
- ``POST /queues/{name}/jobs`` and ``POST /queues/{name}/jobs/claim``: the long-poll shape of the Starq API with
  an in-memory list instead of a store. A submit appends an id and wakes the waiting claims; a claim pops one id
  or waits up to ``block_ms`` for one. The ceiling for octoqueue's enqueue → claim latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from typing import Any

from fastapi import FastAPI, Request

app = FastAPI(title="octoqueue bench ceiling")

_ids = itertools.count(1)
_pending: deque[int] = deque()
_arrived = asyncio.Event()


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/noop")
async def noop() -> dict[str, bool]:
    return {"ok": True}


@app.post("/noop-sync")
def noop_sync() -> dict[str, bool]:
    return {"ok": True}


@app.post("/queues/{name}/jobs", status_code=201)
async def submit(name: str) -> dict[str, Any]:
    global _arrived
    job_id = next(_ids)
    _pending.append(job_id)
    # Wake every waiting claim, as octoqueue's ArrivalSignal does; the first to run takes the job.
    _arrived.set()
    _arrived = asyncio.Event()
    return {"jobs": [{"job_id": job_id}], "submitted": 1}


@app.post("/queues/{name}/jobs/claim")
async def claim(name: str, request: Request) -> dict[str, Any]:
    # The loop of octoqueue's claim: wait for an arrival (or 1 s), look again, give up when the client left.
    body = await request.json()
    deadline = time.monotonic() + int(body.get("block_ms", 0)) / 1000
    while not _pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {"jobs": []}
        ticket = _arrived
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), min(remaining, 1.0))
        if await request.is_disconnected():
            return {"jobs": []}
    return {"jobs": [{"job_id": _pending.popleft()}]}
