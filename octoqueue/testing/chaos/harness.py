"""One chaos run: a server process and worker processes on loopback, jobs sent through the server, random
workers SIGKILLed (and replaced), the server SIGKILLed and restarted, emulator faults on; then the verdict.

Producers send ``POST /create-job`` with an ``Idempotency-Key`` per job and retry every refusal the server or a
restart causes, so each job is created once however often its request is sent. Jobs allow many attempts: a job
whose worker was killed reruns when its lease expires.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from octoqueue.errors import OctoqueueError
from octoqueue.job import Job
from octoqueue.states import JobState
from octoqueue.stores import open_store
from octoqueue.stores.base import Store
from octoqueue.testing.chaos import ledger
from octoqueue.testing.chaos.faults import PRIMARY_PER_HOUR, SECONDARY_PER_HOUR, SECONDARY_PER_MINUTE, Fault
from octoqueue.testing.chaos.processes import LEDGER_ENV, STORE_OPTIONS_ENV

PRODUCER_KEY = "chaos-producer-key"
GITHUB_TOKEN = "chaos-github-token"
REPO = "chaos/jobs"
MAX_ATTEMPTS = 50
#: Lease per store. The GitHub store's holder finishes without a ref while ``lease_margin`` (its default, 10 s) of
#: its lease is left on GitHub's clock, so its lease must be well above that margin.
LEASES = {"sqlite": 3.0, "github": 30.0}


@dataclass
class Config:
    store: str = "sqlite"  # sqlite | github
    jobs: int = 10_000
    workers: int = 8
    concurrency: int = 4  # handler threads per worker process
    seconds: float = 300.0  # the run fails if the jobs are not all finished by then
    kills: int = 100  # worker SIGKILLs, spread over the completions (one each jobs/(kills+1) completed), each of
    # the worker last seen starting a job
    restarts: int = 10  # server SIGKILLs and restarts, spread over the creates likewise
    lease: float | None = None  # seconds; default LEASES[store]
    producers: int = 4
    faults: list[Fault] = field(default_factory=list)
    seed: int = 0
    keep: str | None = None  # keep the ledger, logs and SQLite file in this new folder
    log: Callable[[str], None] = print


@dataclass
class Report:
    config: Config
    verdict: ledger.Verdict
    seconds: float
    kills: int
    restarts: int
    episodes: dict[str, int]
    unfinished_at_deadline: bool

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.unfinished_at_deadline

    def as_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "store": self.config.store,
            "jobs": self.config.jobs,
            "workers": self.config.workers,
            "faults": [f.name for f in self.config.faults],
            "seconds": round(self.seconds, 1),
            "kills": self.kills,
            "restarts": self.restarts,
            "episodes": self.episodes,
            "runs": v.runs,
            "reruns": v.reruns,
            "retaken": v.retaken,
            "lost": len(v.lost),
            "completed_twice": len(v.completed_twice),
            "completed_by_no_worker": len(v.unaccounted),
            "created_twice": len(v.strays),
            "cut_by_kill": len(v.cut_by_kill),
            "ok": self.ok,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Processes:
    """The server and worker processes of one run."""

    def __init__(self, config: Config, store_url: str, env: dict[str, str], logs: Path) -> None:
        self.config = config
        self.store_url = store_url
        self.env = env
        self.logs = logs
        self.port = _free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _spawn(self, role: str, *extra: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "octoqueue.testing.chaos.processes", role, "--store", self.store_url]
        command += ["--lease", str(self.config.lease), *extra]
        with open(self.logs / f"{role}.log", "ab") as out:
            return subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_server(self) -> None:
        self.server = self._spawn("server", "--port", str(self.port))

    def kill_server(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait()

    def start_worker(self) -> None:
        self.workers.append(self._spawn("worker", "--concurrency", str(self.config.concurrency)))

    def kill_worker(self, rng: random.Random, working: int | None = None) -> None:
        """SIGKILL a worker: the one whose pid is ``working`` (the last to start a job: it has jobs in hand) while
        it lives, else one at random."""
        busy = [i for i, process in enumerate(self.workers) if process.pid == working]
        victim = self.workers.pop(busy[0] if busy else rng.randrange(len(self.workers)))
        victim.kill()
        victim.wait()

    def stop_all(self) -> None:
        everyone = [p for p in [self.server, *self.workers] if p is not None]
        for process in everyone:
            process.send_signal(signal.SIGTERM)
        for process in everyone:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _produce(url: str, numbers: list[int], ids: dict[int, int], stop: threading.Event) -> None:
    """Create each job through the server, retrying whatever a restart or a fault makes fail."""
    with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": PRODUCER_KEY}) as client:
        for n in numbers:
            body = {"data": {"n": n}, "title": f"chaos {n}", "max_attempts": MAX_ATTEMPTS}
            while not stop.is_set():
                try:
                    response = client.post("/create-job", json=body, headers={"Idempotency-Key": f"chaos-{n}"})
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                if response.status_code == 201:
                    ids[n] = response.json()["job_id"]
                    break
                if response.status_code in (429, 500, 502, 503, 504):
                    time.sleep(0.1)
                    continue
                raise RuntimeError(f"job {n}: the server refused it: {response.status_code} {response.text[:300]}")


class Confirmations:
    """The jobs whose completion the store accepted: a ``completed`` line, or — for a ``completing`` line whose
    worker was killed before it could write ``completed`` (or before the store answered) — the store's own word.

    A ``completing`` line alone is not enough to end the run: the kill may have come before the store took the
    completion, and then the job runs again once its lease expires (ending the run there reported it lost)."""

    def __init__(self, store_url: str, options: dict[str, Any], look_every: float = 1.0) -> None:
        self.store_url, self.options = store_url, options
        self.look_every = look_every
        self.ids: set[int] = set()
        self.store: Store | None = None  # opened for the first look
        self._next_look = 0.0

    def note(self, entries: list[ledger.Entry]) -> None:
        self.ids.update(e.job_id for e in entries if e.kind == "completed")

    def all(self, job_ids: Iterable[int]) -> bool:
        """Whether every one of ``job_ids`` is confirmed; asks the store (at most every ``look_every`` seconds)
        about the rest."""
        unsure = set(job_ids) - self.ids
        if unsure and time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + self.look_every
            if self.store is None:
                self.store = open_store(self.store_url, **self.options)
            for job_id in sorted(unsure):
                try:
                    if self.store.get(job_id).state is JobState.COMPLETED:
                        self.ids.add(job_id)
                except OctoqueueError:
                    continue  # a fault of the emulator: asked again next time
            unsure -= self.ids
        return not unsure

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _final_states(store_url: str, options: dict[str, Any]) -> dict[int, tuple[JobState | None, int]]:
    store = open_store(store_url, **options)
    out: dict[int, tuple[JobState | None, int]] = {}
    try:
        cursor: str | None = None
        while True:
            page = store.list_jobs(cursor=cursor, limit=100)
            job: Job
            for job in page.jobs:
                out[job.id] = (job.state, job.attempt)
            cursor = page.cursor
            if cursor is None:
                return out
    finally:
        store.close()


@contextlib.contextmanager
def _backend(config: Config, directory: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, str], Any]]:
    """The store URL, store options, extra environment and (GitHub) the emulator, for the run's store."""
    if config.store == "sqlite":
        yield f"sqlite:///{directory / 'chaos.db'}", {}, {}, None
        return
    from octoqueue.testing.fake_github import FakeGitHub

    processes = config.workers + 2  # workers, the server, the final check
    options = {
        "token": GITHUB_TOKEN,
        "writes_per_minute": SECONDARY_PER_MINUTE // processes,
        "writes_per_hour": SECONDARY_PER_HOUR // processes,
        "max_rate_limit_wait": 60.0,
        "retries": 6,
        "retry_backoff": 0.2,
        "orphan_grace": 10.0,  # a key or claim ref left by a killed process is taken back after 10 s, not 60
        "read_lag": 1.0,  # unless a fault makes the emulator's reads lag: re-check an ambiguous write for 1 s, not 5
    }
    for fault in config.faults:
        options.update(fault.store_options)
    gh = FakeGitHub(
        REPO,
        GITHUB_TOKEN,
        seed=config.seed,
        rate_limit=PRIMARY_PER_HOUR,
        secondary_writes_per_minute=SECONDARY_PER_MINUTE,
        secondary_writes_per_hour=SECONDARY_PER_HOUR,
    )
    with gh, gh.serve() as base_url:
        yield f"github://{REPO}?base_url={base_url}", options, {}, gh


