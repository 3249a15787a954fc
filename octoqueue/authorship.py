"""Which comments octoqueue wrote itself: the one rule that ChatOps, history and dependencies share.

On GitHub anyone who can comment on an issue can type what octoqueue writes, hidden markers included. So what
octoqueue reads back from comments — an attempt's history (``octoqueue:attempt``), a job's parents
(``octoqueue:depends``) — counts only in comments octoqueue wrote, and no comment octoqueue wrote is a command:

* On GitHub, octoqueue writes as the token's own login (``GET /user``). A GitHub App's installation token has no
  login to ask for (it writes as ``<app>[bot]``): then any bot account counts as octoqueue's own, as only a
  repository admin can install an App.
* On the other stores only octoqueue writes comments, and they carry no author; a comment with an author there was
  imported (a mirror's copy of a GitHub issue, :meth:`Store.import_job`) and was written by that person.
* A comment imported into GitHub keeps its first author in a hidden block; the GitHub store believes the block
  only in comments its own account posted (:func:`octoqueue.stores.github.posts.comment_of`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from octoqueue.errors import OctoqueueError
from octoqueue.job import Comment

log = logging.getLogger(__name__)

#: Seconds a person's permission, as GitHub told it, is believed.
PERMISSION_TTL = 60.0


@runtime_checkable
class KnowsOwnLogin(Protocol):
    """A store that writes as a GitHub account (the GitHub store)."""

    def own_login(self) -> str | None: ...


def is_bot(login: str, user_type: Any = None) -> bool:
    """Whether ``login`` (of a user object whose ``type`` is ``user_type``) is a bot account: an App's, Actions'."""
    return user_type == "Bot" or login.lower().endswith("[bot]")


def is_own_account(login: str, own: str | None) -> bool:
    """Whether ``login`` is the account octoqueue writes as, whose own login is ``own`` (None: a GitHub App's
    token, which writes as a bot)."""
    return is_bot(login) if own is None else login.lower() == own.lower()


class Authorship:
    """Tells the comments octoqueue wrote on ``store`` from people's (see the module's docstring)."""

    def __init__(self, store: Any) -> None:
        store = getattr(store, "inner", store)  # a SealedStore (octoqueue.sealing) wraps the GitHub store
        self.account = store if isinstance(store, KnowsOwnLogin) else None

    def own_login(self) -> str | None:
        """The login octoqueue writes as; None for a GitHub App's token or a store that writes as nobody. Raises
        :class:`~octoqueue.errors.OctoqueueError` when GitHub cannot be asked."""
        return self.account.own_login() if self.account is not None else None

    def wrote(self, comment: Comment) -> bool:
        """Whether octoqueue wrote ``comment`` (asks GitHub for its own login once per store when it must)."""
        if comment.author is None:
            return True
        return self.account is not None and is_own_account(comment.author, self.account.own_login())

    def own_comments(self, comments: Iterable[Comment]) -> list[Comment]:
        """The comments of ``comments`` that octoqueue wrote, in their order."""
        return [comment for comment in comments if self.wrote(comment)]


class Permissions:
    """People's permission on a repository as ``ask(login)`` (GitHub) tells it, remembered for ``ttl`` seconds per
    login: a stranger who comments again and again costs one request a minute, not one per comment and look."""

    def __init__(
        self, ask: Callable[[str], str], *, ttl: float = PERMISSION_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ask = ask
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def of(self, login: str) -> str:
        """``login``'s permission (admin, maintain, write, triage, read, none), or ``unknown`` when GitHub could
        not be asked (not remembered: the next look asks again)."""
        key = login.lower()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            level = self._ask(login)
        except OctoqueueError as exc:
            log.warning("could not learn @%s's permission: %s", login, exc)
            return "unknown"
        with self._lock:
            self._cache[key] = (now, level)
            if len(self._cache) > 10_000:
                self._cache.clear()
        return level


__all__ = ["PERMISSION_TTL", "Authorship", "KnowsOwnLogin", "Permissions", "is_bot", "is_own_account"]
