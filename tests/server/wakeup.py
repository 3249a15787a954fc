"""Measuring the cross-server wake-up: a long-poll claim waits on server B, a job is submitted to server A, and the
claim's answer is timed — from one thread, without threads of the test's own in the way.

The client is a single thread holding one connection to each server: it sends the claim, waits until it has
parked, sends the submit, and reads both answers as they come (``select``), noting when each arrived. A client
thread per claim would time the answer only once that thread got the GIL back from the one reading the submit's
answer, which on a loaded machine adds milliseconds that are the test's, not the server's.

Three figures per round: from the job written (its ``created_at``, the store's clock on this same host; for
PostgreSQL ``now()`` is the start of the inserting transaction, so this also counts the insert and its commit) to
the claim's answer (the headline); from the submit's answer to the claim's answer (can be about 0: B's answer may
come before A's); from the submit's request to the claim's answer.
"""

from __future__ import annotations

import http.client
import json
import select
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

#: How long a claim is given to park before the job is submitted (its first, empty claim takes ~2 ms).
PARK = 0.05


@dataclass
class Wakeups:
    """Milliseconds per round, each list in round order."""

    from_written: list[float] = field(default_factory=list)
    from_answer: list[float] = field(default_factory=list)
    from_request: list[float] = field(default_factory=list)

    @staticmethod
    def percentiles(values: list[float]) -> tuple[float, float]:
        """(p50, p99); with fewer than 100 values the p99 is the largest but one."""
        ordered = sorted(values)
        return statistics.median(ordered), ordered[max(0, min(len(ordered) - 1, int(len(ordered) * 0.99)) - 1)]

    def summary(self) -> str:
        parts = []
        for name, values in (
            ("job written", self.from_written),
            ("submit answered", self.from_answer),
            ("submit sent", self.from_request),
        ):
            p50, p99 = self.percentiles(values)
            parts.append(f"from {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(values):.1f} ms")
        return f"{len(self.from_written)} rounds; " + "; ".join(parts)


def _connection(base: str) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    connection.connect()
    return connection


def _send(connection: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> None:
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})


def _answer(connection: http.client.HTTPConnection) -> Any:
    response = connection.getresponse()
    data = response.read()
    assert response.status in (200, 201), data
    return json.loads(data)


def measure_wakeups(submit_to: str, claim_on: str, queue: str, rounds: int) -> Wakeups:
    """``rounds`` wake-ups of a claim on ``claim_on`` by a job submitted to ``submit_to`` (queue ``queue`` exists)."""
    claims, submits = _connection(claim_on), _connection(submit_to)
    wakeups = Wakeups()
    try:
        for i in range(rounds):
            _send(claims, f"/api/v1/queues/{queue}/jobs/claim", {"count": 1, "block_ms": 10_000})
            early, _, _ = select.select([claims.sock], [], [], PARK)
            assert not early, "the claim answered before any job was submitted"
            sent = time.perf_counter()
            _send(submits, f"/api/v1/queues/{queue}/jobs", {"payload": {"i": i}})
            arrived: dict[object, tuple[float, float]] = {}
            while len(arrived) < 2:
                readable, _, _ = select.select([s for s in (claims.sock, submits.sock) if s not in arrived], [], [], 15)
                assert readable, "no answer within 15 s"
                for sock in readable:
                    arrived[sock] = (time.perf_counter(), time.time())
            (claimed_at, claimed_wall), (submitted_at, _) = arrived[claims.sock], arrived[submits.sock]
            jobs = _answer(claims)["jobs"]
            _answer(submits)
            assert [job["payload"] for job in jobs] == [{"i": i}]
            written = datetime.fromisoformat(jobs[0]["created_at"]).timestamp()
            wakeups.from_written.append((claimed_wall - written) * 1000)
            wakeups.from_answer.append((claimed_at - submitted_at) * 1000)
            wakeups.from_request.append((claimed_at - sent) * 1000)
    finally:
        claims.close()
        submits.close()
    return wakeups
