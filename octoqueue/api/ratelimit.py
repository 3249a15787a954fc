"""Per-client rate limiting of the producer endpoints: a sliding window of ``requests`` per ``window`` seconds.

A client is its API key when it presents a valid one, else its IP address (behind a proxy, start uvicorn with
``--proxy-headers``/``--forwarded-allow-ips`` so the IP is the real client's). Counts live in this process:
with N server processes a client may make N times the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Request, Response, Security

from octoqueue.api.auth import KeyRing, Principal, api_key_header


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float = 0.0


class RateLimiter:
    """At most ``requests`` hits per client in any ``window`` seconds; ``requests=0`` turns limiting off."""

    def __init__(
        self,
        requests: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.requests = requests
        self.window = window
        self._clock = clock
        self._max_clients = max_clients
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.requests > 0

    def hit(self, client: str) -> Decision:
        """Count one request by ``client`` unless it is over the limit; say whether it may proceed."""
        return self._decide(client, count=True)

    def check(self, client: str) -> Decision:
        """Whether ``client`` is under the limit now, counting nothing (for limits on failures: count them with
        :meth:`hit` once they happen)."""
        return self._decide(client, count=False)

    def _decide(self, client: str, *, count: bool) -> Decision:
        if not self.enabled:
            return Decision(True, 0, 0)
        now = self._clock()
        with self._lock:
            hits = self._hits.pop(client, None) or deque()
            self._hits[client] = hits  # most recently seen last, so eviction drops the stalest client
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.requests:
                return Decision(False, self.requests, 0, max(0.0, hits[0] + self.window - now))
            if count:
                hits.append(now)
            while len(self._hits) > self._max_clients:
                self._hits.popitem(last=False)
            return Decision(True, self.requests, self.requests - len(hits))


def client_identity(request: Request, ring: KeyRing, key: str | None) -> str:
    return identity_of(request, ring.identify(key) if key else None)


def identity_of(request: Request, principal: Principal | None) -> str:
    """Whom a request counts against: the key of ``principal`` (who presented a valid key), else the client's IP."""
    if principal is not None and principal.fingerprint:
        return f"key:{principal.fingerprint}"
    host = request.client.host if request.client else "unknown"
    return f"ip:{host}"


def limit_headers(decision: Decision) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}


async def rate_limit(
    request: Request, response: Response, key: Annotated[str | None, Security(api_key_header)]
) -> None:
    """Dependency: 429 with ``Retry-After`` when the client is over its limit; else count the request."""
    limiter: RateLimiter = request.app.state.limiter
    if not limiter.enabled:
        return
    decision = limiter.hit(client_identity(request, request.app.state.keys, key))
    headers = limit_headers(decision)
    if not decision.allowed:
        wait = max(1, math.ceil(decision.retry_after))
        raise HTTPException(
            429,
            detail=f"Rate limit exceeded: at most {limiter.requests} requests per {limiter.window:g} s; "
            f"retry in {wait} s",
            headers={**headers, "Retry-After": str(wait)},
        )
    response.headers.update(headers)


__all__ = ["Decision", "RateLimiter", "client_identity", "identity_of", "limit_headers", "rate_limit"]
