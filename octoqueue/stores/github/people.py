"""Who is who on GitHub, for the webhook's ChatOps: the token's own login and a person's repository permission.

Both come from GitHub itself, never from a webhook payload: ``GET /user`` names the account the store writes
as, and ``GET /repos/{owner}/{repo}/collaborators/{username}/permission`` gives anyone's base permission on the
repository (``admin``, ``write``, ``read`` or ``none``; ``maintain`` counts as ``write``), whatever makes it —
ownership, an organisation's base permission, a team, a private membership or an outside collaboration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from octoqueue.errors import AccessDenied

if TYPE_CHECKING:
    from octoqueue.stores.github.store import GitHubStore

#: The ``permission`` values of the endpoint, weakest first.
PERMISSIONS = ("none", "read", "write", "admin")


def authenticated_login(store: GitHubStore) -> str | None:
    """The login the store's token acts as; None for a GitHub App installation token (``GET /user`` is 403)."""
    try:
        response = store._client.call(lambda gh: gh.rest.users.get_authenticated(), what="GET /user")
    except AccessDenied:
        return None
    data: Any = response.json()
    login = data.get("login") if isinstance(data, dict) else None
    return str(login) if login else None


def permission(store: GitHubStore, login: str) -> str:
    """``login``'s base permission on the store's repository; ``none`` for an unknown user (404)."""
    response = store._client.call(
        lambda gh: gh.rest.repos.get_collaborator_permission_level(store.owner, store.repo, login),
        expect=(404,),
        what=f"GET permission of @{login}",
    )
    if response.status_code == 404:
        return "none"
    data: Any = response.json()
    level = data.get("permission") if isinstance(data, dict) else None
    return level if level in PERMISSIONS else "none"


__all__ = ["PERMISSIONS", "authenticated_login", "permission"]
