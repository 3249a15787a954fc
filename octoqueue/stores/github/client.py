"""GitHub plumbing for :class:`~octoqueue.stores.github.GitHubStore`: one HTTP client, pacing, retries, clock.

Everything here is about talking to GitHub well, nothing about jobs:

* :class:`GitHubClient` wraps one githubkit ``GitHub`` object whose single ``httpx.Client`` is shared by all threads
  for the life of the store (githubkit would otherwise open a client per request outside a ``with`` block).
  Its :meth:`~GitHubClient.call` is the one place where GitHub's answers become octoqueue's errors.
* :class:`Pacer` is githubkit's throttler hook: at most ``max_concurrency`` requests in flight, writes paced to
  80 per sliding minute and 500 per sliding hour by default (GitHub's secondary limits), and a global hold after
  a rate-limit answer so that every thread waits, not only the one that was refused. GitHub counts those limits
  per token, so every store of a process on one token and API root shares one pacer (:func:`shared_pacer`), and
  a request with a deadline (a holder's finish, the write after a claim ref) is refused with
  :class:`~octoqueue.errors.DeadlinePassed` rather than sent after it.
* :class:`ServerClock` keeps the offset between this machine and GitHub from the ``Date`` headers, so leases are
  measured on GitHub's clock.
* Conditional GETs: :meth:`GitHubClient.get` remembers ETags and answers from its cache on ``304 Not Modified``
  (which GitHub does not count against the primary rate limit).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import math
import random
import threading
import time
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Collection, Generator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
import httpx
from githubkit import GitHub
from githubkit.exception import RequestError, RequestFailed
from githubkit.response import Response
from githubkit.throttling import BaseThrottler

from octoqueue.errors import AccessDenied, DeadlinePassed, JobNotFound, RateLimited, StoreUnavailable

log = logging.getLogger("octoqueue.github")

#: The REST API version sent with plain GETs (githubkit's typed calls send the version of their schemas).
API_VERSION = "2022-11-28"

#: Methods GitHub may count as content-creating/mutative.
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class Ambiguous(Exception):
    """A request that is not safe to repeat failed without telling whether it took effect (5xx, timeout)."""


class OffRoot(StoreUnavailable):
    """A request would have left the API root (e.g. a forged cursor or ``link`` URL): it is not sent."""


# -- rate-limit information ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RateLimit:
    """GitHub's primary rate-limit counters from the latest response (None until a response carried them)."""

    limit: int | None = None
    remaining: int | None = None
    used: int | None = None
    reset: datetime | None = None
    resource: str | None = None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def rate_limit_from(headers: Mapping[str, str]) -> RateLimit | None:
    limit = _int(headers.get("x-ratelimit-limit"))
    remaining = _int(headers.get("x-ratelimit-remaining"))
    if limit is None and remaining is None:
        return None
    reset = _int(headers.get("x-ratelimit-reset"))
    return RateLimit(
        limit=limit,
        remaining=remaining,
        used=_int(headers.get("x-ratelimit-used")),
        reset=datetime.fromtimestamp(reset, UTC) if reset is not None else None,
        resource=headers.get("x-ratelimit-resource"),
    )


