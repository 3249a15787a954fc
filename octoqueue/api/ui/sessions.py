"""Who is looking at the dashboard: login sessions (an API key exchanged for a cookie) and CSRF tokens.

A session lives in this server process's memory (a restart or another server behind a load balancer asks for the
key again). Its cookie is ``HttpOnly``, ``SameSite=Strict`` and scoped to ``/ui``. Every form that changes
something carries a CSRF token. With a session it is bound to it (an HMAC of the session id under a key of this
process), so a cookie planted by someone else (from a sibling subdomain, say) cannot stand in for it; without one
(the login form) it must equal the ``oq_csrf`` cookie (a double-submit token). A page of another site can make a
browser send the cookies, but cannot read them to fill in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from octoqueue.api.auth import ANONYMOUS, OPEN, KeyRing, Principal, Role

SESSION_COOKIE = "oq_session"
CSRF_COOKIE = "oq_csrf"
SESSION_SECONDS = 8 * 3600
#: Most sessions kept at once, and per key. A key that opens more forgets its own oldest session, so no key's
#: logins can log another key's holder out; when all are full, the key holding the most gives one up.
MAX_SESSIONS = 10_000
MAX_SESSIONS_PER_KEY = 50
#: Failed logins one client (IP) may make per window before /ui/login answers 429.
LOGIN_FAILURES = 10
LOGIN_FAILURE_WINDOW = 300.0


@dataclass(frozen=True)
class Viewer:
    """The person at the browser: what they may see and do."""

    principal: Principal
    logged_in: bool

    @property
    def can_read(self) -> bool:
        return self.principal is OPEN or self.logged_in or self.principal is ANONYMOUS

    @property
    def can_act(self) -> bool:
        return self.principal.can(Role.ADMIN)


class Sessions:
    def __init__(self) -> None:
        self._sessions: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()
        self._csrf_key = secrets.token_bytes(32)

    def open(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            # Sessions are kept oldest first (all last SESSION_SECONDS), so the first one found is the oldest.
            by_key: dict[str | None, list[str]] = {}
            for held, (holder, _) in self._sessions.items():
                by_key.setdefault(holder.fingerprint, []).append(held)
            mine = by_key.get(principal.fingerprint, [])
            if len(mine) >= MAX_SESSIONS_PER_KEY:
                del self._sessions[mine[0]]
            elif len(self._sessions) >= MAX_SESSIONS:
                del self._sessions[max(by_key.values(), key=len)[0]]
            self._sessions[token] = (principal, time.monotonic() + SESSION_SECONDS)
        return token

    def find(self, token: str | None) -> Principal | None:
        if not token:
            return None
        with self._lock:
            found = self._sessions.get(token)
            if found is None:
                return None
            if found[1] < time.monotonic():
                del self._sessions[token]
                return None
            return found[0]

    def close(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    # -- CSRF -------------------------------------------------------------------------------------------------
    def _bound_token(self, request: Request) -> str | None:
        """The CSRF token of the browser's session (None without a live one)."""
        session = request.cookies.get(SESSION_COOKIE)
        if session is None or self.find(session) is None:
            return None
        return hmac.new(self._csrf_key, session.encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, request: Request) -> str:
        """The token a form must carry: the session's, else the browser's ``oq_csrf`` cookie (a new one when it
        has none; :func:`set_csrf_cookie` sends it)."""
        return self._bound_token(request) or request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)

    def csrf_ok(self, request: Request, submitted: str | None) -> bool:
        expected = self._bound_token(request) or request.cookies.get(CSRF_COOKIE)
        return bool(expected and submitted) and hmac.compare_digest(str(expected), str(submitted))


def viewer(request: Request, ring: KeyRing, sessions: Sessions, open_reads: bool) -> Viewer:
    """Who is at the browser: everyone when no key is configured, a logged-in key's holder, else anonymous (who
    may read only when reads are open)."""
    if not ring.enabled:
        return Viewer(OPEN, logged_in=False)
    principal = sessions.find(request.cookies.get(SESSION_COOKIE))
    if principal is not None:
        return Viewer(principal, logged_in=True)
    return Viewer(ANONYMOUS if open_reads else Principal("nobody", frozenset()), logged_in=False)


def set_csrf_cookie(request: Request, response: Response, token: str) -> None:
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE, token, path="/ui", httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
