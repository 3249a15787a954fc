"""Metrics of jobs finished by workers: the server's in-process worker counts in /metrics, and
``octoqueue work --metrics-port`` serves the same names; no ``*_created`` series; process gauges."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from octoqueue.queue import Queue

from .conftest import headers
from .github_stack import wait_for

ROOT = Path(__file__).resolve().parents[2]
#: A command handler that exits with the job's "code".
EXIT_WITH_CODE = """python3 -c 'import sys, json; sys.exit(json.load(sys.stdin)["code"])'"""
_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    found = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and match["name"] == name:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
            found[labels] = float(match["value"])
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text, name).get(frozenset(labels.items()))


def _check_exposition(text: str) -> None:
    names = {match["name"] for match in map(_LINE.match, text.splitlines()) if match}
    assert not [name for name in names if name.endswith("_created")]  # no *_created twin of each counter
    assert value(text, "process_cpu_seconds_total") is not None


def test_the_in_process_worker_counts_in_metrics(make_server: Callable[..., Any]) -> None:
    live = make_server(worker=True, command=EXIT_WITH_CODE)
    for code in (0, 0, 3):
        created = live.post(
            "/create-job", json={"data": {"code": code}, "max_attempts": 1}, headers=headers("producer")
        )
        assert created.status_code == 201, created.text
    queue: Queue = live.queue
    wait_for(lambda: sum(queue.counts().get(s, 0) for s in queue.counts() if s.value in ("completed", "failed")) == 3)

    def scraped() -> str:
        return str(live.get("/metrics").text)

    wait_for(lambda: value(scraped(), "octoqueue_jobs_failed_total", queue="", outcome="failed") == 1)
    text = scraped()
    assert value(text, "octoqueue_jobs_completed_total", queue="") == 2
    assert value(text, "octoqueue_job_duration_seconds_count", queue="", outcome="completed") == 2
    assert value(text, "octoqueue_job_duration_seconds_count", queue="", outcome="failed") == 1
    _check_exposition(text)


def test_work_serves_metrics_on_its_own_port(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with Queue(f"sqlite:///{db}") as queue:
        queue.enqueue({"n": 2})
        queue.enqueue({"n": 3}, queue="images")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "octoqueue.cli",
            "work",
            "--handler",
            "tests.core.handlers_for_tests:double",
            "--metrics-port",
            "0",
            "--poll-interval",
            "0.1",
            "--store",
            f"sqlite:///{db}",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            found = re.search(r"metrics on (http://\S+/metrics)", worker.stderr.readline())
            url = found[1] if found else None
        assert url is not None

        def scraped() -> str:
            return requests.get(url, timeout=5).text

        wait_for(lambda: value(scraped(), "octoqueue_jobs_completed_total", queue="images") == 1)
        text = scraped()
        assert value(text, "octoqueue_jobs_completed_total", queue="") == 1
        assert value(text, "octoqueue_job_duration_seconds_count", queue="images", outcome="completed") == 1
        _check_exposition(text)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)


def test_a_metrics_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "octoqueue.cli",
                "work",
                "--command",
                "cat",
                "--once",
                "--metrics-port",
                str(port),
                "--store",
                f"sqlite:///{tmp_path}/p.db",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: cannot serve metrics on 127.0.0.1:{port}: Address already in use"
