"""A producer key must not reach the store's settings, and no cursor may send the GitHub token to another host.

The server runs on the GitHub store over the emulator (HTTP), as in production. An attacker holds a producer key
(``POST /create-job`` only) and tries the chain from the issue: make its job *the* settings issue, put its own
cursor-signing key and admin schema there, then sign a listing cursor pointing at a host it controls.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from octoqueue.api import create_app
from octoqueue.api.cursors import CursorSigner
from octoqueue.queue import Queue
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import free_port, headers, serve, test_settings

REPO = "acme/jobs"
TOKEN = "t0k3n-settings"
ATTACKER_KEY = "a" * 64


@dataclass
class Stack:
    github: FakeGitHub
    url: str
    queue: Queue


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    github = FakeGitHub(repo=REPO, token=TOKEN)
    try:
        with github.serve() as github_url:
            settings = test_settings(store=f"github://{REPO}?base_url={github_url}", webhook_repo=None)
            app = create_app(settings)
            with serve(app, port=free_port()) as url:
                yield Stack(github, url, app.state.runtime.queue)
    finally:
        github.close()


def _forged_settings_job(stack: Stack) -> requests.Response:
    """The attack of issue 8 item 1: a job labelled as the settings issue, its data shaped like settings."""
    forged = {
        "api_cursor_key": ATTACKER_KEY,
        "job_schema": {"type": "object", "required": ["owned"]},
        "queues": [{"name": "evil", "max_retries": 0, "claim_timeout": 60}],
    }
    return requests.post(
        stack.url + "/create-job",
        json={"data": forged, "additional_labels": ["octoqueue-settings"]},
        headers=headers("producer"),
        timeout=30,
    )


def test_a_producer_cannot_label_a_job_as_the_settings_issue(stack: Stack) -> None:
    response = _forged_settings_job(stack)
    assert response.status_code == 400, response.text
    assert "octoqueue-settings" in response.json()["detail"]
    assert stack.queue.store.get_setting("api_cursor_key") is None


def test_an_issue_labelled_by_hand_does_not_become_the_settings(stack: Stack) -> None:
    """Even an issue that carries the label (made by anyone who can open issues) is not read as the settings."""
    forged = json.dumps({"api_cursor_key": ATTACKER_KEY, "job_schema": {"required": ["owned"]}})
    stack.github.create_issue("octoqueue settings", f"```json\n{forged}\n```", labels=["octoqueue-settings"])
    store = stack.queue.store
    assert store.get_setting("api_cursor_key") is None
    assert store.get_setting("job_schema") is None
    ok = requests.post(stack.url + "/create-job", json={"data": {"x": 1}}, headers=headers("producer"), timeout=30)
    assert ok.status_code == 201, ok.text  # the forged schema (requiring "owned") is not in force
    store.set_setting("queues", [])
    assert store.get_setting("api_cursor_key") is None  # the store made its own settings issue, not the forged one


def _old_style_cursor(url: str) -> str:
    """A store cursor as the store used to make them: the URL to GET next."""
    raw = json.dumps({"u": url, "s": 0}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_signed_cursor_to_another_host_is_refused_and_no_token_leaves(stack: Stack) -> None:
    """Whoever learns the signing key (it sits in the settings issue) still cannot steer the store off the API
    root: the store's cursor names a page of its own listing, and the client refuses any other host."""
    create = requests.post(stack.url + "/api/v1/queues", json={"name": "work"}, headers=headers("admin"), timeout=30)
    assert create.status_code == 201, create.text
    with FakeGitHub(repo="evil/loot", token="whatever") as evil, evil.serve() as evil_url:
        signer = CursorSigner(stack.queue.store)  # the server's key, as an attacker who read it would use it
        for target in (f"{evil_url}/repos/evil/loot/issues", f"{evil_url}/x", "//127.0.0.1:1/steal"):
            cursor = signer.sign(_old_style_cursor(target))
            response = requests.get(
                stack.url + "/api/v1/queues/work/jobs", params={"cursor": cursor}, headers=headers("reader"), timeout=30
            )
            assert response.status_code == 400, response.text
        assert evil.request_log == []


def test_the_store_refuses_link_urls_off_the_api_root(stack: Stack) -> None:
    """The last line of defence: the GitHub client sends nothing outside its API root, whatever asks it to."""
    from octoqueue.stores.github.client import OffRoot

    store = stack.queue.store
    with FakeGitHub(repo="evil/loot", token="whatever") as evil, evil.serve() as evil_url:
        for url in (f"{evil_url}/repos/evil/loot/issues", f"{store.base_url}/../x", f"{store.base_url}@evil/x"):
            with pytest.raises(OffRoot):
                store._client.get(url)
        assert evil.request_log == []
