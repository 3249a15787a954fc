"""The HTTP server under load: ``/create-job`` requests/s and the enqueue → long-poll-claim latency of
``octoqueue serve``, next to the same figures for a plain FastAPI app that does nothing (the ceiling).

    .venv/bin/python -m bench --suite server        # 10 s of load per target, 200 latency samples, 3 rounds
    .venv/bin/python -m bench.server --server-seconds 5 --repeat 5 --json server.json

Process model: three processes. Each round starts ``octoqueue serve`` (a fresh SQLite file, rate limit off, log
level warning) and, separately, ``uvicorn bench.ceiling_app:app`` with the same uvicorn settings (one process,
the same event loop and HTTP implementation); the load generator is this process: an asyncio client speaking
HTTP/1.1 over keep-alive connections, a few dozen lines and ~50x cheaper per request than httpx, so that on a
small machine the client is not what is measured (``--server-client wrk`` uses ``wrk`` instead, when installed).

Each server's CPU time over the measured window is read from ``/proc`` and reported as CPU microseconds per
answered request: on a machine shared with other work, requests/s follow the CPU share the server gets, while
the CPU a request costs hardly moves. A server near 100 % of a core is the bottleneck; one well below it is
waiting (for the CPU, a lock, the disk, the client).

Per target and round:

1. **claim latency**: ``claimers`` connections long-poll ``POST .../jobs/claim`` (``count`` 1, ``block_ms``
   10000) while one producer submits jobs one at a time (``POST .../jobs``), waiting for each to be claimed, then
   ``interval`` seconds, before the next. A sample is the time from the submit's response arriving at the
   producer to the claim response carrying that job arriving at a claimer (both clocks in this process; it can
   be negative when the claim beats the producer's acknowledgement); the time from the submit's *request* is
   reported too. Every submitted job must be claimed exactly once (for octoqueue the server's own counts are
   checked too). The ceiling serves the same shape from a list in memory.
2. **throughput**: ``connections`` connections post a ``/create-job`` body back to back for ``warmup`` then
   ``seconds`` seconds; responses completed in the measured window count. The ceiling's endpoint is an
   ``async def`` returning a constant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TARGETS = ("octoqueue", "ceiling")
QUEUE = "bench"
CREATE_JOB_BODY = json.dumps({"data": {"task": "noop", "n": 1}}).encode()
#: Variables ``octoqueue serve`` reads (see octoqueue/api/settings.py) that could change what is measured.
_SERVER_ENV_PREFIXES = ("OCTOQUEUE_", "API_KEY", "RATE_LIMIT_", "GITHUB_")
_SERVER_ENV_NAMES = ("PORT", "HOST", "LOG_LEVEL", "ALLOWED_ORIGINS", "ALLOWED_ORIGIN")


# -- a minimal HTTP/1.1 keep-alive client ----------------------------------------------------------------------
class HTTPError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it are sequential. Reopens itself after an error."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def encode(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return (head + "\r\n").encode() + body

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send an encoded request; return (status, body)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(raw)
            head = await self._reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length: int | None = None
            chunked = close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            if chunked:
                body = await self._read_chunked()
            elif length is not None:
                body = await self._reader.readexactly(length)
            else:
                body = await self._reader.read()
                close = True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
            await self.close()
            raise HTTPError(f"{type(exc).__name__}: {exc}") from None
        except BaseException:
            await self.close()  # cancelled mid-request: the connection is in an unknown state
            raise
        if close:
            await self.close()
        return status, body

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        return await self.send(self.encode(method, path, body))

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


# -- the servers -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    target: str
    port: int
    process: subprocess.Popen[bytes]
    command: list[str]
    log_path: Path
    #: Path prefix of the Starq-shaped queue API and the throughput endpoint.
    api: str
    endpoint: str

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server process has used so far (Linux), or None."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""


def server_command(target: str, port: int, workdir: Path) -> list[str]:
    common = ["--host", HOST, "--port", str(port), "--log-level", "warning"]
    if target == "octoqueue":
        store = f"sqlite:///{workdir / 'bench.db'}"  # an absolute path: sqlite:////tmp/...
        return [sys.executable, "-m", "octoqueue.cli", "serve", "--store", store, *common, "--rate-limit-requests", "0"]
    if target == "ceiling":
        return [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--app-dir", str(ROOT), *common]
    raise ValueError(f"unknown target {target!r}")


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SERVER_ENV_PREFIXES) and k not in _SERVER_ENV_NAMES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@contextlib.contextmanager
def running(target: str, workdir: Path, ready_timeout: float = 30.0) -> Iterator[Server]:
    """Start ``target`` as its own process (working directory ``workdir``, so no ``.env`` is picked up), wait
    until it answers ``/ready``, and stop it afterwards."""
    port = free_port()
    command = server_command(target, port, workdir)
    log_path = workdir / f"{target}-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=_server_env(), stdout=log, stderr=subprocess.STDOUT)
    api, endpoint = ("/api/v1", "/create-job") if target == "octoqueue" else ("", "/noop")
    server = Server(target, port, process, command, log_path, api, endpoint)
    try:
        _wait_ready(server, ready_timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.target} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with socket.create_connection((HOST, server.port), timeout=1) as sock:
                sock.sendall(f"GET /ready HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.target} did not become ready in {timeout:g} s:\n{server.log_tail()}")
        time.sleep(0.05)


# -- measurements ----------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Throughput:
    endpoint: str
    connections: int
    seconds: float
    requests: int  # answered with the expected status inside the measured window
    errors: int  # other statuses and connection errors, whole run
    statuses: dict[str, int]
    p50_ms: float
    p99_ms: float
    server_cpu: float | None  # fraction of one core over the measured window
    client_cpu: float  # the load generator's, same window
    tool: str = "python"

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_request(self) -> float | None:
        """Server CPU time per answered request: what a request costs, whatever else the machine is doing."""
        if self.server_cpu is None or not self.requests:
            return None
        return self.server_cpu * self.seconds / self.requests * 1e6


async def measure_throughput(
    server: Server, connections: int, seconds: float, warmup: float, body: bytes = CREATE_JOB_BODY
) -> Throughput:
    expected = 201 if server.target == "octoqueue" else 200
    finished: list[tuple[float, float]] = []  # (sent, answered) of every answer with the expected status
    errors = 0
    statuses: Counter[str] = Counter()
    stopping = False

    async def client() -> None:
        nonlocal errors
        conn = Connection(HOST, server.port)
        raw = conn.encode("POST", server.endpoint, body)
        try:
            while not stopping:
                started = time.perf_counter()
                try:
                    status, _ = await conn.send(raw)
                except HTTPError as exc:
                    errors += 1
                    statuses[exc.args[0].split(":")[0]] += 1
                    await asyncio.sleep(0.01)
                    continue
                statuses[str(status)] += 1
                if status == expected:
                    finished.append((started, time.perf_counter()))
                else:
                    errors += 1
        finally:
            await conn.close()

    tasks = [asyncio.create_task(client()) for _ in range(connections)]
    await asyncio.sleep(warmup)
    cpu0, client0, start = server.cpu_seconds(), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, client1, end = server.cpu_seconds(), time.process_time(), time.perf_counter()
    stopping = True
    await asyncio.wait(tasks, timeout=30)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Throughput: answers that arrived inside the window (however long before it they were sent).
    latencies = [done - sent for sent, done in finished if start <= done <= end]
    counted = len(latencies)
    elapsed = end - start
    return Throughput(
        endpoint=server.endpoint,
        connections=connections,
        seconds=elapsed,
        requests=counted,
        errors=errors,
        statuses=dict(statuses),
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        server_cpu=(cpu1 - cpu0) / elapsed if cpu0 is not None and cpu1 is not None else None,
        client_cpu=(client1 - client0) / elapsed,
    )


def measure_throughput_wrk(server: Server, connections: int, seconds: float, warmup: float) -> Throughput:
    """The same measurement with ``wrk`` (one thread), when it is installed and ``--server-client wrk``."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    script = server.log_path.with_suffix(".lua")
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(CREATE_JOB_BODY.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    url = f"http://{HOST}:{server.port}{server.endpoint}"
    base = [wrk, "-t1", f"-c{connections}", "-s", str(script), "--latency"]
    if warmup > 0:
        subprocess.run([*base, f"-d{max(1, round(warmup))}s", url], capture_output=True, check=True)
    cpu0 = server.cpu_seconds()
    started = time.perf_counter()
    out = subprocess.run([*base, f"-d{max(1, round(seconds))}s", url], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    cpu1 = server.cpu_seconds()
    return _parse_wrk(out.stdout, server, connections, elapsed, cpu0, cpu1)


def _parse_wrk(
    text: str, server: Server, connections: int, elapsed: float, cpu0: float | None, cpu1: float | None
) -> Throughput:
    def ms(token: str) -> float:
        for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
            if token.endswith(unit):
                return float(token[: -len(unit)]) * factor
        return float(token)

    requests = errors = 0
    seconds = elapsed
    p50 = p99 = float("nan")
    for line in text.splitlines():
        words = line.split()
        if "requests in" in line:
            requests = int(words[0])
            seconds = ms(words[3].rstrip(",")) / 1000
        elif words[:1] == ["50%"]:
            p50 = ms(words[1])
        elif words[:1] == ["99%"]:
            p99 = ms(words[1])
        elif line.strip().startswith(("Non-2xx", "Socket errors")):
            errors += sum(int(w.rstrip(",")) for w in words if w.rstrip(",").isdigit())
    return Throughput(
        endpoint=server.endpoint,
        connections=connections,
        seconds=seconds,
        requests=requests - errors,
        errors=errors,
        statuses={},
        p50_ms=p50,
        p99_ms=p99,
        server_cpu=(cpu1 - cpu0) / elapsed if cpu0 is not None and cpu1 is not None else None,
        client_cpu=float("nan"),
        tool="wrk",
    )


@dataclass
class Latency:
    claimers: int
    block_ms: int
    samples: int
    submitted: int  # warm-up jobs included
    claimed: int  # claim answers carrying a job
    duplicates: int  # jobs claimed more than once
    missing: int  # submitted jobs never claimed
    unexpected: int  # claimed jobs nobody submitted
    server_ok: bool  # the server's own counts agree (octoqueue); True for the ceiling
    server_detail: str
    from_ack_ms: list[float] = field(repr=False)  # submit response -> claim response
    from_send_ms: list[float] = field(repr=False)  # submit request sent -> claim response
    submit_ms: list[float] = field(repr=False)  # the submit request's own round trip

    @property
    def exactly_once(self) -> bool:
        return (
            self.duplicates == 0
            and self.missing == 0
            and self.unexpected == 0
            and self.claimed == self.submitted
            and self.server_ok
        )

    def stats(self) -> dict[str, float]:
        return {
            "p50_ms": percentile(self.from_ack_ms, 50),
            "p99_ms": percentile(self.from_ack_ms, 99),
            "max_ms": max(self.from_ack_ms, default=float("nan")),
            "from_send_p50_ms": percentile(self.from_send_ms, 50),
            "from_send_p99_ms": percentile(self.from_send_ms, 99),
            "submit_p50_ms": percentile(self.submit_ms, 50),
        }


async def measure_claim_latency(
    server: Server,
    samples: int,
    claimers: int,
    block_ms: int = 10_000,
    interval: float = 0.02,
    warmup: int = 5,
    claim_timeout: float = 15.0,
) -> Latency:
    api = server.api
    producer = Connection(HOST, server.port)
    if server.target == "octoqueue":
        status, body = await producer.request("POST", f"{api}/queues", json.dumps({"name": QUEUE}).encode())
        if status not in (201, 409):
            raise RuntimeError(f"creating the queue: {status} {body[:200]!r}")
    before = await _queue_counts(producer, server)
    arrivals: dict[int, list[float]] = {}
    waiting: dict[int, asyncio.Future[float]] = {}
    claim_errors: Counter[str] = Counter()
    claim_body = json.dumps({"count": 1, "block_ms": block_ms}).encode()

    async def claimer() -> None:
        conn = Connection(HOST, server.port)
        raw = conn.encode("POST", f"{api}/queues/{QUEUE}/jobs/claim", claim_body)
        try:
            while True:
                try:
                    status, body = await conn.send(raw)
                except HTTPError as exc:
                    claim_errors[exc.args[0]] += 1
                    await asyncio.sleep(0.05)
                    continue
                now = time.perf_counter()
                if status != 200:
                    claim_errors[str(status)] += 1
                    await asyncio.sleep(0.05)
                    continue
                for job in json.loads(body)["jobs"]:
                    job_id = int(job["job_id"])
                    arrivals.setdefault(job_id, []).append(now)
                    future = waiting.pop(job_id, None)
                    if future is not None and not future.done():
                        future.set_result(now)
        finally:
            await conn.close()

    tasks = [asyncio.create_task(claimer()) for _ in range(claimers)]
    from_ack: list[float] = []
    from_send: list[float] = []
    submit: list[float] = []
    submitted: list[int] = []
    try:
        await asyncio.sleep(0.3)  # let every claimer park
        for i in range(warmup + samples):
            sent = time.perf_counter()
            status, body = await producer.request("POST", f"{api}/queues/{QUEUE}/jobs", b'{"payload":{"i":%d}}' % i)
            acked = time.perf_counter()
            if status not in (200, 201):
                raise RuntimeError(f"submitting a job: {status} {body[:200]!r}")
            job_id = int(json.loads(body)["jobs"][0]["job_id"])
            submitted.append(job_id)
            if job_id in arrivals:
                claimed_at = arrivals[job_id][0]
            else:
                future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                waiting[job_id] = future
                try:
                    claimed_at = await asyncio.wait_for(future, claim_timeout)
                except TimeoutError:
                    raise RuntimeError(
                        f"job {job_id} was not claimed within {claim_timeout:g} s (claim errors: {dict(claim_errors)})"
                    ) from None
            if i >= warmup:
                from_ack.append((claimed_at - acked) * 1000)
                from_send.append((claimed_at - sent) * 1000)
                submit.append((acked - sent) * 1000)
            await asyncio.sleep(interval)  # the claimer that answered parks again
        await asyncio.sleep(0.2)  # a second claim of the last job would arrive by now
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    server_ok, detail = True, "in-memory ceiling"
    if server.target == "octoqueue":
        after = await _queue_counts(producer, server)
        grown = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        server_ok = grown == {k: len(submitted) if k == "processing" else 0 for k in grown}
        detail = "server counts grew by " + ", ".join(f"{k} {v}" for k, v in grown.items())
    await producer.close()
    per_job = Counter({job_id: len(times) for job_id, times in arrivals.items()})
    wanted = set(submitted)
    if claim_errors:
        detail += f"; claim errors {dict(claim_errors)}"
    return Latency(
        claimers=claimers,
        block_ms=block_ms,
        samples=len(from_ack),
        submitted=len(submitted),
        claimed=sum(per_job.values()),
        duplicates=sum(1 for c in per_job.values() if c > 1),
        missing=len(wanted - set(per_job)),
        unexpected=len(set(per_job) - wanted),
        server_ok=server_ok,
        server_detail=detail,
        from_ack_ms=from_ack,
        from_send_ms=from_send,
        submit_ms=submit,
    )


async def _queue_counts(conn: Connection, server: Server) -> dict[str, int]:
    """The octoqueue queue's jobs by state, as its server counts them ({} for the ceiling)."""
    if server.target != "octoqueue":
        return {}
    status, body = await conn.request("GET", f"{server.api}/queues/{QUEUE}?full=true")
    if status != 200:
        raise RuntimeError(f"reading the queue's counts: {status} {body[:200]!r}")
    counts = json.loads(body)
    return {k: int(counts[k]) for k in ("pending", "processing", "completed", "failed", "cancelled")}


# -- rounds, summary, table ------------------------------------------------------------------------------------
@dataclass
class Options:
    seconds: float = 10.0
    warmup: float = 2.0
    connections: int = 32
    samples: int = 200
    claimers: int = 4
    block_ms: int = 10_000
    interval: float = 0.02
    repeat: int = 3
    targets: tuple[str, ...] = TARGETS
    client: str = "python"  # or "wrk"
    base_dir: str | None = None


@dataclass
class Round:
    target: str
    round: int
    throughput: Throughput
    latency: Latency
    command: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "round": self.round,
            "command": self.command,
            "throughput": {
                **asdict(self.throughput),
                "rate": self.throughput.rate,
                "cpu_us_per_request": self.throughput.cpu_us_per_request,
            },
            "latency": {
                **{k: v for k, v in asdict(self.latency).items() if not k.endswith("_ms")},
                **self.latency.stats(),
                "exactly_once": self.latency.exactly_once,
            },
        }


def run_round(target: str, round_no: int, options: Options, workdir: Path) -> Round:
    with running(target, workdir) as server:
        latency = asyncio.run(
            measure_claim_latency(server, options.samples, options.claimers, options.block_ms, options.interval)
        )
        if options.client == "wrk":
            throughput = measure_throughput_wrk(server, options.connections, options.seconds, options.warmup)
        else:
            throughput = asyncio.run(measure_throughput(server, options.connections, options.seconds, options.warmup))
        return Round(target, round_no, throughput, latency, server.command)


def run(options: Options, log: Any = None) -> dict[str, list[Round]]:
    """``repeat`` rounds, each starting every target afresh, the order alternating between rounds."""
    results: dict[str, list[Round]] = {t: [] for t in options.targets}
    with tempfile.TemporaryDirectory(prefix="octoqueue-bench-server-", dir=options.base_dir) as folder:
        for round_no in range(options.repeat):
            order = list(options.targets)
            if round_no % 2:
                order.reverse()
            for target in order:
                workdir = Path(folder) / f"{target}-{round_no + 1}"
                workdir.mkdir()
                result = run_round(target, round_no + 1, options, workdir)
                results[target].append(result)
                if log is not None:
                    t, st = result.throughput, result.latency.stats()
                    flag = "ok" if result.latency.exactly_once else f"NOT EXACTLY ONCE ({result.latency.server_detail})"
                    print(
                        f"  round {round_no + 1}/{options.repeat} {target:<10} {t.endpoint:<12} {t.rate:>7,.0f} req/s "
                        f"({_num(t.cpu_us_per_request, ',.0f')} us CPU/req, server CPU {_num(t.server_cpu, '.0%')}, "
                        f"client CPU {t.client_cpu:.0%}, {t.errors} errors)  claim p50 {st['p50_ms']:.2f} ms "
                        f"p99 {st['p99_ms']:.2f} ms  {flag}  [load {os.getloadavg()[0]:.1f}]",
                        file=log,
                        flush=True,
                    )
    return results


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None and v == v]
    return statistics.median(present) if present else None


