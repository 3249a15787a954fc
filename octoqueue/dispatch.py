"""Waking a worker workflow with a ``repository_dispatch`` event.

Issues created with a workflow's ``GITHUB_TOKEN`` start no workflow runs (GitHub suppresses events made by that
token, except ``workflow_dispatch`` and ``repository_dispatch``), so a producer running inside Actions, or a
server using that token, sends a ``repository_dispatch`` after enqueueing to start the worker workflow at once
instead of waiting for its schedule. With a personal access token or a GitHub App token the ``issues`` event
already starts the worker and no dispatch is needed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import httpx

from octoqueue.errors import ConfigurationError, OctoqueueError, RateLimited, StoreUnavailable

log = logging.getLogger("octoqueue.dispatch")

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_EVENT_TYPE = "octoqueue-job"

#: Environment variable that turns waking on (``1``/``true``/``yes``/``on``).
DISPATCH_ENV = "OCTOQUEUE_DISPATCH"

_TRUE = frozenset({"1", "true", "yes", "on"})


def dispatch_enabled(env: Mapping[str, str] | None = None) -> bool:
    """True when env ``OCTOQUEUE_DISPATCH`` asks producers to wake the worker workflow (off by default)."""
    value = (os.environ if env is None else env).get(DISPATCH_ENV, "")
    return value.strip().lower() in _TRUE


def dispatch_worker(
    repo: str,
    token: str | None,
    base_url: str | None = None,
    event_type: str = DEFAULT_EVENT_TYPE,
    job_id: int | None = None,
    *,
    payload: Mapping[str, Any] | None = None,
    client: httpx.Client | None = None,
    timeout: float = 10.0,
) -> None:
    """Send ``repository_dispatch`` ``event_type`` to ``repo`` ("owner/name") so its worker workflow runs.

    ``client_payload`` is ``payload`` plus ``{"job_id": job_id}`` when a job id is given. ``base_url`` defaults to
    env ``GITHUB_API_URL``, else https://api.github.com. The token needs write access to the repository's
    contents (``contents: write`` for ``GITHUB_TOKEN``, the ``repo`` scope for a classic PAT). Returns once
    GitHub accepted the event (204); raises :class:`ConfigurationError` for a bad repository, token or event
    type, :class:`RateLimited` when rate limited, :class:`StoreUnavailable` for other failures. GitHub answers
    before any workflow starts; a repository with no workflow listening for the event accepts it all the same.
    """
    owner, sep, name = repo.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ConfigurationError(f"repository {repo!r} must look like owner/name")
    if not token:
        raise ConfigurationError("a token is needed to send repository_dispatch (set GH_TOKEN or GITHUB_TOKEN)")
    if not event_type or len(event_type) > 100:
        raise ConfigurationError("event_type must be 1 to 100 characters")
    client_payload: dict[str, Any] = dict(payload or {})
    if job_id is not None:
        client_payload["job_id"] = int(job_id)
    if len(client_payload) > 10:
        raise ConfigurationError("GitHub accepts at most 10 top-level client_payload properties")
    base = (base_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    url = f"{base}/repos/{owner}/{name}/dispatches"
    headers = {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "octoqueue",
    }
    body = {"event_type": event_type, "client_payload": client_payload}
    try:
        if client is not None:
            response = client.post(url, json=body, headers=headers, timeout=timeout)
        else:
            with httpx.Client(timeout=timeout) as own:
                response = own.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise StoreUnavailable(f"repository_dispatch to {repo} failed: {exc}") from exc
    _raise_for(response, repo)


def wake_worker(
    repo: str,
    token: str | None,
    base_url: str | None = None,
    job_id: int | None = None,
    event_type: str = DEFAULT_EVENT_TYPE,
    *,
    client: httpx.Client | None = None,
) -> bool:
    """:func:`dispatch_worker` for a producer that has already enqueued: a failure is logged, not raised (the
    job exists and the worker's schedule will find it). Returns whether GitHub accepted the event."""
    try:
        dispatch_worker(repo, token, base_url, event_type, job_id, client=client)
    except OctoqueueError as exc:
        prefix = f"job {job_id} was enqueued, but " if job_id is not None else ""
        log.warning("%sthe worker workflow of %s was not woken: %s", prefix, repo, exc)
        return False
    return True


def _raise_for(response: httpx.Response, repo: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    try:
        message = str(response.json().get("message", "")) or response.reason_phrase
    except ValueError:
        message = response.text[:200] or response.reason_phrase
    remaining = response.headers.get("x-ratelimit-remaining")
    if status == 429 or (status == 403 and (remaining == "0" or "rate limit" in message.lower())):
        raise RateLimited(f"repository_dispatch to {repo} was rate limited: {message}", _retry_after(response))
    if status == 401:
        raise ConfigurationError(f"repository_dispatch to {repo} refused: the token is not valid ({message})")
    if status in (403, 404):
        raise ConfigurationError(
            f"repository_dispatch to {repo} refused ({status} {message}): the token needs write access to "
            "the repository's contents"
        )
    if status == 422:
        raise ConfigurationError(f"repository_dispatch to {repo} rejected: {message}")
    raise StoreUnavailable(f"repository_dispatch to {repo} failed: {status} {message}")


def _retry_after(response: httpx.Response) -> float:
    header = response.headers.get("retry-after")
    if header and header.strip().isdigit():
        return float(header)
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - time.time())
    return 60.0