# -- the server's clock ----------------------------------------------------------------------------------------
class ServerClock:
    """GitHub's time, estimated from ``Date`` headers (one-second resolution).

    A response stamped ``D`` (whole seconds) that was sent at local time ``s`` and received at ``r`` proves that
    the offset ``server - local`` lies in ``[D - r, D + 1 - s]``. The clock intersects these intervals and uses
    the offset in the intersection closest to zero: when this machine's clock agrees with GitHub's (NTP), the
    offset is exactly 0 and time keeps its sub-second precision; when it does not, the smallest correction
    consistent with every observation is applied. An observation that contradicts the others (a clock was
    stepped) restarts the estimate from that observation.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._low = float("-inf")
        self._high = float("inf")

    def observe(self, date_header: str, sent: float, received: float) -> None:
        try:
            stamp = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            return
        low, high = stamp - received, stamp + 1.0 - sent
        with self._lock:
            if low > self._high or high < self._low:
                self._low, self._high = low, high
            else:
                self._low, self._high = max(self._low, low), min(self._high, high)

    def offset(self) -> float:
        with self._lock:
            if self._low <= 0.0 <= self._high:
                return 0.0
            return self._low if self._low > 0.0 else self._high

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.offset(), UTC)


# -- pacing ----------------------------------------------------------------------------------------------------
class _Window:
    """At most ``limit`` events in any ``window`` seconds (a sliding log, as GitHub counts)."""

    def __init__(self, limit: float, window: float) -> None:
        self.limit = max(1, int(limit))
        self.window = window
        self.sent: deque[float] = deque()

    def wait_time(self, now: float, need: int = 1) -> float:
        """Seconds until one more event may happen while ``need - 1`` further places stay free for others."""
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        need = max(1, min(need, self.limit))
        if len(self.sent) + need <= self.limit:
            return 0.0
        return self.sent[-(self.limit - need + 1)] + self.window - now


#: The deadline (``time.monotonic()``) of the request this thread is sending, for :meth:`Pacer.acquire`.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("octoqueue_deadline", default=None)


class Pacer(BaseThrottler):
    """githubkit throttler: concurrency cap, write pacing, global holds.

    ``per_minute``/``per_hour`` (None: unlimited) bound the requests whose method is in ``methods`` in any
    sliding minute/hour — GitHub's secondary limits are 80/min and 500/h for content-creating requests. A sliding
    log rather than a token bucket: a bucket of 80 refilling at 80/min lets up to 160 through in one minute.
    :meth:`hold` makes every request wait until a rate-limit window has passed.

    A write with a deadline (sent by :meth:`GitHubClient.call` with ``deadline=``) goes first: a write without one
    waits while fewer than two places are free in a window, so the write that must follow a claim ref, or a
    holder's finish, finds its place. A write whose wait would end after its deadline is not sent:
    :class:`~octoqueue.errors.DeadlinePassed` is raised instead.
    """

    def __init__(
        self,
        *,
        per_minute: float | None = 80,
        per_hour: float | None = 500,
        methods: frozenset[str] = WRITE_METHODS,
        max_concurrency: int = 100,
    ) -> None:
        self.methods = frozenset(m.upper() for m in methods)
        self._windows = [_Window(n, w) for n, w in ((per_minute, 60.0), (per_hour, 3600.0)) if n is not None and n > 0]
        self._lock = threading.Lock()
        self._hold_until = 0.0
        self._blocked_until = 0.0
        self._semaphore = threading.BoundedSemaphore(max_concurrency)

    def hold(self, seconds: float) -> None:
        """Let no request start for ``seconds`` (a rate-limit answer asked us to wait): they sleep until then."""
        with self._lock:
            self._hold_until = max(self._hold_until, time.monotonic() + seconds)

    def block(self, seconds: float) -> None:
        """Refuse requests for ``seconds`` (a wait too long to sleep): :meth:`blocked_for` says how long is left."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)

    def blocked_for(self) -> float:
        with self._lock:
            return max(0.0, self._blocked_until - time.monotonic())

    def clear(self) -> None:
        """Forget holds and blocks (e.g. after the rate-limit window was seen to reset)."""
        with self._lock:
            self._hold_until = self._blocked_until = 0.0

    def tighten(self, *, per_minute: float | None, per_hour: float | None, methods: Collection[str]) -> None:
        """Pace at least as strictly as asked (another store sharing this pacer was configured more strictly)."""
        with self._lock:
            self.methods |= frozenset(m.upper() for m in methods)
            for limit, span in ((per_minute, 60.0), (per_hour, 3600.0)):
                if limit is None or limit <= 0:
                    continue
                found = next((w for w in self._windows if w.window == span), None)
                if found is None:
                    self._windows.append(_Window(limit, span))
                else:
                    found.limit = min(found.limit, max(1, int(limit)))

    def _delay(self, method: str, urgent: bool = False) -> float:
        """Seconds to wait before ``method`` may be sent; 0 when it may go now (its tokens are then taken).
        ``urgent``: a write with a deadline, which may take the last free place of a window."""
        with self._lock:
            now = time.monotonic()
            wait = self._hold_until - now
            if wait > 0:
                return wait
            if method.upper() not in self.methods:
                return 0.0
            need = 1 if urgent else 2
            wait = max((w.wait_time(now, need) for w in self._windows), default=0.0)
            if wait > 0:
                return wait
            for window in self._windows:
                window.sent.append(now)
            return 0.0

    def _wait(self, method: str) -> float:
        """The next sleep before ``method`` may go (0: it goes now); raises DeadlinePassed when the wait would
        outlast the deadline of the request being sent."""
        deadline = _DEADLINE.get()
        wait = self._delay(method, urgent=deadline is not None)
        if wait > 0 and deadline is not None and time.monotonic() + wait > deadline:
            raise DeadlinePassed(
                f"{method} not sent: GitHub's rate limit asks to wait {wait:.1f} s, past the request's deadline", wait
            )
        return min(wait, 1.0)

    @contextmanager
    def acquire(self, request: httpx.Request) -> Generator[None, Any, Any]:
        while (wait := self._wait(request.method)) > 0:
            time.sleep(wait)
        with self._semaphore:
            yield

    @asynccontextmanager
    async def async_acquire(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        while (wait := self._wait(request.method)) > 0:
            await anyio.sleep(wait)
        yield


#: Pacing keeps this share of each GitHub limit unused: GitHub counts a write when it arrives, a little after this
#: process counted it, and other processes on the token are not seen here.
PACING_MARGIN = 0.05

_shared_lock = threading.Lock()
_shared: dict[tuple[str, str], Pacer] = {}
_shared_by_transport: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Pacer]] = weakref.WeakKeyDictionary()