def run(config: Config) -> Report:
    """One chaos run; the report says what was done and what became of every job."""
    if config.store not in ("sqlite", "github"):
        raise ValueError(f"unknown store {config.store!r}: sqlite or github")
    if config.faults and config.store != "github":
        raise ValueError("faults act on the GitHub emulator: use them with --store github")
    if config.lease is None:
        config.lease = LEASES[config.store]
    rng = random.Random(config.seed)
    with contextlib.ExitStack() as stack:
        if config.keep:
            directory = Path(config.keep)
            directory.mkdir(parents=True)
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="octoqueue-chaos-")))
        with _backend(config, directory) as (store_url, options, extra_env, gh):
            ledger_path = directory / "ledger.txt"
            env = {
                **os.environ,
                **extra_env,
                LEDGER_ENV: str(ledger_path),
                STORE_OPTIONS_ENV: json.dumps(options),
                "API_KEYS": f"producer:{PRODUCER_KEY}",
            }
            processes = _Processes(config, store_url, env, directory)
            report = _drive(config, rng, processes, gh, store_url, options, ledger_path)
            if not report.ok:
                for name in ("server.log", "worker.log"):
                    with contextlib.suppress(FileNotFoundError):
                        tail = (directory / name).read_text(errors="replace").splitlines()[-15:]
                        config.log(f"last lines of {name}:\n" + "\n".join(tail))
            return report