def summarize(results: dict[str, list[Round]]) -> dict[str, dict[str, Any]]:
    """Medians over rounds per target (each round's figure listed too), and each target's ratio to the ceiling."""
    summary: dict[str, dict[str, Any]] = {}
    for target, rounds in results.items():
        if not rounds:
            continue
        stats = [r.latency.stats() for r in rounds]
        rates = [r.throughput.rate for r in rounds]
        p50s = [s["p50_ms"] for s in stats]
        p99s = [s["p99_ms"] for s in stats]
        summary[target] = {
            "endpoint": rounds[0].throughput.endpoint,
            "rounds": len(rounds),
            "requests_per_s": _median(rates),
            "requests_per_s_rounds": rates,
            "cpu_us_per_request": _median([r.throughput.cpu_us_per_request for r in rounds]),
            "request_p50_ms": _median([r.throughput.p50_ms for r in rounds]),
            "request_p99_ms": _median([r.throughput.p99_ms for r in rounds]),
            "server_cpu": _median([r.throughput.server_cpu for r in rounds]),
            "client_cpu": _median([r.throughput.client_cpu for r in rounds]),
            "errors": sum(r.throughput.errors for r in rounds),
            "claim_p50_ms": _median(p50s),
            "claim_p99_ms": _median(p99s),
            "claim_p50_ms_rounds": p50s,
            "claim_p99_ms_rounds": p99s,
            "claim_from_send_p50_ms": _median([s["from_send_p50_ms"] for s in stats]),
            "claim_from_send_p99_ms": _median([s["from_send_p99_ms"] for s in stats]),
            "submit_p50_ms": _median([s["submit_p50_ms"] for s in stats]),
            "samples": sum(r.latency.samples for r in rounds),
            "exactly_once": all(r.latency.exactly_once for r in rounds),
            "command": rounds[0].command,
            "tool": rounds[0].throughput.tool,
        }
    ceiling = summary.get("ceiling")
    for entry in summary.values():
        for key in ("requests_per_s", "cpu_us_per_request", "claim_p50_ms", "claim_p99_ms", "claim_from_send_p50_ms"):
            base = ceiling.get(key) if ceiling else None
            entry[f"{key}_vs_ceiling"] = entry[key] / base if base and entry[key] is not None else None
    return summary


