"""The original Octoqueue's README quick start, unchanged, against `octoqueue fake-github` with only
GITHUB_API_URL set: the user's first five minutes, offline."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seeds" / "000_f8c587bdfd124600.txt"

#: The quick start exactly as the seed README prints it (kept here too, so the test runs without ../shared).
QUICK_START = """from octoqueue import GithubQueue

# Initialize queue with your repo details
queue = GithubQueue(
    owner="username",
    repo="myrepo",
    token="github_pat_token"
)

# Enqueue a job
job_id = queue.enqueue({"data": "example"})

# Dequeue and process jobs
job = queue.dequeue()
if job:
    job_id, data = job
    try:
        # Process the job
        process_data(data)
        queue.complete(job_id)
    except Exception as e:
        queue.fail(job_id, str(e))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_quick_start_is_the_seeds() -> None:
    if SEED.exists():  # beside the checkout in development and CI
        block = re.search(r"## Quick Start\s+```python\n(.*?)```", SEED.read_text(), re.DOTALL)
        assert block is not None
        assert block.group(1) == QUICK_START


def test_seed_quick_start_runs_unchanged_against_fake_github(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN", "GITHUB_API_URL"}}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "octoqueue.cli",
            "fake-github",
            "--port",
            str(port),
            "--repo",
            "username/myrepo",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/repos/username/myrepo", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "fake-github did not start"
            time.sleep(0.1)
        # The user's script: their own process_data, then the quick start verbatim.
        script = tmp_path / "quick_start.py"
        script.write_text(
            "processed = []\n\ndef process_data(data):\n    processed.append(data)\n\n"
            + QUICK_START
            + "\nimport json\nprint(json.dumps({'job_id': job_id, 'processed': processed}))\n"
        )
        run = subprocess.run(
            [sys.executable, str(script)],
            env={**env, "GITHUB_API_URL": base},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout.strip().splitlines()[-1])
        assert report["processed"] == [{"data": "example"}]
        issue = httpx.get(f"{base}/repos/username/myrepo/issues/{report['job_id']}").json()
        assert issue["state"] == "closed" and issue["state_reason"] == "completed"
        assert [label["name"] for label in issue["labels"]] == ["completed"]
        assert "```json" in issue["body"] and '"data": "example"' in issue["body"]
    finally:
        server.terminate()
        server.wait(timeout=10)
