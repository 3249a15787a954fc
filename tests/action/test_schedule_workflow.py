"""The example schedules workflow: its step, run as the runner would against the emulator, fires due ticks once
and wakes the worker workflow for each job."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import yaml

from octoqueue.schedules import SETTING_KEY

from .composite import base_env
from .conftest import REPO, ROOT, TOKEN, Harness

WORKFLOW = ROOT / "examples/workflows/schedules.yml"


def _fire_step() -> dict[str, object]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["schedule"] == [{"cron": "*/5 * * * *"}]  # YAML 1.1 reads "on" as True
    assert workflow["permissions"] == {"issues": "write", "contents": "write"}
    (step,) = [s for s in workflow["jobs"]["fire"]["steps"] if s.get("name") == "Fire due schedules"]
    return step


def _run(step: dict[str, object], url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    context = {"github.token": TOKEN, "github.repository": REPO}
    env = {k: re.sub(r"\$\{\{ *(\S+) *\}\}", lambda m: context[m.group(1)], str(v)) for k, v in step["env"].items()}  # type: ignore[union-attr]
    venv_bin = str(Path(sys.executable).parent)
    full = base_env({**env, "GITHUB_API_URL": url, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")})
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        ["bash", "-e", "-c", str(step["run"])], env=full, cwd=workdir, capture_output=True, text=True, timeout=120
    )


def test_each_run_fires_the_due_tick_once_and_dispatches_its_job(harness: Harness) -> None:
    queue = harness.queue()
    schedule = queue.create_schedule("hourly", {"text": "tick tock"}, "0 * * * *")
    raw = queue.store.get_setting(SETTING_KEY)  # pretend it was defined two hours ago: two ticks were missed
    raw["hourly"]["created_at"] = (schedule.created_at - timedelta(hours=2)).isoformat()
    queue.store.set_setting(SETTING_KEY, raw)
    step = _fire_step()

    first = _run(step, harness.url, harness.workspace)
    assert first.returncode == 0, first.stderr
    (job_id,) = [int(line) for line in first.stdout.split()]
    second = _run(step, harness.url, harness.workspace)  # the next run (or an overlapping one) fires nothing
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == []

    job = queue.get(job_id)
    assert (job.data, job.status) == ({"text": "tick tock"}, "pending")
    assert [d["client_payload"]["job_id"] for d in harness.github.dispatches] == [job_id]
