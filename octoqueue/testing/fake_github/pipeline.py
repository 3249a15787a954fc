"""What every request goes through, in GitHub's order: concurrency, auth, primary and secondary limits,
injected faults, the handler, then conditional-request handling and GitHub's response headers.

Handlers are ``async def handler(ctx: Ctx) -> Reply``; :func:`endpoint` turns one into a Starlette endpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from octoqueue.testing.fake_github.clock import http_date, parse_http_date
from octoqueue.testing.fake_github.errors import DOCS_ROOT, GitHubError, invalid_request, validation_failed
from octoqueue.testing.fake_github.faults import Faults
from octoqueue.testing.fake_github.git import GitRefs
from octoqueue.testing.fake_github.issues import Origin, Tracker
from octoqueue.testing.fake_github.limits import WRITE_METHODS, RateLimits
from octoqueue.testing.fake_github.payloads import Renderer
from octoqueue.testing.fake_github.replica import Replica
from octoqueue.testing.fake_github.state import RepoState

DEFAULT_API_VERSION = "2022-11-28"
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


@dataclass
class Backend:
    """Everything handlers reach: the repository, its rules, the limits and faults, and the request log."""

    state: RepoState
    tracker: Tracker
    refs: GitRefs
    limits: RateLimits
    faults: Faults
    replica: Replica
    token: str | None
    #: The token may read but not write, as a workflow's GITHUB_TOKEN without ``issues: write``: every write
    #: answers 403 "Resource not accessible by integration".
    token_read_only: bool = False
    request_log: list[tuple[str, str, int]] = field(default_factory=list)
    log_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Reply:
    """A handler's answer: status, JSON data (None for an empty body) and extra headers."""

    status: int = 200
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Epoch seconds for ``last-modified`` on single resources; enables ``If-Modified-Since``.
    last_modified: float | None = None