def _num(value: float | None, spec: str, suffix: str = "") -> str:
    return format(value, spec) + suffix if value is not None else "-"


def table(summary: dict[str, dict[str, Any]]) -> str:
    """Two tables: requests/s under load, and the enqueue -> claim latency."""
    head = (
        f"{'target':<10} {'endpoint':<12} {'requests/s':>10} {'x ceiling':>9} {'CPU us/req':>10} {'srv CPU':>7} "
        f"{'req p50 ms':>10} {'req p99 ms':>10} {'errors':>6}"
    )
    lines = [head, "-" * len(head)]
    for target, s in summary.items():
        cells = [
            f"{target:<10}",
            f"{s['endpoint']:<12}",
            f"{_num(s['requests_per_s'], ',.0f'):>10}",
            f"{_num(s['requests_per_s_vs_ceiling'], '.2f', 'x'):>9}",
            f"{_num(s['cpu_us_per_request'], ',.0f'):>10}",
            f"{_num(s['server_cpu'], '.0%'):>7}",
            f"{_num(s['request_p50_ms'], '.1f'):>10}",
            f"{_num(s['request_p99_ms'], '.1f'):>10}",
            f"{s['errors']:>6}",
        ]
        lines.append(" ".join(cells))
    head = (
        f"{'target':<10} {'claim p50 ms':>12} {'claim p99 ms':>12} {'from send p50':>13} {'p99':>7} {'x ceiling':>9} "
        f"{'submit p50':>10} {'samples':>7}  exactly once"
    )
    lines += ["", head, "-" * len(head)]
    for target, s in summary.items():
        cells = [
            f"{target:<10}",
            f"{_num(s['claim_p50_ms'], '.2f'):>12}",
            f"{_num(s['claim_p99_ms'], '.2f'):>12}",
            f"{_num(s['claim_from_send_p50_ms'], '.2f'):>13}",
            f"{_num(s['claim_from_send_p99_ms'], '.2f'):>7}",
            f"{_num(s['claim_from_send_p50_ms_vs_ceiling'], '.1f', 'x'):>9}",
            f"{_num(s['submit_p50_ms'], '.2f'):>10}",
            f"{s['samples']:>7} ",
            "yes" if s["exactly_once"] else "NO",
        ]
        lines.append(" ".join(cells))
    lines.append(
        "claim = submit's response -> the claim response carrying the job; from send = submit's request -> the same "
        "claim response; submit = the submit's round trip; CPU us/req = server CPU time per answered request"
    )
    return "\n".join(lines)


