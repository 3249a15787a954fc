"""``FakeGitHub``: the emulator's public face — configuration, transports, serving, and test helpers."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import httpx
from starlette.applications import Starlette

from octoqueue.testing.fake_github.app import build_app
from octoqueue.testing.fake_github.clock import Clock
from octoqueue.testing.fake_github.faults import Faults, FaultSettings
from octoqueue.testing.fake_github.git import GitRefs
from octoqueue.testing.fake_github.issues import Origin, Tracker
from octoqueue.testing.fake_github.limits import LimitSettings, RateLimits
from octoqueue.testing.fake_github.payloads import Renderer
from octoqueue.testing.fake_github.pipeline import Backend
from octoqueue.testing.fake_github.replica import Replica
from octoqueue.testing.fake_github.server import BackgroundServer
from octoqueue.testing.fake_github.state import INITIAL_COMMIT_SHA, ROLES, Member, RepoState
from octoqueue.testing.fake_github.transport import LoopThread, SyncASGITransport
from octoqueue.testing.fake_github.webhooks import Delivery, WebhookSender

#: Base URL to give clients that use the in-process transports (any host works; URLs in responses follow it).
IN_PROCESS_URL = "http://fake-github.local"
#: The login the human-style helpers act as unless told otherwise.
HUMAN = "octocat"


F = TypeVar("F", bound=Callable[..., Any])


def _recorded(helper: F) -> F:
    """A UI helper changes the state without a request: let a lagging replica see the change from now."""

    @functools.wraps(helper)
    def run(self: FakeGitHub, *args: Any, **kwargs: Any) -> Any:
        try:
            return helper(self, *args, **kwargs)
        finally:
            self.backend.replica.record()

    return cast(F, run)


class FakeGitHub:
    """A stateful, in-memory GitHub REST API for one repository.

    ``token=None`` accepts any token and anonymous requests; with a token, a wrong one gets 401 and
    anonymous requests may only read; ``token_read_only`` makes every write of the token a 403 "Resource not
    accessible by integration", as GitHub answers a workflow token without the write permission.
    ``error_rate`` answers that fraction of requests with a 5xx *before* doing any work (so a retry is safe);
    ``error_after_rate`` does the write and *then* answers 5xx.
    GitHub's unkinder habits, off by default: ``read_lag`` (seconds) serves issue and comment reads from a
    replica that far behind; ``ref_failure_rate`` answers that fraction of ref creations 422 "Reference update
    failed" (half of them after creating the ref); ``push_access=False`` silently drops labels and assignees
    from issue creates and edits. See :class:`~octoqueue.testing.fake_github.faults.FaultSettings`.
    ``rate_limit_window`` (seconds) shortens the primary window for tests; :meth:`advance_time` skips ahead.
    ``webhook_transport`` delivers webhooks through an httpx transport (e.g. another app in-process).
    ``organization=True`` makes the owner an organisation: people get roles through :meth:`add_member` (public or
    private membership) and :meth:`add_collaborator`; ``user`` (the token's login) is then an admin member.
    """

    def __init__(
        self,
        repo: str = "octoqueue/jobs",
        token: str | None = None,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        error_after_rate: float = 0.0,
        read_lag: float = 0.0,
        ref_failure_rate: float = 0.0,
        push_access: bool = True,
        seed: int = 0,
        rate_limit: int = 5000,
        rate_limit_window: float = 3600.0,
        secondary_writes_per_minute: int = 80,
        secondary_writes_per_hour: int = 500,
        max_concurrency: int = 100,
        enforce_secondary: bool = True,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_transport: httpx.BaseTransport | None = None,
        user: str | None = None,
        token_read_only: bool = False,
        organization: bool = False,
    ) -> None:
        owner, sep, name = repo.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise ValueError(f"repo must be 'owner/name', got {repo!r}")
        self.repo = repo
        self.token = token
        self.clock = Clock()
        self.state = RepoState(
            owner,
            name,
            token_login=user or owner,
            clock=self.clock,
            owner_type="Organization" if organization else "User",
        )
        self.limit_settings = LimitSettings(
            rate_limit=rate_limit,
            rate_limit_window=rate_limit_window,
            secondary_writes_per_minute=secondary_writes_per_minute,
            secondary_writes_per_hour=secondary_writes_per_hour,
            max_concurrency=max_concurrency,
            enforce_secondary=enforce_secondary,
        )
        self.fault_settings = FaultSettings()
        self.fault_settings.update(
            {
                "latency": latency,
                "error_rate": error_rate,
                "error_after_rate": error_after_rate,
                "read_lag": read_lag,
                "ref_failure_rate": ref_failure_rate,
                "push_access": push_access,
            }
        )
        self.hooks = (
            WebhookSender(webhook_url, webhook_secret, repo_id=self.state.id, transport=webhook_transport)
            if webhook_url
            else None
        )
        self.tracker = Tracker(self.state, self.hooks)
        self.backend = Backend(
            state=self.state,
            tracker=self.tracker,
            refs=GitRefs(self.state),
            limits=RateLimits(self.limit_settings, self.clock),
            faults=Faults(self.fault_settings, seed),
            replica=Replica(self.state, self.fault_settings),
            token=token,
            token_read_only=token_read_only,
        )
        self.app: Starlette = build_app(self.backend)
        #: Base URL while :meth:`serve` runs, else None.
        self.url: str | None = None
        self._server: BackgroundServer | None = None
        self._loop: LoopThread | None = None
        self._lock = threading.Lock()

    # -- running it ----------------------------------------------------------------------------------------
    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> Iterator[str]:
        """Serve over HTTP with uvicorn in a background thread; yields the base URL (also :attr:`url`)."""
        if self._server is not None:
            raise RuntimeError("already serving at " + str(self.url))
        self._server = BackgroundServer(self.app, host, port, log_level)
        self.url = self._server.start()
        try:
            yield self.url
        finally:
            self._server.stop()
            self._server, self.url = None, None

    def transport(self) -> httpx.BaseTransport:
        """A sync httpx transport into the app (for ``httpx.Client`` or githubkit's ``transport=``)."""
        with self._lock:
            if self._loop is None:
                self._loop = LoopThread()
            return SyncASGITransport(self.app, self._loop)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        """An async httpx transport into the app; it runs on the caller's event loop."""
        return httpx.ASGITransport(app=self.app)

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on the in-process transport, authenticated with ``token`` (or the configured one)."""
        headers = {"Accept": "application/vnd.github+json", **kwargs.pop("headers", {})}
        token = token or self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(transport=self.transport(), base_url=IN_PROCESS_URL, headers=headers, **kwargs)

    def close(self) -> None:
        """Stop the in-process loop and the webhook thread (after sending what is queued)."""
        if self.hooks is not None:
            self.hooks.close()
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()

    def __enter__(self) -> FakeGitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faults, limits, counters --------------------------------------------------------------------------
    def set_faults(self, **changes: Any) -> None:
        """Change injected faults at run time: any :class:`FaultSettings` field, e.g. ``read_lag=2.0``;
        ``ValueError`` (and nothing changed) on an unknown field or a bad value."""
        self.fault_settings.update(changes)

    def set_webhook_faults(
        self,
        *,
        reorder: bool | None = None,
        opened_without_labels: bool | None = None,
        duplicate: bool | None = None,
    ) -> None:
        """Switch webhook delivery faults (:class:`WebhookFaults`); arguments left None keep their value."""
        if self.hooks is None:
            raise RuntimeError("no webhook configured")
        given = {"reorder": reorder, "opened_without_labels": opened_without_labels, "duplicate": duplicate}
        for key, value in given.items():
            if value is not None:
                setattr(self.hooks.faults, key, value)

    def set_limits(self, **changes: Any) -> None:
        """Change rate limits at run time (any :class:`LimitSettings` field, e.g. ``rate_limit=10``)."""
        for key, value in changes.items():
            if not hasattr(self.limit_settings, key):
                raise TypeError(f"unknown limit {key!r}")
            setattr(self.limit_settings, key, value)

    def advance_time(self, seconds: float) -> None:
        """Move the emulator's clock forward (expires rate-limit windows; later timestamps follow)."""
        self.clock.advance(seconds)

    @property
    def request_log(self) -> list[tuple[str, str, int]]:
        """``(method, path, status)`` of every request served, in order."""
        with self.backend.log_lock:
            return list(self.backend.request_log)

    def reset_counters(self) -> None:
        """Clear the request log and all rate-limit usage (primary and secondary)."""
        with self.backend.log_lock:
            self.backend.request_log.clear()
        self.backend.limits.reset()

    # -- inspecting state ----------------------------------------------------------------------------------
    def _render(self) -> Renderer:
        return Renderer(self.state, self.url or IN_PROCESS_URL)

    @property
    def initial_commit_sha(self) -> str:
        """The sha ``refs/heads/main`` starts at."""
        return INITIAL_COMMIT_SHA

    @property
    def issues(self) -> dict[int, dict[str, Any]]:
        """Every issue and pull request as GitHub's JSON, by number."""
        r = self._render()
        with self.state.lock:
            return {n: r.issue(issue) for n, issue in sorted(self.state.issues.items())}

    def get_issue(self, number: int) -> dict[str, Any]:
        """The issue as ``GET /repos/{o}/{r}/issues/{number}`` returns it; KeyError when absent."""
        with self.state.lock:
            return self._render().issue(self.state.issues[number])

    def labels_of(self, number: int) -> list[str]:
        """Names of the issue's labels; KeyError when there is no such issue."""
        with self.state.lock:
            return [label.name for label in self.state.issue_labels(self.state.issues[number])]

    def comments_of(self, number: int) -> list[dict[str, Any]]:
        """The issue's comments as GitHub's JSON, oldest first."""
        r = self._render()
        return [r.comment(c) for c in self.tracker.list_comments(number)]

    def events_of(self, number: int) -> list[dict[str, Any]]:
        """The issue's events (labeled, unlabeled, closed, reopened) as GitHub's JSON."""
        r = self._render()
        return [r.event(e) for e in self.tracker.list_events(number)]

    @property
    def labels(self) -> dict[str, dict[str, Any]]:
        """The repository's labels as GitHub's JSON, by name."""
        r = self._render()
        with self.state.lock:
            return {label.name: r.label(label) for label in self.state.labels.values()}

    @property
    def refs(self) -> dict[str, str]:
        """Every git ref and the sha it points at."""
        with self.state.lock:
            return dict(self.state.refs)

    @property
    def dispatches(self) -> list[dict[str, Any]]:
        """``repository_dispatch`` events received: ``{"event_type", "client_payload", "sender"}``."""
        with self.state.lock:
            return list(self.state.dispatches)

    @property
    def deliveries(self) -> list[Delivery]:
        """Webhook deliveries so far (empty without ``webhook_url``)."""
        return list(self.hooks.deliveries) if self.hooks else []

    def redeliver(self, guid: str) -> Delivery:
        """Resend a delivery with the same ``X-GitHub-Delivery`` GUID, as GitHub's "Redeliver" does."""
        if self.hooks is None:
            raise RuntimeError("no webhook configured")
        return self.hooks.redeliver(guid)

    def flush_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook delivery was attempted; False on timeout."""
        return self.hooks.flush(timeout) if self.hooks else True

    # -- people -------------------------------------------------------------------------------------------
    def add_member(self, login: str, role: str = "write", *, public: bool = True) -> None:
        """Make ``login`` a member of the owning organisation with ``role`` on the repository (read, triage,
        write, maintain, admin). A private membership shows as ``CONTRIBUTOR``, as GitHub hides it."""
        if self.state.owner_type != "Organization":
            raise ValueError("only an organisation has members: FakeGitHub(..., organization=True)")
        with self.state.lock:
            self.state.members[self.state.user(login).login.lower()] = Member(_role(role), public)

    def add_collaborator(self, login: str, role: str = "write") -> None:
        """Give ``login`` an outside collaborator's ``role`` (``COLLABORATOR`` association)."""
        with self.state.lock:
            self.state.collaborators[self.state.user(login).login.lower()] = _role(role)

    def add_contributor(self, login: str) -> None:
        """Record that ``login`` has contributed (``CONTRIBUTOR`` association, no extra permission)."""
        with self.state.lock:
            self.state.contributors.add(self.state.user(login).login.lower())

    # -- acting like a person in the web UI ----------------------------------------------------------------
    def _origin(self, login: str | None) -> Origin:
        return Origin(login or HUMAN, self.url or IN_PROCESS_URL)

    @_recorded
    def create_issue(
        self,
        title: str,
        body: str | None = None,
        labels: Iterable[str] = (),
        *,
        author: str | None = None,
        author_association: str | None = None,
    ) -> int:
        """Open an issue as ``author`` (default ``octocat``); returns its number. Fires webhooks."""
        issue = self.tracker.create_issue(self._origin(author), title, body, labels, association=author_association)
        return issue.number

    @_recorded
    def create_pull_request(self, title: str, body: str | None = None, *, author: str | None = None) -> int:
        """Open a pull request; it takes the next issue number and lists among issues with ``pull_request``."""
        pull = self.tracker.create_issue(self._origin(author), title, body, pull_request=True)
        return pull.number

    @_recorded
    def edit_issue(
        self,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: str | None = None,
        state_reason: str | None = None,
        labels: Iterable[str] | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Edit an issue as ``actor``; ``labels`` replaces the whole set. Returns the issue's JSON."""
        given = {"title": title, "body": body, "state": state, "state_reason": state_reason}
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if labels is not None:
            changes["labels"] = list(labels)
        self.tracker.update_issue(self._origin(actor), number, changes)
        return self.get_issue(number)

    @_recorded
    def add_label(self, number: int, name: str, actor: str | None = None) -> list[str]:
        """Put a label on an issue (created if unknown); returns the issue's label names."""
        return [label.name for label in self.tracker.add_labels(self._origin(actor), number, [name])]

    @_recorded
    def remove_label(self, number: int, name: str, actor: str | None = None) -> list[str]:
        """Take a label off an issue (a label it does not have is ignored); returns the issue's label names."""
        return [label.name for label in self.tracker.remove_labels(self._origin(actor), number, [name])]

    @_recorded
    def comment(self, number: int, body: str, author: str | None = None, author_association: str | None = None) -> int:
        """Comment on an issue as ``author``; returns the comment id. Fires ``issue_comment.created``."""
        return self.tracker.create_comment(self._origin(author), number, body, author_association).id

    @_recorded
    def edit_comment(self, comment_id: int, body: str, actor: str | None = None) -> None:
        """Edit a comment; fires ``issue_comment.edited``."""
        self.tracker.update_comment(self._origin(actor), comment_id, body)

    @_recorded
    def delete_comment(self, comment_id: int, actor: str | None = None) -> None:
        """Delete a comment; fires ``issue_comment.deleted``."""
        self.tracker.delete_comment(self._origin(actor), comment_id)

    def add_commit(self, parent: str | None = None, message: str = "commit") -> str:
        """Add a commit on top of ``parent`` (default: the initial commit) so refs can fast-forward to it."""
        return self.state.add_commit(parent or INITIAL_COMMIT_SHA, message)


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role