def credential_key(auth: Any) -> str:
    """Who GitHub counts a request against, without keeping the secret: a token's hash, an App installation."""
    if auth is None:
        return "anonymous"
    if isinstance(auth, str):
        return "token:" + hashlib.sha256(auth.encode()).hexdigest()
    app_id, installation = getattr(auth, "app_id", None), getattr(auth, "installation_id", None)
    if app_id is not None:
        return f"app:{app_id}:{installation}"
    return f"auth:{id(auth)}"


def shared_pacer(
    credential: str,
    api_root: str,
    *,
    transport: Any = None,
    per_minute: float | None = 80,
    per_hour: float | None = 500,
    methods: Collection[str] = WRITE_METHODS,
    max_concurrency: int = 100,
) -> Pacer:
    """The one :class:`Pacer` of this process for ``credential`` (see :func:`credential_key`) on ``api_root``.

    GitHub's secondary limits count per token, not per client object: six stores on one token each pacing to 80
    writes a minute would send 480. Each limit is paced with :data:`PACING_MARGIN` to spare; when stores ask for
    different limits the strictest holds. Stores given their own ``transport`` (the emulator's, in tests) share a
    pacer only with stores on that same transport object, as it stands for a GitHub of its own.
    """

    def scaled(limit: float | None) -> float | None:
        return None if limit is None or limit <= 0 else max(1, math.floor(limit * (1 - PACING_MARGIN)))

    minute, hour = scaled(per_minute), scaled(per_hour)
    key = (credential, api_root.rstrip("/"))
    with _shared_lock:
        registry: dict[tuple[str, str], Pacer]
        if transport is None:
            registry = _shared
        else:
            try:
                registry = _shared_by_transport.setdefault(transport, {})
            except TypeError:  # a transport that cannot be referenced weakly: it keeps a pacer of its own
                registry = {}
        pacer = registry.get(key)
        if pacer is None:
            pacer = registry[key] = Pacer(
                per_minute=minute, per_hour=hour, methods=frozenset(methods), max_concurrency=max_concurrency
            )
        else:
            pacer.tighten(per_minute=minute, per_hour=hour, methods=methods)
        return pacer


