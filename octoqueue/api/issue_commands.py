"""What people do to job issues on GitHub, and what the server does about it.

People with write access drive jobs from the issue page:

- add the ``requeue`` label, or comment ``/requeue`` or ``/retry``: the job is pending again, fresh attempts;
- comment ``/cancel``: a pending or processing job is cancelled.

Who may, and from which repository, is :mod:`octoqueue.api.chatops_access`'s to decide; :func:`plan` only reads
what a delivery asks for. A job issue whose body cannot be read gets one comment explaining the expected format,
whichever of ``opened``, ``edited`` or the status label's ``labeled`` arrives first (GitHub may deliver them out
of order, and an ``opened`` payload need not carry the labels): the store, not the payload, says whether the
issue is a job and what its body holds. Events for pull requests are ignored.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from octoqueue.body import parse
from octoqueue.commands import defuse, parse_command
from octoqueue.errors import InvalidTransition, JobNotFound, OctoqueueError, StateConflict
from octoqueue.queue import Queue
from octoqueue.states import REQUEUE_LABEL, JobState, LabelScheme, label_key
from octoqueue.stores.base import RemovesLabels

log = logging.getLogger("octoqueue.api.webhooks")

Kind = Literal["requeue", "cancel", "explain"]


@dataclass(frozen=True)
class Command:
    kind: Kind
    job_id: int
    actor: str
    via: str
    #: The payload's user object of whoever asked, judged by the access rules (requeue and cancel only).
    user: dict[str, Any] = field(default_factory=dict, compare=False)
    #: The comment's ``author_association`` (None for a label).
    association: str | None = None
    #: A label that made the command, taken off the issue so that it can be added again.
    label: str | None = None

    @property
    def needs_write(self) -> bool:
        return self.kind != "explain"


@dataclass(frozen=True)
class Ignored:
    reason: str


def _user(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def plan(event: str, payload: dict[str, Any], labels: LabelScheme) -> Command | Ignored:
    """Decide what a webhook delivery asks for. Pure: reads only the payload."""
    if event not in ("issues", "issue_comment"):
        return Ignored(f"{event} events are not handled")
    action = str(payload.get("action") or "")
    issue = payload.get("issue")
    if not isinstance(issue, dict) or not isinstance(issue.get("number"), int):
        return Ignored("the payload has no issue")
    if issue.get("pull_request") is not None:
        return Ignored("pull requests are not jobs")
    number: int = issue["number"]
    sender = _user(payload.get("sender"))
    sender_login = str(sender.get("login") or "someone")
    names = [str(label.get("name")) for label in issue.get("labels") or [] if isinstance(label, dict)]
    is_job = labels.state_of(names) is not None

    if event == "issue_comment":
        if action != "created":
            return Ignored(f"issue_comment.{action} needs no action")
        comment = _user(payload.get("comment"))
        command = parse_command(comment.get("body"))
        if command is None:
            return Ignored("the comment holds no command")
        if not is_job:
            return Ignored(f"issue {number} is not a job (no status label)")
        author = _user(comment.get("user")) or sender
        association = comment.get("author_association")
        kind: Kind = "cancel" if command == "cancel" else "requeue"
        return Command(
            kind,
            number,
            str(author.get("login") or sender_login),
            via=f"`/{command}`",
            user=author,
            association=str(association) if association else "NONE",
        )

    name = (_user(payload.get("label"))).get("name")
    if action == "labeled" and isinstance(name, str) and label_key(name) == REQUEUE_LABEL:
        if not is_job:
            return Ignored(f"issue {number} is not a job (no status label)")
        return Command(
            "requeue", number, sender_login, via=f"the `{REQUEUE_LABEL}` label", user=sender, label=REQUEUE_LABEL
        )
    body_changed = action == "edited" and "body" in (payload.get("changes") or {})
    status_added = action == "labeled" and isinstance(name, str) and labels.is_status(name)
    if action == "opened" or body_changed or status_added:
        # An opened payload need not carry the labels: whether it is a job is the store's to say.
        if parse(issue.get("body")).error is None:
            return Ignored("the issue body is readable")
        return Command("explain", number, sender_login, via=f"issues.{action}")
    if action == "labeled":
        return Ignored(f"the label {name!r} is not a command")
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
        return _explain(queue, n)
    except OctoqueueError as exc:
        log.warning("webhook command %s on job %d failed: %s", command.kind, n, exc)
        return "error"


_explaining = threading.Lock()


def _explain(queue: Queue, job_id: int) -> str:
    """Explain the job's unreadable body once: the store's body, not the delivery's, and not twice the same."""
    with _explaining:  # two deliveries of one change (opened and labeled) must not both post
        try:
            job = queue.get(job_id)
        except JobNotFound:
            return "not-a-job"
        if job.body_error is None or job.state not in (JobState.PENDING, JobState.FAILED):
            return "readable"
        note = defuse(explanation(job.body_error))
        if any(comment.body == note for comment in queue.comments(job_id)):
            return "already-explained"
        queue.create_comment(job_id, note)
        return "explained"


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
    # Only stores whose labels people edit by hand (GitHub) have a label to remove.
    if not isinstance(queue.store, RemovesLabels):
        return
    try:
        queue.store.remove_label(job_id, name)
    except OctoqueueError as exc:
        log.info("job %d: could not remove the %r label: %s", job_id, name, exc)


__all__ = [
    "REQUEUE_LABEL",
    "Command",
    "Ignored",
    "execute",
    "explanation",
    "plan",
]
