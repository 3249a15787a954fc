"""Starting the server as a new user does: `.env` in the working folder, the address it says it binds, a port in
use, a store that cannot be reached. Real processes, a real GitHub emulator over HTTP."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from octoqueue.api import Settings
from octoqueue.testing.fake_github import FakeGitHub

from . import test_cli_serve
from .conftest import free_port
from .test_cli_serve import OCTOQUEUE, _wait_up

ROOT = Path(__file__).resolve().parents[2]
spawn = test_cli_serve.spawn  # the fixture: server processes, stopped after the test
TOKEN = "token-from-dotenv-0123"


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    with FakeGitHub(repo="dot/env", token=TOKEN) as gh, gh.serve() as url:
        yield gh, url


def _read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float = 20) -> str:
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not printed: {''.join(seen)}")


@pytest.mark.parametrize("how", ["octoqueue serve", "uvicorn"])
def test_dotenv_gives_the_github_store_its_token_and_api_url(
    how: str, github: tuple[FakeGitHub, str], spawn: Any, tmp_path: Path
) -> None:
    gh, github_url = github
    (tmp_path / ".env").write_text(f"GITHUB_REPO=dot/env\nGH_TOKEN={TOKEN}\nGITHUB_API_URL={github_url}\n")
    port = free_port()
    if how == "uvicorn":
        args = [sys.executable, "-m", "uvicorn", "octoqueue.api:app", "--host", "127.0.0.1", "--port", str(port)]
    else:
        args = [OCTOQUEUE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = spawn(args)
    url = f"http://127.0.0.1:{port}"
    _wait_up(url, proc)
    created = requests.post(url + "/create-job", json={"data": {"from": "dotenv"}}, timeout=30)
    assert created.status_code == 201, created.text
    assert created.json()["job_id"] in gh.issues


def test_env_example_copied_to_dotenv_sets_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields.values():
        for name in getattr(field.validation_alias, "choices", ()):
            monkeypatch.delenv(str(name), raising=False)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    assert Settings().model_dump() == Settings(_env_file=None).model_dump()  # type: ignore[call-arg]
    active = [line for line in (tmp_path / ".env").read_text().splitlines() if line.strip() and line[0] != "#"]
    assert active == []


def test_a_store_that_cannot_be_reached_at_start_is_one_line_and_exit_1(
    github: tuple[FakeGitHub, str], spawn: Any, tmp_path: Path
) -> None:
    _, github_url = github
    (tmp_path / ".env").write_text(f"GITHUB_REPO=dot/env\nGH_TOKEN=your_github_token\nGITHUB_API_URL={github_url}\n")
    port = free_port()
    proc = spawn([OCTOQUEUE, "serve", "--host", "127.0.0.1", "--port", str(port), "--worker", "--command", "cat"])
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the store github://dot/env"), err
    assert "cannot be reached" in lines[0] and "401" in lines[0]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # not listening


def test_uvicorn_says_in_one_line_that_the_store_cannot_be_reached(
    github: tuple[FakeGitHub, str], spawn: Any, tmp_path: Path
) -> None:
    _, github_url = github
    (tmp_path / ".env").write_text(f"GITHUB_REPO=dot/env\nGH_TOKEN=wrong\nGITHUB_API_URL={github_url}\n")
    port = free_port()
    proc = spawn([sys.executable, "-m", "uvicorn", "octoqueue.api:app", "--host", "127.0.0.1", "--port", str(port)])
    line = _read_until(proc, "cannot be reached")
    assert "github://dot/env" in line and "/ready answers 503" in line
    _wait_up(f"http://127.0.0.1:{port}", proc)
    assert requests.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code == 503
    proc.send_signal(signal.SIGTERM)
    assert b"server ready" not in proc.communicate(timeout=20)[1]


def test_a_port_in_use_is_one_line_exit_1_and_nothing_starts(spawn: Any, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = spawn(
            [
                OCTOQUEUE,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--store",
                f"sqlite:///{tmp_path}/q.db",
                "--worker",
                "--command",
                "cat",
            ]
        )
        err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 1
    assert err.strip().splitlines() == [f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert not (tmp_path / "q.db").exists()  # the store was not even opened


def test_the_banner_shows_the_address_really_bound(spawn: Any, tmp_path: Path) -> None:
    proc = spawn([OCTOQUEUE, "serve", "--host", "127.0.0.1", "--port", "0", "--store", f"sqlite:///{tmp_path}/q.db"])
    line = _read_until(proc, "listening on")
    address = line.split("listening on ", 1)[1].split()[0]
    host, port = address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    _wait_up(f"http://127.0.0.1:{port}", proc)


def test_the_banner_says_every_interface_for_0_0_0_0(spawn: Any, tmp_path: Path) -> None:
    proc = spawn([OCTOQUEUE, "serve", "--host", "0.0.0.0", "--port", "0", "--store", f"sqlite:///{tmp_path}/q.db"])
    line = _read_until(proc, "listening on")
    assert "listening on 0.0.0.0:" in line and "(every interface)" in line


def test_serve_log_format_json_makes_every_line_json(spawn: Any, tmp_path: Path) -> None:
    proc = spawn(
        [
            OCTOQUEUE,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--store",
            f"sqlite:///{tmp_path}/q.db",
            "--log-format",
            "json",
        ]
    )
    assert proc.stderr is not None
    records = []
    while not records or records[-1]["message"] != "Application startup complete.":
        line = proc.stderr.readline().decode()
        assert line, f"the server ended: {records}"
        records.append(json.loads(line))
    loggers = {record["logger"] for record in records}
    assert {"octoqueue.api", "uvicorn.error"} <= loggers
    assert any(record["message"].startswith("octoqueue 0") and record["port"] > 0 for record in records)