def _drive(
    config: Config,
    rng: random.Random,
    processes: _Processes,
    gh: Any,
    store_url: str,
    options: dict[str, Any],
    ledger_path: Path,
) -> Report:
    started = time.monotonic()
    deadline = started + config.seconds
    for fault in config.faults:
        fault.steady(gh)
    processes.start_server()
    for _ in range(config.workers):
        processes.start_worker()
    ids: dict[int, int] = {}
    stop = threading.Event()
    numbers = list(range(config.jobs))
    producers = [
        threading.Thread(target=_produce, args=(processes.url, numbers[i :: config.producers], ids, stop), daemon=True)
        for i in range(config.producers)
    ]
    for thread in producers:
        thread.start()
    kills = restarts = 0
    episodes = {f.name: 0 for f in config.faults if f.episode is not None}
    episodic = [f for f in config.faults if f.episode is not None]
    kill_step = config.jobs / (config.kills + 1)
    restart_step = config.jobs / (config.restarts + 1)
    next_episode = {f.name: time.monotonic() + rng.expovariate(1 / f.every) for f in episodic}
    episode_ends: list[tuple[float, Fault]] = []
    next_report = time.monotonic() + 10
    finished = False
    progress = ledger.Tail(ledger_path)
    done: set[int] = set()  # a completion asked for (it paces the kills)
    working: int | None = None  # the pid of the last worker seen starting a job (the next kill's victim)
    confirmed = Confirmations(store_url, options)  # a completion accepted: the run ends when every job has one
    try:
        while time.monotonic() < deadline:
            now = time.monotonic()
            entries = progress.read()
            done.update(e.job_id for e in entries if e.kind != "run")
            working = next((e.pid for e in reversed(entries) if e.kind == "run"), working)
            confirmed.note(entries)
            if kills < config.kills and len(done) >= (kills + 1) * kill_step:
                processes.kill_worker(rng, working)
                processes.start_worker()
                kills += 1
            if restarts < config.restarts and len(ids) >= (restarts + 1) * restart_step:
                processes.kill_server()
                processes.start_server()
                restarts += 1
            for fault in episodic:
                if now >= next_episode[fault.name]:
                    assert fault.episode is not None
                    fault.episode(gh, True)
                    episodes[fault.name] += 1
                    episode_ends.append((now + rng.uniform(1, 3), fault))
                    next_episode[fault.name] = now + rng.expovariate(1 / fault.every)
            for end, fault in [e for e in episode_ends if e[0] <= now]:
                assert fault.episode is not None
                fault.episode(gh, False)
                episode_ends.remove((end, fault))
            if now >= next_report:
                config.log(
                    f"  {now - started:6.0f} s: {len(ids)} created, {len(done)} completed, {kills} kills, "
                    f"{restarts} restarts"
                )
                next_report = now + 10
            if len(ids) == config.jobs and set(ids.values()) <= done and confirmed.all(ids.values()):
                finished = True
                break
            time.sleep(0.1)
    finally:
        confirmed.close()
        stop.set()
        for _, fault in episode_ends:
            assert fault.episode is not None
            fault.episode(gh, False)
        processes.stop_all()
        for thread in producers:
            thread.join(timeout=10)
    elapsed = time.monotonic() - started
    if gh is not None:  # the verdict reads the truth: GitHub's primary, answering every request
        gh.set_faults(error_rate=0.0, latency=0.0, read_lag=0.0, ref_failure_rate=0.0)
    final = _final_states(store_url, options)
    verdict = ledger.judge(ids.values(), final, ledger.read(ledger_path))
    verdict.lost.extend(n for n in numbers if n not in ids)  # never created: lost too (by number, not id)
    verdict.strays = sorted(set(final) - set(ids.values()))
    return Report(config, verdict, elapsed, kills, restarts, episodes, unfinished_at_deadline=not finished)
