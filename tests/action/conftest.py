"""Fixtures for running the composite action against the GitHub emulator served over HTTP."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from octoqueue.queue import Queue
from octoqueue.stores import open_store

from .composite import ActionRun, base_env, run_composite

ROOT = Path(__file__).resolve().parents[2]
EVENTS = Path(__file__).parent / "events"
REPO = "octo-org/jobs"
TOKEN = "ghs_action_test_token"


def labeled_event(issue: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded ``issues.labeled`` event, re-aimed at ``issue`` (the emulator's JSON for it)."""
    event = json.loads((EVENTS / "issues_labeled.json").read_text(encoding="utf-8"))
    event["issue"] = copy.deepcopy(dict(issue))
    pending = [label for label in issue["labels"] if label["name"] == "pending"]
    if pending:
        event["label"] = pending[0]
    return event


@dataclass
class Harness:
    """One emulated repository, and a way to run the action on it as a workflow job would."""

    github: Any  # FakeGitHub
    url: str
    tmp: Path
    workspace: Path

    def queue(self) -> Queue:
        """A producer's queue on the emulated repository (its jobs allow ``max_attempts`` given per job)."""
        return Queue(open_store(f"github://{REPO}", token=TOKEN, base_url=self.url))

    def run(
        self,
        inputs: Mapping[str, str],
        event_name: str,
        event: Mapping[str, Any],
        *,
        name: str = "run",
        path: str | None = None,
        interrupt: Mapping[str, Callable[[subprocess.Popen[str]], None]] | None = None,
        timeout: float = 90,
    ) -> ActionRun:
        """Run the composite action with ``inputs`` for an ``event_name`` event (``name`` keeps runs apart)."""
        home = self.tmp / name
        temp = home / "runner-temp"
        temp.mkdir(parents=True)
        event_path = home / "event.json"
        event_path.write_text(json.dumps(event), encoding="utf-8")
        venv_bin = str(Path(sys.executable).parent)
        env = base_env(
            {
                "PATH": (path or venv_bin) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": event_name,
                "GITHUB_EVENT_PATH": str(event_path),
                "GITHUB_REPOSITORY": REPO,
                "GITHUB_API_URL": self.url,
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_TOKEN": TOKEN,
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_RUN_ID": "4242",
                "RUNNER_TEMP": str(temp),
                "PYTHONUNBUFFERED": "1",
            }
        )
        context = {
            "token": TOKEN,
            "repository": REPO,
            "action_path": str(ROOT),
            "workspace": str(self.workspace),
            "event_name": event_name,
            "api_url": self.url,
            "server_url": "https://github.com",
            "run_id": "4242",
        }
        return run_composite(
            ROOT,
            inputs=inputs,
            github=context,
            env=env,
            workdir=self.workspace,
            temp=temp,
            interrupt=interrupt,
            timeout=timeout,
        )

    def result_comments(self, number: int) -> list[str]:
        return [c["body"] for c in self.github.comments_of(number) if "**Result**" in c["body"]]


def require(available: bool, what: str) -> None:
    """Skip locally, fail in CI, when something these tests need is missing (as tests/conftest.py does)."""
    if available:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available")


def _github_store_ready() -> bool:
    return importlib.util.find_spec("octoqueue.stores.github") is not None


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    require(_github_store_ready(), "the GitHub store (octoqueue.stores.github)")
    from octoqueue.testing.fake_github import FakeGitHub

    # Secondary limits stay on but wide: the concurrency test makes a few hundred writes within a minute.
    github = FakeGitHub(repo=REPO, token=TOKEN, secondary_writes_per_minute=10_000, secondary_writes_per_hour=100_000)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    with github, github.serve() as url:
        yield Harness(github, url, tmp_path, workspace)
