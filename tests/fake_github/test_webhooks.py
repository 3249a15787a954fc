"""Webhook deliveries: signing, headers, payloads, ordering, redelivery, and no retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from githubkit.webhooks import parse_obj, verify

from octoqueue.testing.fake_github import FakeGitHub, sign
from tests.fake_github.conftest import REPO, TOKEN, R

SECRET = "It's a Secret to Everybody"


class Receiver:
    """Records webhook requests; answers ``status`` (optionally after ``delay`` seconds)."""

    def __init__(self, status: int = 204, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        time.sleep(self.delay)
        request.read()
        self.requests.append(request)
        return httpx.Response(self.status)

    def events(self) -> list[tuple[str, str]]:
        return [(r.headers["x-github-event"], json.loads(r.content)["action"]) for r in self.requests]


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def hooked(receiver: Receiver) -> Iterator[FakeGitHub]:
    with FakeGitHub(
        repo=REPO,
        token=TOKEN,
        webhook_url="http://receiver.test/hook",
        webhook_secret=SECRET,
        webhook_transport=httpx.MockTransport(receiver),
    ) as gh:
        yield gh


def test_signature_matches_githubs_test_vector() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(SECRET, b"Hello, World!") == expected
    assert verify(SECRET, b"Hello, World!", expected)


def test_delivery_headers_and_signature(hooked: FakeGitHub, receiver: Receiver) -> None:
    with hooked.client() as client:
        client.post(f"{R}/issues", json={"title": "job"})
    assert hooked.flush_webhooks()
    (request,) = receiver.requests
    h = request.headers
    assert request.method == "POST" and h["content-type"] == "application/json"
    assert h["x-github-event"] == "issues"
    assert uuid.UUID(h["x-github-delivery"])
    assert h["x-github-hook-id"] == "1"
    assert h["user-agent"].startswith("GitHub-Hookshot/")
    digest = hmac.new(SECRET.encode(), request.content, hashlib.sha256).hexdigest()
    assert h["x-hub-signature-256"] == f"sha256={digest}"
    assert verify(SECRET, request.content, h["x-hub-signature-256"])
    delivery = hooked.deliveries[0]
    assert (delivery.event, delivery.guid, delivery.status_code) == ("issues", h["x-github-delivery"], 204)
    assert delivery.payload["issue"]["title"] == "job"


def test_no_signature_without_secret() -> None:
    receiver = Receiver()
    transport = httpx.MockTransport(receiver)
    with FakeGitHub(repo=REPO, webhook_url="http://r/hook", webhook_transport=transport) as gh:
        gh.create_issue("x")
        gh.flush_webhooks()
    assert "x-hub-signature-256" not in receiver.requests[0].headers


def test_issue_lifecycle_sends_githubs_events_in_order(hooked: FakeGitHub, receiver: Receiver) -> None:
    with hooked.client() as client:
        number = client.post(f"{R}/issues", json={"title": "job", "labels": ["pending", "urgent"]}).json()["number"]
        client.patch(f"{R}/issues/{number}", json={"title": "renamed"})
        client.delete(f"{R}/issues/{number}/labels/pending")
        client.post(f"{R}/issues/{number}/labels", json={"labels": ["processing"]})
        comment = client.post(f"{R}/issues/{number}/comments", json={"body": "hi"}).json()["id"]
        client.patch(f"{R}/issues/comments/{comment}", json={"body": "edited"})
        client.delete(f"{R}/issues/comments/{comment}")
        client.patch(f"{R}/issues/{number}", json={"state": "closed"})
        client.patch(f"{R}/issues/{number}", json={"state": "open"})
    assert hooked.flush_webhooks()
    assert receiver.events() == [
        ("issues", "opened"),
        ("issues", "labeled"),
        ("issues", "labeled"),
        ("issues", "edited"),
        ("issues", "unlabeled"),
        ("issues", "labeled"),
        ("issue_comment", "created"),
        ("issue_comment", "edited"),
        ("issue_comment", "deleted"),
        ("issues", "closed"),
        ("issues", "reopened"),
    ]
    payloads = [json.loads(r.content) for r in receiver.requests]
    assert [p["label"]["name"] for p in payloads[1:3]] == ["pending", "urgent"]
    assert payloads[3]["changes"] == {"title": {"from": "job"}}
    assert payloads[7]["changes"] == {"body": {"from": "hi"}}
    assert payloads[9]["issue"]["state"] == "closed"
    assert all(p["sender"]["login"] == "octo-org" and p["repository"]["full_name"] == REPO for p in payloads)


def test_payloads_validate_against_githubkits_webhook_models(hooked: FakeGitHub) -> None:
    number = hooked.create_issue("job", "body", labels=["pending"])
    hooked.edit_issue(number, title="renamed", labels=["processing"])
    comment = hooked.comment(number, "hello", author="octocat", author_association="CONTRIBUTOR")
    hooked.edit_comment(comment, "bye")
    hooked.delete_comment(comment)
    hooked.edit_issue(number, state="closed", state_reason="not_planned")
    hooked.edit_issue(number, state="open")
    assert hooked.flush_webhooks()
    seen = set()
    for delivery in hooked.deliveries:
        model: Any = parse_obj(delivery.event, delivery.payload)  # type: ignore[call-overload]
        assert model.action == delivery.action
        seen.add((delivery.event, delivery.action))
    assert seen == {
        ("issues", "opened"),
        ("issues", "labeled"),
        ("issues", "unlabeled"),
        ("issues", "edited"),
        ("issues", "closed"),
        ("issues", "reopened"),
        ("issue_comment", "created"),
        ("issue_comment", "edited"),
        ("issue_comment", "deleted"),
    }
    created = next(d for d in hooked.deliveries if d.action == "created")
    assert created.payload["comment"]["author_association"] == "CONTRIBUTOR"
    assert created.payload["sender"]["login"] == "octocat"


def test_failed_delivery_is_recorded_not_retried() -> None:
    receiver = Receiver(status=500)
    transport = httpx.MockTransport(receiver)
    with FakeGitHub(repo=REPO, webhook_url="http://r/hook", webhook_transport=transport) as gh:
        gh.create_issue("x")
        assert gh.flush_webhooks()
        time.sleep(0.1)
        assert len(receiver.requests) == 1
        assert gh.deliveries[0].status_code == 500


def test_unreachable_receiver_is_recorded() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with FakeGitHub(repo=REPO, webhook_url="http://r/hook", webhook_transport=httpx.MockTransport(refuse)) as gh:
        gh.create_issue("x")
        assert gh.flush_webhooks()
        delivery = gh.deliveries[0]
        assert delivery.status_code is None and delivery.error and "ConnectError" in delivery.error


def test_redeliver_keeps_the_guid_and_body(hooked: FakeGitHub, receiver: Receiver) -> None:
    hooked.create_issue("x")
    assert hooked.flush_webhooks()
    original = hooked.deliveries[0]
    again = hooked.redeliver(original.guid)
    assert hooked.flush_webhooks()
    first, second = receiver.requests
    assert second.headers["x-github-delivery"] == first.headers["x-github-delivery"] == original.guid
    assert second.content == first.content
    assert second.headers["x-hub-signature-256"] == first.headers["x-hub-signature-256"]
    assert again.redelivery and again.status_code == 204
    with pytest.raises(KeyError):
        hooked.redeliver("no-such-guid")


def test_slow_receiver_does_not_delay_the_api() -> None:
    receiver = Receiver(delay=3.0)
    transport = httpx.MockTransport(receiver)
    with FakeGitHub(repo=REPO, webhook_url="http://r/hook", webhook_transport=transport) as gh, gh.client() as c:
        started = time.monotonic()
        assert c.post(f"{R}/issues", json={"title": "x", "labels": ["a"]}).status_code == 201
        assert time.monotonic() - started < 2.0  # the receiver takes 3 s per delivery
        assert gh.flush_webhooks()
        assert len(receiver.requests) == 2


def test_delivery_over_real_http() -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        with FakeGitHub(repo=REPO, webhook_url=url, webhook_secret=SECRET) as gh:
            gh.comment(gh.create_issue("x"), "hello")
            assert gh.flush_webhooks()
            assert [d.status_code for d in gh.deliveries] == [200, 200]
    finally:
        server.shutdown()
        server.server_close()
    headers, body = received[1]
    assert headers["X-GitHub-Event"] == "issue_comment"
    assert verify(SECRET, body, headers["X-Hub-Signature-256"])
    assert json.loads(body)["comment"]["body"] == "hello"


def test_no_issues_webhooks_for_pull_requests(hooked: FakeGitHub, receiver: Receiver) -> None:
    # GitHub sends pull_request events for pull requests; the emulator does not model those.
    hooked.create_pull_request("a change")
    assert hooked.flush_webhooks()
    assert receiver.requests == []


def test_delivery_faults_reorder_strip_and_duplicate(hooked: FakeGitHub, receiver: Receiver) -> None:
    hooked.set_webhook_faults(reorder=True, opened_without_labels=True, duplicate=True)
    hooked.create_issue("job", "body", labels=["pending", "urgent"])
    assert hooked.flush_webhooks()
    assert receiver.events() == [("issues", "labeled")] * 4 + [("issues", "opened")] * 2
    guids = [r.headers["x-github-delivery"] for r in receiver.requests]
    assert guids[0] == guids[1] and guids[2] == guids[3] and guids[4] == guids[5] and len(set(guids)) == 3
    opened = json.loads(receiver.requests[-1].content)
    assert opened["issue"]["labels"] == []
    assert [d.sent for d in sorted(hooked.deliveries, key=lambda d: d.sent or 0)] == [1, 2, 3, 4, 5, 6]
    hooked.set_webhook_faults(reorder=False, opened_without_labels=False, duplicate=False)
    hooked.create_issue("job 2", "body", labels=["pending"])
    assert hooked.flush_webhooks()
    assert receiver.events()[6:] == [("issues", "opened"), ("issues", "labeled")]
    assert json.loads(receiver.requests[6].content)["issue"]["labels"][0]["name"] == "pending"
