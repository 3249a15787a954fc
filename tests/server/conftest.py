"""Servers for the server tests: the real HTTP stack (uvicorn on a loopback port, in a thread) per test.

``make_server(**settings)`` starts an app over a fresh in-memory queue (or ``queue=``) and returns a
:class:`LiveServer`; ``server`` is one with the default test settings. Keys: ``KEYS[role]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from fastapi import FastAPI

from octoqueue.api import Settings, create_app
from octoqueue.queue import Queue
from octoqueue.retry import RetryPolicy
from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

PAYLOADS = Path(__file__).parent / "payloads"
WEBHOOK_SECRET = "It's a Secret to Everybody"
KEYS = {
    "producer": "producer-key-0123456789",
    "worker": "worker-key-0123456789",
    "reader": "reader-key-0123456789",
    "admin": "admin-key-0123456789",
}
DEFAULTS: dict[str, Any] = {
    "api_key": None,
    "api_keys": ",".join(f"{role}:{key}" for role, key in KEYS.items()),
    "webhook_secret": WEBHOOK_SECRET,
    "webhook_trusted_users": "",
    "webhook_repo": "octo-owner/jobs",
    "allowed_origins": "",
    "rate_limit_requests": 0,
    "open_reads": True,
    "max_body_bytes": 1_048_576,
    "recover_interval": 0.2,
    "claim_poll_interval": 1.0,
    "settings_cache_seconds": 0.5,
    "metrics_cache_seconds": 0.0,
    "max_block_ms": 30_000,
    "worker": False,
    "handler": None,
    "command": None,
    "store": None,
    "repo": None,
}


def headers(role: str | None = None, **extra: str) -> dict[str, str]:
    out = {"X-API-Key": KEYS[role]} if role else {}
    out.update(extra)
    return out


def test_settings(**overrides: Any) -> Settings:
    """Settings that ignore the developer's environment and .env for everything the tests rely on."""
    return Settings(_env_file=None, **{**DEFAULTS, **overrides})  # type: ignore[call-arg]


test_settings.__test__ = False  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(app: FastAPI, port: int = 0) -> Iterator[str]:
    """Run ``app`` with uvicorn on a loopback port (a free one by default); yield its base URL; stop it after."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none")
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # surfaced below: a server that cannot start fails the test
            failure.append(exc)

    thread = threading.Thread(target=run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server did not start: {failure or 'timeout'}")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class LiveServer:
    url: str
    app: FastAPI
    queue: Queue
    settings: Settings

    def __call__(self, path: str) -> str:
        return self.url + path

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self(path), timeout=30, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self(path), timeout=30, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return requests.put(self(path), timeout=30, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return requests.delete(self(path), timeout=30, **kw)

    def webhook(
        self, event: str, payload: dict[str, Any] | bytes, *, delivery: str | None = None, secret: str | None = None
    ) -> requests.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.post(
            "/webhooks/github",
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/test",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(secret or WEBHOOK_SECRET, body),
            },
        )


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def new_queue(store: str = "memory://") -> Queue:
    return Queue(store, retry=RetryPolicy(initial=0.3, jitter=0), lease=300)


@pytest.fixture
def github_queue() -> Iterator[tuple[FakeGitHub, Queue]]:
    """A queue on the GitHub store over the in-process emulator. Ask for it before ``make_server`` so that the
    server stops before the emulator does."""
    with FakeGitHub(repo="octo/jobs") as gh:
        store = GitHubStore("octo/jobs", token="t", base_url=IN_PROCESS_URL, transport=gh.transport())
        queue = Queue(store)
        yield gh, queue
        queue.close()


@pytest.fixture
def make_server() -> Iterator[Callable[..., LiveServer]]:
    stack = contextlib.ExitStack()

    def make(queue: Queue | None = None, **overrides: Any) -> LiveServer:
        settings = test_settings(**overrides)
        q = queue if queue is not None else new_queue()
        app = create_app(settings, q)
        url = stack.enter_context(serve(app))
        return LiveServer(url, app, q, settings)

    with stack:
        yield make


@pytest.fixture
def server(make_server: Callable[..., LiveServer]) -> LiveServer:
    return make_server()


def payload(name: str) -> dict[str, Any]:
    """A webhook payload fixture from ``payloads/<name>.json`` (a fresh copy)."""
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return loaded
