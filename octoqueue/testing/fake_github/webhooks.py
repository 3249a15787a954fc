"""Webhook deliveries, as GitHub's "Hookshot" sends them: signed, one attempt, from the background.

Deliveries leave from one background thread so an API response is never held up by a slow receiver.
Failed deliveries are recorded and not retried (GitHub does not retry either); :meth:`redeliver` resends
one with the same ``X-GitHub-Delivery`` GUID, as the "Redeliver" button does.

GitHub promises neither order nor a single delivery; :class:`WebhookFaults` make the emulator show both:
``reorder`` sends the deliveries of one change last first (``labeled`` before ``opened``),
``opened_without_labels`` sends ``issues.opened`` with an empty ``labels`` list, and ``duplicate`` sends every
delivery twice under the same GUID.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

USER_AGENT = "GitHub-Hookshot/fake0c7"


def sign(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    """The ``X-Hub-Signature-256`` value: ``sha256=`` + hex HMAC of the raw body keyed with the secret."""
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    return f"{algorithm}={digest}"


@dataclass
class WebhookFaults:
    """Switchable delivery faults (all off by default); see the module docstring."""

    reorder: bool = False
    opened_without_labels: bool = False
    duplicate: bool = False


@dataclass
class Delivery:
    """One delivery attempt. ``status_code`` is None until it was sent, or when the receiver was unreachable."""

    id: int
    guid: str
    event: str
    action: str | None
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    redelivery: bool = False
    #: The order in which the delivery was sent (1, 2, …); None until it was.
    sent: int | None = None
    status_code: int | None = None
    error: str | None = None
    duration: float | None = None
    delivered: threading.Event = field(default_factory=threading.Event, repr=False)


class WebhookSender:
    """Queues deliveries for one hook and posts them from a daemon thread."""

    def __init__(
        self,
        url: str,
        secret: str | None,
        *,
        repo_id: int,
        hook_id: int = 1,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.hook_id = hook_id
        self.repo_id = repo_id
        self.deliveries: list[Delivery] = []
        self.faults = WebhookFaults()
        self._batch: list[Delivery] | None = None
        self._transport = transport
        self._ids = itertools.count(1)
        self._sent = itertools.count(1)
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def emit(self, event: str, payload: dict[str, Any]) -> Delivery:
        """Queue a delivery of ``payload`` as ``event``; returns its record at once."""
        if self.faults.opened_without_labels and event == "issues" and payload.get("action") == "opened":
            payload = {**payload, "issue": {**payload["issue"], "labels": []}}
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        delivery = self._enqueue(event, payload, body, str(uuid.uuid4()), redelivery=False)
        if self.faults.duplicate:
            self._enqueue(event, payload, body, delivery.guid, redelivery=False)
        return delivery

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the deliveries emitted inside (one change) and send them together, last first under ``reorder``."""
        with self._lock:
            outer = self._batch is not None
            if not outer:
                self._batch = []
        try:
            yield
        finally:
            if not outer:
                with self._lock:
                    held, self._batch = self._batch or [], None
                for delivery in reversed(held) if self.faults.reorder else held:
                    self._queue.put(delivery)

    def redeliver(self, guid: str) -> Delivery:
        """Send an earlier delivery again, byte for byte and with the same GUID; KeyError when unknown."""
        with self._lock:
            original = next((d for d in self.deliveries if d.guid == guid), None)
        if original is None:
            raise KeyError(guid)
        return self._enqueue(original.event, original.payload, original.body, guid, redelivery=True)

    def _enqueue(self, event: str, payload: dict[str, Any], body: bytes, guid: str, *, redelivery: bool) -> Delivery:
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": str(self.hook_id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(self.repo_id),
        }
        if self.secret is not None:
            headers["X-Hub-Signature"] = sign(self.secret, body, "sha1")
            headers["X-Hub-Signature-256"] = sign(self.secret, body)
        delivery = Delivery(next(self._ids), guid, event, payload.get("action"), payload, body, headers, redelivery)
        with self._lock:
            if self._closed:
                raise RuntimeError("webhook sender is closed")
            self.deliveries.append(delivery)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fake-github-hookshot", daemon=True)
                self._thread.start()
            if self._batch is not None:
                self._batch.append(delivery)
                return delivery
        self._queue.put(delivery)
        return delivery

    def _run(self) -> None:
        with httpx.Client(transport=self._transport, timeout=10.0) as client:
            while (delivery := self._queue.get()) is not None:
                started = time.monotonic()
                delivery.sent = next(self._sent)
                try:
                    response = client.post(self.url, content=delivery.body, headers=delivery.headers)
                    delivery.status_code = response.status_code
                except httpx.HTTPError as exc:
                    delivery.error = f"{type(exc).__name__}: {exc}"
                delivery.duration = time.monotonic() - started
                delivery.delivered.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery was attempted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = list(self.deliveries)
        return all(d.delivered.wait(max(0.0, deadline - time.monotonic())) for d in pending)

    def close(self) -> None:
        """Send what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=15)
