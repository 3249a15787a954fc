"""GitHub's silent label drop: a user without push access may create and edit issues, but GitHub ignores the
``labels`` of the request and still answers 201/200 ("Only users with push access can set labels for issues.
Labels are silently dropped otherwise" — GitHub's REST docs on creating and updating an issue). A job whose
status label was dropped would be invisible to every claim and count, so each answer is checked here.
"""

from __future__ import annotations

from typing import Any

from octoqueue.errors import AccessDenied


def check_label_kept(item: dict[str, Any], label: str, *, repo: str, what: str) -> None:
    """Raise :class:`AccessDenied` when the issue GitHub answered with lacks ``label`` (compared as GitHub does,
    ignoring case)."""
    names = {str(x.get("name") if isinstance(x, dict) else x).lower() for x in item.get("labels") or ()}
    if label.lower() in names:
        return
    raise AccessDenied(
        f"GitHub {what} but silently dropped its status label {label!r}: the token's user has no push access to "
        f"{repo}, and GitHub ignores labels from such users. Give it write access (the Write role for a user's "
        "token; Issues: write for a GitHub App or fine-grained token).",
        status=403,
    )