# -- the githubkit object with one shared httpx client ------------------------------------------------------------
class _SharedClientGitHub(GitHub[Any]):
    """githubkit's ``GitHub`` whose sync requests all go through one long-lived ``httpx.Client``.

    githubkit keeps its client in a context variable, so outside ``with github:`` (and in every worker thread) it
    would build and tear down a client, and a TLS connection, per request. ``httpx.Client`` is thread-safe.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._oq_lock = threading.Lock()
        self._oq_client: httpx.Client | None = None

    @contextmanager
    def get_sync_client(self) -> Generator[httpx.Client, None, None]:
        client = self._oq_client
        if client is None:
            with self._oq_lock:
                if self._oq_client is None:
                    self._oq_client = self._create_sync_client()
                client = self._oq_client
        yield client

    def close_client(self) -> None:
        with self._oq_lock:
            if self._oq_client is not None:
                self._oq_client.close()
                self._oq_client = None


# -- conditional GETs ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fetched:
    """A GET's answer (from the cache when GitHub said 304)."""

    url: str
    data: Any
    etag: str | None
    links: dict[str, str]
    not_modified: bool = False


def parse_links(header: str | None) -> dict[str, str]:
    """``{rel: url}`` from a ``link`` header."""
    links: dict[str, str] = {}
    for part in (header or "").split(","):
        section = part.split(";")
        if len(section) < 2:
            continue
        url = section[0].strip().strip("<>")
        for attr in section[1:]:
            key, _, value = attr.strip().partition("=")
            if key == "rel":
                links[value.strip('"')] = url
    return links


