"""``octoqueue fake-github`` serves the emulator in the foreground."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
from click.testing import CliRunner

from octoqueue.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_lists_env_twins() -> None:
    result = CliRunner().invoke(main, ["fake-github", "--help"])
    assert result.exit_code == 0
    assert "--webhook-secret" in result.output and "--error-rate" in result.output
    for option in ("--read-lag", "--ref-failure-rate", "--no-push-access", "/_fake/faults"):
        assert option in result.output


def test_bad_repo_is_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(main, ["fake-github", "--repo", "no-slash"])
    assert result.exit_code == 1
    assert "owner/name" in result.output


def test_serves_over_http_with_env_configuration() -> None:
    port = free_port()
    env = {
        **os.environ,
        "FAKE_GITHUB_PORT": str(port),
        "FAKE_GITHUB_TOKEN": "sekrit",
        "FAKE_GITHUB_REPO": "a/b",
        "FAKE_GITHUB_READ_LAG": "2.5",
        "FAKE_GITHUB_REF_FAILURE_RATE": "0.05",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "octoqueue.cli", "fake-github", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        auth = {"Authorization": "token sekrit"}
        created = httpx.post(f"{url}/repos/a/b/issues", json={"title": "t"}, headers=auth)
        assert created.status_code == 201 and created.json()["url"] == f"{url}/repos/a/b/issues/1"
        assert httpx.get(f"{url}/repos/a/b", headers={"Authorization": "token nope"}).status_code == 401
        faults = httpx.get(f"{url}/_fake/faults").json()
        assert faults["read_lag"] == 2.5 and faults["ref_failure_rate"] == 0.05 and faults["push_access"] is True
        switched = httpx.patch(f"{url}/_fake/faults", json={"read_lag": 0, "push_access": False})
        assert switched.status_code == 200 and switched.json()["read_lag"] == 0
        assert switched.json()["push_access"] is False and switched.json()["ref_failure_rate"] == 0.05
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert b"fake GitHub for a/b" in output
