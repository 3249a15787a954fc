"""What people do to job issues on GitHub, and what the server does about it.

People with write access drive jobs from the issue page:

- add the ``requeue`` label, or comment ``/requeue`` or ``/retry``: the job is pending again, fresh attempts;
- comment ``/cancel``: a pending or processing job is cancelled.

Write access is judged from the payload: a comment's ``author_association`` must be OWNER, MEMBER or
COLLABORATOR. A label event carries no association for its sender, so the sender counts as having write access
only when they own the repository, when they authored the issue with such an association, or when they are
listed in ``OCTOQUEUE_WEBHOOK_TRUSTED_USERS``; anyone else is treated as having none. (GitHub itself lets only
people with triage access or more add labels.)

A job issue opened or edited by hand whose body cannot be read gets a comment explaining the expected format.
Events for issues that are not jobs (no status label) and for pull requests are ignored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

from octoqueue.body import parse
from octoqueue.errors import InvalidTransition, OctoqueueError, StateConflict
from octoqueue.queue import Queue
from octoqueue.states import LabelScheme

log = logging.getLogger("octoqueue.api.webhooks")

REQUEUE_LABEL = "requeue"
WRITE_ACCESS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
_COMMAND_RE = re.compile(r"^[ \t]*/(requeue|retry|cancel)\b", re.MULTILINE | re.IGNORECASE)

Kind = Literal["requeue", "cancel", "explain"]


@dataclass(frozen=True)
class Command:
    kind: Kind
    job_id: int
    actor: str
    via: str
    detail: str = ""
    #: A label that made the command, taken off the issue so that it can be added again.
    label: str | None = None


@dataclass(frozen=True)
class Ignored:
    reason: str


def parse_command(text: str | None) -> str | None:
    """The first ``/requeue``, ``/retry`` or ``/cancel`` at the start of a line, normalised; else None."""
    match = _COMMAND_RE.search(text or "")
    if match is None:
        return None
    word = match.group(1).lower()
    return "requeue" if word == "retry" else word


def _login(user: Any) -> str:
    return str(user.get("login") or "") if isinstance(user, dict) else ""


def sender_has_write_access(payload: dict[str, Any], trusted: frozenset[str]) -> bool:
    """Whether the event's sender has write access, as far as the payload shows (unknown counts as no)."""
    sender = _login(payload.get("sender"))
    if not sender:
        return False
    if sender.lower() in trusted:
        return True
    repository = payload.get("repository")
    owner = _login(repository.get("owner")) if isinstance(repository, dict) else ""
    if owner and sender.lower() == owner.lower():
        return True
    issue = payload.get("issue") or {}
    return sender.lower() == _login(issue.get("user")).lower() and issue.get("author_association") in WRITE_ACCESS


def plan(event: str, payload: dict[str, Any], labels: LabelScheme, trusted: frozenset[str]) -> Command | Ignored:
    """Decide what a webhook delivery asks for. Pure: reads only the payload."""
    if event not in ("issues", "issue_comment"):
        return Ignored(f"{event} events are not handled")
    action = str(payload.get("action") or "")
    issue = payload.get("issue")
    if not isinstance(issue, dict) or not isinstance(issue.get("number"), int):
        return Ignored("the payload has no issue")
    if issue.get("pull_request") is not None:
        return Ignored("pull requests are not jobs")
    names = [str(label.get("name")) for label in issue.get("labels") or [] if isinstance(label, dict)]
    if labels.state_of(names) is None:
        return Ignored(f"issue {issue['number']} is not a job (no status label)")
    number: int = issue["number"]
    sender = _login(payload.get("sender")) or "someone"

    if event == "issue_comment":
        if action != "created":
            return Ignored(f"issue_comment.{action} needs no action")
        comment = payload.get("comment") if isinstance(payload.get("comment"), dict) else {}
        assert isinstance(comment, dict)
        command = parse_command(comment.get("body"))
        if command is None:
            return Ignored("the comment holds no command")
        author = _login(comment.get("user")) or sender
        association = comment.get("author_association")
        if association not in WRITE_ACCESS:
            return Ignored(f"@{author} ({association or 'unknown association'}) may not /{command} jobs")
        kind: Kind = "cancel" if command == "cancel" else "requeue"
        return Command(kind, number, author, via=f"`/{command}`")

    if action == "labeled":
        label = payload.get("label")
        name = label.get("name") if isinstance(label, dict) else None
        if name != REQUEUE_LABEL:
            return Ignored(f"the label {name!r} is not a command")
        if not sender_has_write_access(payload, trusted):
            return Ignored(f"@{sender} has no write access that the payload shows")
        return Command("requeue", number, sender, via=f"the `{REQUEUE_LABEL}` label", label=REQUEUE_LABEL)

    if action == "opened" or (action == "edited" and "body" in (payload.get("changes") or {})):
        error = parse(issue.get("body")).error
        if error is None:
            return Ignored("the issue body is readable")
        return Command("explain", number, sender, via=f"issues.{action}", detail=error)
    return Ignored(f"issues.{action} needs no action")


def execute(queue: Queue, command: Command) -> str:
    """Carry out ``command`` and answer on the issue; return what happened (for logs and metrics)."""
    n, who = command.job_id, command.actor
    try:
        if command.kind == "requeue":
            if command.label is not None:
                # First, so that the requeue's own write does not carry the label over.
                _remove_label(queue, n, command.label)
            try:
                queue.requeue(n, comment=f"Requeued by @{who} ({command.via}).")
                outcome = "requeued"
            except (InvalidTransition, StateConflict):
                status = queue.get_job_status(n) or "unlabelled"
                queue.create_comment(n, f"@{who}: job {n} is already {status}; nothing to requeue.")
                outcome = "refused"
            return outcome
        if command.kind == "cancel":
            try:
                queue.cancel(n, comment=f"Cancelled by @{who} ({command.via}).")
                return "cancelled"
            except (InvalidTransition, StateConflict):
                status = queue.get_job_status(n) or "unlabelled"
                queue.create_comment(
                    n, f"@{who}: job {n} is {status}; only pending or processing jobs can be cancelled."
                )
                return "refused"
        queue.create_comment(n, explanation(command.detail))
        return "explained"
    except OctoqueueError as exc:
        log.warning("webhook command %s on job %d failed: %s", command.kind, n, exc)
        return "error"


def explanation(error: str) -> str:
    # No line of this text may start with "/": it is posted as the server's account, which has write access.
    return (
        f"octoqueue cannot read this job's data: {error}.\n\n"
        "The issue body must hold the job's data as JSON in a fenced block, for example:\n\n"
        '````\n```json\n{"key": "value"}\n```\n````\n\n'
        "Fix the body; if the job already failed, requeue it by commenting `/requeue` or adding the "
        f"`{REQUEUE_LABEL}` label."
    )


def _remove_label(queue: Queue, job_id: int, name: str) -> None:
    # Only stores whose labels people edit by hand (GitHub) have a label to remove; the others have no such method.
    remove = getattr(queue.store, "remove_label", None)
    if remove is None:
        return
    try:
        remove(job_id, name)
    except OctoqueueError as exc:
        log.info("job %d: could not remove the %r label: %s", job_id, name, exc)


__all__ = [
    "REQUEUE_LABEL",
    "WRITE_ACCESS",
    "Command",
    "Ignored",
    "execute",
    "explanation",
    "parse_command",
    "plan",
    "sender_has_write_access",
]
