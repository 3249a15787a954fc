"""Who may run ChatOps commands (``/requeue``, ``/retry``, ``/cancel``, the ``requeue`` label), and from where.

The rules, in order:

1. The delivery must come from the jobs' repository (``repository.full_name``): a GitHub store's own, or for
   other stores the one configured as ``OCTOQUEUE_WEBHOOK_REPO``; without one, ChatOps is off.
2. octoqueue itself never commands: not the store's own login (``GET /user``), not any bot account (a GitHub
   App, ``github-actions[bot]``) — octoqueue posts comments with text nobody vetted.
3. Logins listed in ``OCTOQUEUE_WEBHOOK_TRUSTED_USERS`` may.
4. Anyone else needs write access. On a GitHub store GitHub is asked (the collaborator-permission endpoint,
   cached for :data:`PERMISSION_TTL` seconds): ``write`` or ``admin`` may, whatever gives it — organisation
   members whose membership is private arrive as ``CONTRIBUTOR`` and still may; a ``CONTRIBUTOR`` without write
   access may not. Other stores have no token to ask with and judge from the payload: a comment's
   ``author_association`` must be OWNER, MEMBER or COLLABORATOR; a label's sender must own the repository.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from octoqueue.authorship import PERMISSION_TTL, Permissions, is_bot, is_own_account
from octoqueue.errors import OctoqueueError
from octoqueue.stores import Store

log = logging.getLogger("octoqueue.api.webhooks")

WRITE_ACCESS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
WRITE_PERMISSIONS = frozenset({"write", "admin"})


@runtime_checkable
class KnowsPeople(Protocol):
    """A store that can ask GitHub who people are (the GitHub store)."""

    @property
    def full_name(self) -> str: ...

    def own_login(self) -> str | None: ...

    def permission_of(self, login: str) -> str: ...


def login_of(user: Any) -> str:
    return str(user.get("login") or "") if isinstance(user, dict) else ""


class ChatOpsAccess:
    def __init__(
        self,
        store: Store,
        *,
        repository: str | None,
        trusted: frozenset[str],
        ttl: float = PERMISSION_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        store = getattr(store, "inner", store)  # a SealedStore (octoqueue.sealing) wraps the GitHub store
        self.people = store if isinstance(store, KnowsPeople) else None
        #: The repository whose deliveries may act, or None: ChatOps is off.
        self.repository = self.people.full_name if self.people is not None else repository
        self.trusted = trusted
        self.permissions = (
            Permissions(self.people.permission_of, ttl=ttl, clock=clock) if self.people is not None else None
        )

    def wrong_repository(self, payload: dict[str, Any]) -> str | None:
        """Why a delivery from the payload's repository may not act; None when it may."""
        repository = payload.get("repository")
        named = str(repository.get("full_name") or "") if isinstance(repository, dict) else ""
        if self.repository is None:
            return "ChatOps is off: no repository is configured (OCTOQUEUE_WEBHOOK_REPO)"
        if named.lower() != self.repository.lower():
            return f"the delivery is for {named or 'no repository'}, not {self.repository}"
        return None

    def refusal(self, actor: dict[str, Any], association: str | None, payload: dict[str, Any]) -> str | None:
        """Why ``actor`` (a payload's user object) may not run a command; None when they may.

        ``association`` is the comment's ``author_association`` (None for a label)."""
        login = login_of(actor)
        if not login:
            return "the delivery names nobody"
        if is_bot(login, actor.get("type")):
            return f"@{login} is a bot; bots never run commands"
        if self.people is not None:
            try:
                own = self.people.own_login()
            except OctoqueueError as exc:  # unknown: it might be octoqueue's own comment, so no
                log.warning("could not learn the token's own login: %s", exc)
                return f"octoqueue's own login is unknown for now ({exc}); @{login}'s command is not run"
            if is_own_account(login, own):
                return f"@{login} is octoqueue's own account; its comments are never commands"
        if login.lower() in self.trusted:
            return None
        if self.permissions is not None:
            level = self.permissions.of(login)
            return None if level in WRITE_PERMISSIONS else f"@{login} has {level} permission, not write"
        if association is not None:
            return None if association in WRITE_ACCESS else f"@{login} ({association}) has no write access"
        owner = login_of((payload.get("repository") or {}).get("owner"))
        issue = payload.get("issue") or {}
        authored = login_of(issue.get("user")).lower() == login.lower()
        if owner.lower() == login.lower() or (authored and issue.get("author_association") in WRITE_ACCESS):
            return None
        return f"@{login} has no write access that the payload shows"


__all__ = ["PERMISSION_TTL", "WRITE_ACCESS", "WRITE_PERMISSIONS", "ChatOpsAccess", "KnowsPeople", "login_of"]