# -- the client ---------------------------------------------------------------------------------------------------
class GitHubClient:
    """One githubkit client plus octoqueue's retry, backoff and error rules. Thread-safe.

    ``retries``: further tries for 5xx, timeouts and connection errors on requests that are safe to repeat,
    ``retry_backoff`` seconds doubling each time. Rate-limit answers (403/429) are honoured: ``retry-after``,
    else ``x-ratelimit-reset`` when no requests remain, else ``rate_limit_backoff`` seconds doubling each time;
    a wait longer than ``max_rate_limit_wait`` is not slept but raised as :class:`RateLimited`.
    """

    def __init__(
        self,
        *,
        auth: Any,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        pacer: Pacer | None = None,
        retries: int = 3,
        retry_backoff: float = 1.0,
        rate_limit_backoff: float = 60.0,
        max_rate_limit_wait: float = 60.0,
        user_agent: str | None = None,
        cache_size: int = 256,
    ) -> None:
        self.pacer = pacer or Pacer()
        self.base_url = base_url.rstrip("/")
        self.clock = ServerClock()
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.rate_limit_backoff = rate_limit_backoff
        self.max_rate_limit_wait = max_rate_limit_wait
        self.stats: Counter[str] = Counter()
        self._rate_limit = RateLimit()
        self._lock = threading.Lock()
        self._etags: OrderedDict[str, Fetched] = OrderedDict()
        self._cache_size = cache_size
        self._sent = threading.local()
        self.gh = _SharedClientGitHub(
            auth,
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            http_cache=False,
            auto_retry=False,
            throttler=self.pacer,
            user_agent=user_agent or "octoqueue",
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )

    # -- bookkeeping hooks ---------------------------------------------------------------------------------------
    def _on_request(self, request: httpx.Request) -> None:
        self.check_on_root(str(request.url))  # the last line of defence: the token never leaves the API root
        request.extensions["octoqueue_sent"] = time.time()
        self._sent.at = time.monotonic()  # past the pacer: the request leaves now

    def last_sent(self) -> float:
        """When (``time.monotonic()``) this thread's latest request left, after any wait in the pacer."""
        return float(getattr(self._sent, "at", time.monotonic()))

    def check_on_root(self, url: str) -> None:
        """Raise :class:`OffRoot` unless ``url`` is a path or a URL under the API root (the token goes with it)."""
        parts = urlsplit(url)
        path = parts.path
        if parts.scheme or parts.netloc:
            if not url.startswith(self.base_url + "/"):
                raise OffRoot(f"refusing to send a request outside {self.base_url}: {url!r}")
        elif not path.startswith("/") or path.startswith("//"):
            raise OffRoot(f"refusing to send a request to {url!r}: not a path under {self.base_url}")
        if ".." in path.split("/") or "\\" in path:
            raise OffRoot(f"refusing to send a request to {url!r}: the path climbs out of the API root")

    def _on_response(self, response: httpx.Response) -> None:
        received = time.time()
        sent = response.request.extensions.get("octoqueue_sent", received)
        date = response.headers.get("date")
        if date:
            self.clock.observe(date, sent, received)
        limits = rate_limit_from(response.headers)
        method = response.request.method
        with self._lock:
            if limits is not None:
                self._rate_limit = limits
            self.stats["requests"] += 1
            self.stats[method] += 1
            if method in WRITE_METHODS:
                self.stats["writes"] += 1
            if response.status_code == 304:
                self.stats["not_modified"] += 1

    @property
    def rate_limit(self) -> RateLimit:
        with self._lock:
            return self._rate_limit

    def close(self) -> None:
        self.gh.close_client()

    # -- requests ------------------------------------------------------------------------------------------------
    def call(
        self,
        fn: Callable[[GitHub[Any]], Response[Any]],
        *,
        idempotent: bool = True,
        expect: tuple[int, ...] = (),
        job_id: int | None = None,
        deadline: float | None = None,
        what: str = "GitHub request",
    ) -> Response[Any]:
        """Run ``fn(github)`` with retries; return its response, or the error response when its status is in
        ``expect``.

        Raises :class:`JobNotFound` for 404/410 when ``job_id`` is given; :class:`RateLimited` when GitHub asks
        for a longer wait than ``max_rate_limit_wait`` (and, without sending, until that wait is over);
        :class:`Ambiguous` when a non-idempotent request failed with a 5xx, timeout or connection error;
        :class:`DeadlinePassed` when a retry would start after ``deadline`` (``time.monotonic()``); and
        :class:`StoreUnavailable` for everything else.
        """
        failures = 0
        limited = 0
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlinePassed(f"{what}: gave up, its deadline passed", 0.0)
            blocked = self.pacer.blocked_for()
            if blocked > 0:
                raise RateLimited(f"{what}: not sent, GitHub's rate limit resets in {blocked:.0f} s", blocked)
            bound = _DEADLINE.set(deadline)  # the pacer refuses to wait past it (DeadlinePassed)
            try:
                return fn(self.gh)
            except DeadlinePassed as exc:
                raise DeadlinePassed(f"{what}: {exc}", exc.retry_after) from None
            except RequestFailed as exc:
                response = exc.response
                status = response.status_code
                if status in expect:
                    return response
                if _is_rate_limited(response):
                    wait = self._rate_limit_wait(response, limited)
                    limited += 1
                    log.warning("%s: GitHub rate limit (%s); waiting %.1f s", what, status, wait)
                    if wait > self.max_rate_limit_wait:
                        self.pacer.block(wait)  # later calls fail fast instead of knocking on a closed door
                    else:
                        self.pacer.hold(wait)
                    message = f"{what}: GitHub's rate limit was hit ({_message(response)}); retry in {wait:.0f} s"
                    if wait > self.max_rate_limit_wait:
                        raise RateLimited(message, wait) from exc
                    if deadline is not None and time.monotonic() + wait > deadline:
                        raise DeadlinePassed(f"{message}, past the request's deadline", wait) from exc
                    continue  # the pacer's hold makes this thread (and every other) wait
                if status >= 500:
                    if not idempotent:
                        raise Ambiguous(f"{what}: GitHub answered {status}") from exc
                    if failures < self.retries:
                        self._backoff(failures, what, f"GitHub answered {status}")
                        failures += 1
                        continue
                    raise StoreUnavailable(
                        f"{what}: GitHub answered {status} {_message(response)} after {failures + 1} tries"
                    ) from exc
                if status in (404, 410) and job_id is not None:
                    raise JobNotFound(job_id) from exc
                if status in (401, 403):
                    raise AccessDenied(access_denied_message(what, status, _message(response)), status) from exc
                raise StoreUnavailable(f"{what}: GitHub answered {status}: {_message(response)}") from exc
            except RequestError as exc:
                if not idempotent:
                    raise Ambiguous(f"{what}: {exc.exc!r}") from exc
                if failures < self.retries:
                    self._backoff(failures, what, repr(exc.exc))
                    failures += 1
                    continue
                raise StoreUnavailable(f"{what}: GitHub could not be reached: {exc.exc!r}") from exc
            finally:
                _DEADLINE.reset(bound)

    def _backoff(self, failures: int, what: str, why: str) -> None:
        wait = self.retry_backoff * (2**failures) * random.uniform(0.75, 1.25)
        log.warning("%s: %s; retrying in %.2f s", what, why, wait)
        time.sleep(wait)

    def _rate_limit_wait(self, response: Response[Any], limited: int) -> float:
        headers = response.headers
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                try:
                    when = parsedate_to_datetime(retry_after)
                    return max(0.0, (when - self.clock.now()).total_seconds())
                except (TypeError, ValueError):
                    pass
        reset = _int(headers.get("x-ratelimit-reset"))
        if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
            return max(0.0, reset - self.clock.now().timestamp()) + 1.0
        return self.rate_limit_backoff * (2**limited)

    # -- conditional GETs ----------------------------------------------------------------------------------------
    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        return f"{path}?{query}" if query else path

    def get(self, url: str, *, job_id: int | None = None, what: str = "GET", use_cache: bool = True) -> Fetched:
        """GET ``url`` (a path with query, or a ``link`` URL) with ``If-None-Match`` when its ETag is known.

        ``url`` must stay on the API root (:meth:`check_on_root`): ``link`` URLs come from responses.
        """
        self.check_on_root(url)
        with self._lock:
            cached = self._etags.get(url) if use_cache else None
        headers = {"X-GitHub-Api-Version": API_VERSION}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        response = self.call(lambda gh: gh.request("GET", url, headers=headers), job_id=job_id, what=what)
        if response.status_code == 304 and cached is not None:
            with self._lock:
                self._etags.move_to_end(url)
            return Fetched(url, cached.data, cached.etag, cached.links, not_modified=True)
        fetched = Fetched(url, response.json(), response.headers.get("etag"), parse_links(response.headers.get("link")))
        if use_cache and fetched.etag:
            with self._lock:
                self._etags[url] = fetched
                self._etags.move_to_end(url)
                while len(self._etags) > self._cache_size:
                    self._etags.popitem(last=False)
        return fetched