def describe(options: Options) -> str:
    client = "wrk, 1 thread" if options.client == "wrk" else "python asyncio HTTP/1.1 client"
    return (
        f"server suite: {options.connections} connections x {options.seconds:g} s (+{options.warmup:g} s warm-up) "
        f"of POSTs ({client}); claim latency over {options.samples} jobs, {options.claimers} claimers long-polling "
        f"(block_ms {options.block_ms}); {options.repeat} round(s), medians; {os.cpu_count()} CPUs, "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("octoqueue", "fastapi", "starlette", "uvicorn", "uvloop", "httptools"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": os.getloadavg(),
        "versions": versions,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def report(options: Options, quiet: bool = False) -> tuple[dict[str, Any], bool]:
    """Run the suite, print its table; return the JSON-ready payload and whether every job was claimed once."""
    print(describe(options), flush=True)
    results = run(options, log=None if quiet else sys.stdout)
    summary = summarize(results)
    print()
    print(table(summary))
    octo, ceiling = summary.get("octoqueue"), summary.get("ceiling")
    if octo and ceiling and octo["requests_per_s_vs_ceiling"]:
        print(
            f"\noctoqueue vs the no-op ceiling (medians): /create-job {octo['requests_per_s_vs_ceiling']:.2f}x the "
            f"requests/s at {_num(octo['cpu_us_per_request_vs_ceiling'], '.1f', 'x')} the server CPU per request; "
            f"enqueue -> claim p50 {octo['claim_p50_ms']:.2f} ms vs {ceiling['claim_p50_ms']:.2f} ms, "
            f"p99 {octo['claim_p99_ms']:.2f} ms vs {ceiling['claim_p99_ms']:.2f} ms (from the submit's request: "
            f"p50 {octo['claim_from_send_p50_ms']:.2f} ms vs {ceiling['claim_from_send_p50_ms']:.2f} ms)"
        )
    ok = all(s["exactly_once"] for s in summary.values())
    payload = {
        "options": asdict(options),
        "environment": environment(),
        "summary": summary,
        "rounds": {t: [r.as_dict() for r in rounds] for t, rounds in results.items()},
    }
    return payload, ok


# -- command line ----------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server suite's options (shared by ``python -m bench`` and ``python -m bench.server``)."""
    d = Options()
    group = parser.add_argument_group("server suite")
    group.add_argument("--server-seconds", type=float, default=d.seconds, help="measured load per target (10)")
    group.add_argument("--server-warmup", type=float, default=d.warmup, help="load before measuring (2)")
    group.add_argument("--server-connections", type=int, default=d.connections, help="concurrent connections (32)")
    group.add_argument("--server-samples", type=int, default=d.samples, help="claim-latency samples (200)")
    group.add_argument("--server-claimers", type=int, default=d.claimers, help="long-polling claimers (4)")
    group.add_argument("--server-block-ms", type=int, default=d.block_ms, help="claims' block_ms (10000)")
    group.add_argument(
        "--server-targets", default=",".join(TARGETS), help=f"comma-separated (default {','.join(TARGETS)})"
    )
    group.add_argument(
        "--server-client",
        choices=("python", "wrk"),
        default="python",
        help="throughput load generator: this process's asyncio client (default), or wrk if installed",
    )


def options_from(args: argparse.Namespace) -> Options:
    targets = tuple(t.strip() for t in args.server_targets.split(",") if t.strip())
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise SystemExit(f"unknown server target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if args.server_seconds <= 0 or args.server_warmup < 0:
        raise SystemExit("--server-seconds must be positive and --server-warmup not negative")
    if min(args.server_connections, args.server_samples, args.server_claimers, args.server_block_ms) < 1:
        raise SystemExit("--server-connections, --server-samples, --server-claimers and --server-block-ms must be >= 1")
    if args.server_client == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("--server-client wrk: wrk is not installed")
    return Options(
        seconds=args.server_seconds,
        warmup=args.server_warmup,
        connections=args.server_connections,
        samples=args.server_samples,
        claimers=args.server_claimers,
        block_ms=args.server_block_ms,
        repeat=args.repeat,
        targets=targets,
        client=args.server_client,
        base_dir=getattr(args, "dir", None),
    )


def run_only(options: Options, json_path: str | None = None, quiet: bool = False) -> int:
    """The suite on its own (``python -m bench --suite server``): the table, and ``{"server": ...}`` as JSON."""
    payload, ok = report(options, quiet=quiet)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump({"server": payload}, fh, indent=2)
        print(f"wrote {json_path}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", "-r", type=int, default=3, help="rounds per target; medians reported (3)")
    parser.add_argument("--json", metavar="PATH", help="also write every round and the medians as JSON here")
    parser.add_argument("--dir", metavar="PATH", help="folder for the temporary databases (default: system temp)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-round lines, only the tables")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_only(options_from(args), args.json, args.quiet)


if __name__ == "__main__":
    sys.exit(main())
