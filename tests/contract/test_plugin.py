"""The kit as a pytest plugin: ``pytest -p octoqueue.testing.contract --octoqueue-store=URL``, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import octoqueue
from octoqueue.testing.contract import StoreKit

ROOT = Path(octoqueue.__file__).resolve().parent.parent


def run_plugin(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (where / "test_unrelated.py").write_text("def test_not_collected():\n    raise AssertionError\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # as fast as can be
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "octoqueue.testing.contract"]
    return subprocess.run(
        [*command, *args], cwd=where, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def kit_size() -> int:
    """How many tests the kit has (parametrised ones counted once per case)."""
    total = 0
    for name in dir(StoreKit):
        if name.startswith("test_"):
            marks = getattr(getattr(StoreKit, name), "pytestmark", [])
            cases = [len(m.args[1]) for m in marks if m.name == "parametrize"]
            total += cases[0] if cases else 1
    return total


def test_the_plugin_runs_the_whole_kit_and_only_it(tmp_path: Path) -> None:
    done = run_plugin(tmp_path, "--octoqueue-store=memory://")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{kit_size()} passed" in done.stdout


def test_the_plugin_refuses_what_is_not_a_store_url(tmp_path: Path) -> None:
    done = run_plugin(tmp_path, "--octoqueue-store=jobs.db")
    assert done.returncode != 0
    assert "wants a store URL" in done.stderr
