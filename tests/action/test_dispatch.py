"""dispatch_worker: the repository_dispatch that wakes a worker workflow."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from octoqueue.dispatch import dispatch_enabled, dispatch_worker, wake_worker
from octoqueue.errors import ConfigurationError, RateLimited, StoreUnavailable


def client_answering(
    status: int, seen: list[httpx.Request], *, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method != "POST" or not request.url.path.endswith("/dispatches"):
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        return httpx.Response(status, json=body, headers=headers)

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_dispatch_posts_the_event_with_the_job_id() -> None:
    seen: list[httpx.Request] = []
    with client_answering(204, seen) as client:
        dispatch_worker("octo-org/jobs", "t0ken", "https://ghe.example/api/v3/", job_id=12, client=client)
    (request,) = seen
    assert str(request.url) == "https://ghe.example/api/v3/repos/octo-org/jobs/dispatches"
    assert request.headers["authorization"] == "Bearer t0ken"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert json.loads(request.content) == {"event_type": "octoqueue-job", "client_payload": {"job_id": 12}}


def test_dispatch_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    monkeypatch.delenv("GITHUB_API_URL", raising=False)
    with client_answering(204, seen) as client:
        dispatch_worker("o/r", "t", client=client, event_type="custom", payload={"queue": "images"})
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:1234")
    with client_answering(204, seen) as client:
        dispatch_worker("o/r", "t", client=client)
    assert str(seen[0].url) == "https://api.github.com/repos/o/r/dispatches"
    assert json.loads(seen[0].content) == {"event_type": "custom", "client_payload": {"queue": "images"}}
    assert str(seen[1].url) == "http://127.0.0.1:1234/repos/o/r/dispatches"
    assert json.loads(seen[1].content) == {"event_type": "octoqueue-job", "client_payload": {}}


@pytest.mark.parametrize(
    ("status", "headers", "error", "match"),
    [
        (401, {}, ConfigurationError, "not valid"),
        (404, {}, ConfigurationError, "write access"),
        (403, {}, ConfigurationError, "write access"),
        (422, {}, ConfigurationError, "rejected"),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0"}, RateLimited, "rate limited"),
        (429, {"retry-after": "7"}, RateLimited, "rate limited"),
        (502, {}, StoreUnavailable, "502"),
    ],
)
def test_dispatch_errors(status: int, headers: dict[str, str], error: type[Exception], match: str) -> None:
    with (
        client_answering(status, [], body={"message": "nope"}, headers=headers) as client,
        pytest.raises(error, match=match) as caught,
    ):
        dispatch_worker("o/r", "t", client=client)
    if status == 429:
        assert isinstance(caught.value, RateLimited) and caught.value.retry_after == 7


def test_dispatch_network_error_is_store_unavailable() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(fail)) as client, pytest.raises(StoreUnavailable):
        dispatch_worker("o/r", "t", client=client)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: dispatch_worker("noslash", "t"), "owner/name"),
        (lambda: dispatch_worker("o/r/x", "t"), "owner/name"),
        (lambda: dispatch_worker("o/r", ""), "token"),
        (lambda: dispatch_worker("o/r", "t", event_type=""), "event_type"),
        (lambda: dispatch_worker("o/r", "t", payload={str(i): i for i in range(11)}), "10"),
    ],
)
def test_dispatch_checks_its_arguments_before_any_request(call: Callable[[], None], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        call()


def test_dispatch_enabled() -> None:
    assert dispatch_enabled({}) is False
    assert dispatch_enabled({"OCTOQUEUE_DISPATCH": "0"}) is False
    assert all(dispatch_enabled({"OCTOQUEUE_DISPATCH": v}) for v in ("1", "true", "Yes", " on "))


def test_wake_worker_logs_instead_of_raising(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[httpx.Request] = []
    with client_answering(204, seen) as client:
        assert wake_worker("o/r", "t", "http://gh.test", job_id=3, client=client) is True
    with client_answering(404, seen, body={"message": "Not Found"}) as client:
        assert wake_worker("o/r", "t", "http://gh.test", job_id=4, client=client) is False
    assert "job 4 was enqueued, but the worker workflow of o/r was not woken" in caplog.text
    assert len(seen) == 2