def access_denied_message(what: str, status: int, message: str) -> str:
    """What a 401 or a (non rate-limit) 403 means for octoqueue, and what fixes it."""
    if status == 401:
        return (
            f"{what}: GitHub refused the token ({status} {message}): it is missing, wrong or expired; "
            "give a valid token (GH_TOKEN or GITHUB_TOKEN)"
        )
    return (
        f"{what}: GitHub refused the request ({status} {message}): the token lacks a permission octoqueue needs; "
        "it must be able to write issues and contents (for a workflow token: permissions issues: write and "
        "contents: write)"
    )


def _message(response: Response[Any]) -> str:
    try:
        body = response.raw_response.json()
    except ValueError:
        return response.raw_response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message", ""))
    return ""


def error_message(response: Response[Any]) -> str:
    """GitHub's ``message`` plus the messages/codes in ``errors``, for matching 422 reasons."""
    try:
        body = response.raw_response.json()
    except ValueError:
        return response.raw_response.text[:500]
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("message", ""))]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            parts.extend(str(error.get(k, "")) for k in ("code", "message"))
        else:
            parts.append(str(error))
    return " ".join(p for p in parts if p)


def _is_rate_limited(response: Response[Any]) -> bool:
    status = response.status_code
    if status == 429:
        return True
    if status != 403:
        return False
    if "retry-after" in response.headers or response.headers.get("x-ratelimit-remaining") == "0":
        return True
    text = _message(response).lower()
    return "rate limit" in text or "abuse" in text