class Ctx:
    """One request, as handlers see it."""

    def __init__(self, request: Request, backend: Backend, login: str | None) -> None:
        self.request = request
        self.backend = backend
        self.login = login
        self.base = str(request.base_url).rstrip("/")
        self.render = Renderer(backend.state, self.base)
        self.paused = False

    @property
    def origin(self) -> Origin:
        assert self.login is not None, "writes are authenticated by the pipeline"
        return Origin(self.login, self.base)

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def number(self, name: str = "number") -> int:
        return int(self.request.path_params[name])

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)

    def choice(self, name: str, allowed: Sequence[str], default: str) -> str:
        """A query parameter restricted to ``allowed``; 422 otherwise, as GitHub validates them."""
        value = self.request.query_params.get(name, default)
        if value not in allowed:
            raise validation_failed("Issue", name, "invalid")
        return value

    async def pause(self) -> None:
        """Spend this request's injected latency (once). Handlers call it between a read and the write
        that depends on it, to open the same window for races that GitHub has."""
        if not self.paused:
            self.paused = True
            await self.backend.faults.pause()

    async def json(self) -> Any:
        """The request body; 400 "Problems parsing JSON" when it is not JSON, ``{}`` when empty."""
        raw = await self.request.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise GitHubError(400, "Problems parsing JSON") from None

    async def json_object(self) -> dict[str, Any]:
        body = await self.json()
        if not isinstance(body, dict):
            raise invalid_request(f"For 'links/0/schema', {json.dumps(body)} is not an object.")
        return body

    def page(self, items: Sequence[Any], render: Callable[[Any], Any]) -> Reply:
        """One page of ``items`` (``per_page`` ≤ 100, default 30) with GitHub's ``link`` header."""
        per_page = min(100, max(1, _int(self.query("per_page"), 30)))
        page = max(1, _int(self.query("page"), 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        url = self.request.url
        if page > 1:
            links.append(("prev", min(page - 1, last)))
        if page < last:
            links += [("next", page + 1), ("last", last)]
        if page > 1:
            links.append(("first", 1))
        headers = {}
        if links:
            headers["link"] = ", ".join(f'<{url.include_query_params(page=n)}>; rel="{rel}"' for rel, n in links)
        return Reply(200, [render(item) for item in chunk], headers)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


Handler = Callable[[Ctx], Awaitable[Reply]]


def endpoint(docs: str, *, counted: bool = True) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler in the pipeline. ``docs`` is the endpoint's documentation page (errors link to it);
    ``counted=False`` exempts it from the primary limit (``GET /rate_limit``, as on GitHub)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            return await _pipeline(request, handler, docs, counted)

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap


async def _pipeline(request: Request, handler: Handler, docs: str, counted: bool) -> Response:
    backend: Backend = request.app.state.backend
    limits = backend.limits
    charged = False
    request.state.request_id = _request_id()
    if not limits.enter():
        reply = _error(_secondary_limit(60, request.state.request_id), docs)
    else:
        try:
            charged, reply = await _process(request, backend, handler, docs, counted)
        finally:
            limits.leave()
    response = _respond(request, backend, reply, charged)
    with backend.log_lock:
        backend.request_log.append((request.method, request.url.path, response.status_code))
    return response


async def _process(
    request: Request, backend: Backend, handler: Handler, docs: str, counted: bool
) -> tuple[bool, Reply]:
    method = request.method
    try:
        version = request.headers.get("x-github-api-version", DEFAULT_API_VERSION)
        if not _API_VERSION.match(version):
            raise GitHubError(400, f"API version {version} is not supported.", documentation_url=DOCS_ROOT)
        login = _authenticate(request, backend)
    except GitHubError as exc:
        return False, _error(exc, docs)
    ctx = Ctx(request, backend, login)
    charged = False
    try:
        if counted:
            if not backend.limits.consume():
                who = f"user ID {backend.state.user(login).id}" if login else "this address"
                raise GitHubError(403, f"API rate limit exceeded for {who}.", documentation_url=_RATE_DOCS)
            charged = True
        if method in WRITE_METHODS:
            if login is None:
                raise GitHubError(401, "Requires authentication", documentation_url=DOCS_ROOT)
            if backend.token_read_only:
                raise GitHubError(403, "Resource not accessible by integration", documentation_url=docs)
            wait = backend.limits.admit_write()
            if wait is not None:
                raise _secondary_limit(wait, request.state.request_id)
        fault = backend.faults.before()
        if fault is not None:
            raise fault
        if method in WRITE_METHODS:
            backend.replica.before_write()
        try:
            reply = await handler(ctx)
        finally:
            if method in WRITE_METHODS:
                backend.replica.record()
        if method in WRITE_METHODS and reply.status < 400:
            fault = backend.faults.after()
            if fault is not None:
                raise fault
    except GitHubError as exc:
        reply = _error(exc, docs)
    await ctx.pause()
    return charged, reply


def _authenticate(request: Request, backend: Backend) -> str | None:
    """The acting login: the token's user, or None for an anonymous request (allowed to read)."""
    header = request.headers.get("authorization")
    token_user = backend.state.token_login
    if header is None:
        # With no token configured the emulator is open: anonymous callers act as the token's user.
        return token_user if backend.token is None else None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not credential.strip():
        raise GitHubError(401, "Bad credentials", documentation_url=DOCS_ROOT)
    if backend.token is not None and credential.strip() != backend.token:
        raise GitHubError(401, "Bad credentials", documentation_url=DOCS_ROOT)
    return token_user


def _secondary_limit(retry_after: int, request_id: str) -> GitHubError:
    return GitHubError(
        403,
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
        f"If you reach out to GitHub Support for help, please include the request ID {request_id}.",
        documentation_url=f"{_RATE_DOCS}#about-secondary-rate-limits",
        headers={"retry-after": str(retry_after)},
    )


def _error(exc: GitHubError, docs: str) -> Reply:
    return Reply(exc.status, exc.body(docs), dict(exc.headers))


def _etag(body: bytes) -> str:
    return f'W/"{hashlib.sha256(body).hexdigest()}"'


def _etag_matches(header: str, etag: str) -> bool:
    # Compare weakly (RFC 7232 §2.3.2): clients may echo the tag with or without the W/ prefix.
    wanted = etag.removeprefix("W/")
    return any(tag.strip() in ("*", wanted) or tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def _respond(request: Request, backend: Backend, reply: Reply, charged: bool) -> Response:
    body = b""
    if reply.data is not None:
        body = json.dumps(reply.data, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "server": "github.com",
        "date": http_date(backend.state.clock.now()),
        "x-github-api-version-selected": request.headers.get("x-github-api-version", DEFAULT_API_VERSION),
        "x-github-media-type": "github.v3; format=json",
        "x-github-request-id": request.state.request_id,
        "access-control-allow-origin": "*",
        "access-control-expose-headers": "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, "
        "X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, "
        "X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id",
        "x-content-type-options": "nosniff",
        "vary": "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding",
        **reply.headers,
    }
    if request.headers.get("authorization"):
        headers["x-oauth-scopes"] = "repo, workflow"
        headers["x-accepted-oauth-scopes"] = "repo"
    status = reply.status
    if request.method == "GET" and status == 200:
        headers["etag"] = _etag(body)
        headers["cache-control"] = "private, max-age=60, s-maxage=60"
        if reply.last_modified is not None:
            headers["last-modified"] = http_date(reply.last_modified)
        if _not_modified(request, headers["etag"], reply.last_modified):
            status, body = 304, b""
            if charged:
                # GitHub does not count a 304 against the primary limit.
                backend.limits.refund()
    core = backend.limits.core()
    for key in ("limit", "remaining", "used", "reset", "resource"):
        headers[f"x-ratelimit-{key}"] = str(core[key])
    if body:
        headers["content-type"] = "application/json; charset=utf-8"
    return Response(body, status_code=status, headers=headers)


def _not_modified(request: Request, etag: str, last_modified: float | None) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etag)
    since = request.headers.get("if-modified-since")
    if since is not None and last_modified is not None:
        parsed = parse_http_date(since)
        return parsed is not None and int(last_modified) <= parsed
    return False


def _request_id() -> str:
    raw = uuid.uuid4().hex.upper()
    return f"{raw[:4]}:{raw[4:9]}:{raw[9:16]}:{raw[16:24]}:{raw[24:32]}"
