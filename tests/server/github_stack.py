"""A server on the GitHub store over the emulator, with the emulator's webhooks pointed at it.

``github_stack(**fake_options)`` starts both (FakeGitHub over HTTP, the server on
``github://owner/repo?base_url=<emulator>`` with the token from ``GH_TOKEN``, as in production) and yields a
:class:`Stack`. The server's token acts as ``BOT``, not the owner.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from octoqueue.api import create_app
from octoqueue.queue import Queue
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import WEBHOOK_SECRET, free_port, headers, serve, test_settings

REPO = "acme/jobs"
OWNER = "acme"
TOKEN = "t0k3n-e2e"
#: The account the server's token acts as: not the owner, as with a machine account.
BOT = "octoqueue-bot"


@dataclass
class Stack:
    github: FakeGitHub
    url: str
    queue: Queue

    def create_job(self, data: dict[str, Any]) -> int:
        response = requests.post(self.url + "/create-job", json={"data": data}, headers=headers("producer"), timeout=30)
        assert response.status_code == 201, response.text
        job_id: int = response.json()["job_id"]
        return job_id

    def failed_job(self, error: str = "boom") -> int:
        job_id = self.create_job({"image": "cat.png"})
        job = self.queue.claim()
        assert job is not None and job.id == job_id
        self.queue.fail(job, error=error)
        assert "failed" in self.github.labels_of(job_id)
        return job_id

    def statuses(self, event: str, action: str) -> list[int | None]:
        """The server's answers to the emulator's deliveries of ``event.action`` so far (202: acted on)."""
        self.github.flush_webhooks()
        return [d.status_code for d in self.github.deliveries if d.event == event and d.action == action]

    def metric(self, outcome: str) -> float:
        """How many deliveries ended with ``outcome`` (from /metrics)."""
        total = 0.0
        for line in requests.get(self.url + "/metrics", timeout=30).text.splitlines():
            if line.startswith("octoqueue_webhook_deliveries_total{") and f'outcome="{outcome}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextlib.contextmanager
def github_stack(
    monkeypatch: pytest.MonkeyPatch, repo: str = REPO, *, settings: dict[str, Any] | None = None, **fake: Any
) -> Iterator[Stack]:
    port = free_port()
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    github = FakeGitHub(
        repo=repo,
        token=TOKEN,
        webhook_url=f"http://127.0.0.1:{port}/webhooks/github",
        webhook_secret=WEBHOOK_SECRET,
        **{"user": BOT, **fake},
    )
    try:
        with github.serve() as github_url:
            options = {"recover_interval": 1.0, "webhook_repo": None, **(settings or {})}
            app = create_app(test_settings(store=f"github://{repo}?base_url={github_url}", **options))
            with serve(app, port=port) as url:
                yield Stack(github, url, app.state.runtime.queue)  # the server's own Queue on the GitHub store
    finally:
        github.close()
