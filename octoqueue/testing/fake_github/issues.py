"""The rules for changing issues, labels and comments: validation, issue events and webhooks.

HTTP handlers and the ``FakeGitHub`` helpers that act like a person in the UI both come through here, so
both record the same issue events and fire the same webhooks.

Label changes are checked and written in two steps (:meth:`Tracker.require_label` /
:meth:`Tracker.require_issue`, then the write), and handlers spend their latency between the two. That is
the race GitHub has: labels have no compare-and-swap, so two clients that both remove ``pending`` both get
a 200, and both believe they moved the issue on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from octoqueue.testing.fake_github.errors import invalid_request, not_found, too_long, validation_failed
from octoqueue.testing.fake_github.payloads import Renderer
from octoqueue.testing.fake_github.replica import Snapshot
from octoqueue.testing.fake_github.state import Comment, Issue, IssueEvent, Label, RepoState
from octoqueue.testing.fake_github.webhooks import WebhookSender

MAX_BODY = 65_536
MAX_TITLE = 256
MAX_LABEL_NAME = 50
#: Colour GitHub gives labels it creates on the fly (``labels`` on an issue naming an unknown label).
AUTO_LABEL_COLOR = "ededed"
_COLOR = re.compile(r"^[0-9a-fA-F]{6}$")
STATE_REASONS = ("completed", "not_planned", "reopened", "duplicate")


@dataclass(frozen=True)
class Origin:
    """Who acts, and the URL base the resulting JSON (responses, webhook payloads) is rendered with."""

    login: str
    base: str


class Tracker:
    """Issues, labels and comments of one repository."""

    def __init__(self, state: RepoState, hooks: WebhookSender | None = None) -> None:
        self.state = state
        self.hooks = hooks

    # -- reads ---------------------------------------------------------------------------------------------
    def require_issue(self, number: int, view: Snapshot | None = None) -> Issue:
        """The issue (or pull request) ``number`` (as ``view`` shows it, if given); 404 when there is none."""
        with self.state.lock:
            issue = (view or self.state).issues.get(number)
        if issue is None:
            raise not_found()
        return issue

    def require_label(self, name: str) -> Label:
        """The repository label ``name`` (case-insensitive); 404 when there is none."""
        label = self.state.label_named(name)
        if label is None:
            raise not_found()
        return label

    def require_issue_label(self, number: int, name: str) -> None:
        """Check ``name`` is on the issue; 404 "Label does not exist" otherwise."""
        issue = self.require_issue(number)
        label = self.state.label_named(name)
        if label is None or label.id not in issue.label_ids:
            raise not_found("Label does not exist")

    def require_comment(self, comment_id: int) -> Comment:
        with self.state.lock:
            comment = self.state.comments.get(comment_id)
        if comment is None:
            raise not_found()
        return comment

    def list_issues(
        self,
        *,
        state: str = "open",
        labels: list[str] | None = None,
        sort: str = "created",
        direction: str = "desc",
        since: float | None = None,
        creator: str | None = None,
        assignee: str | None = None,
        view: Snapshot | None = None,
    ) -> list[Issue]:
        """Issues and pull requests matching GitHub's list filters (``labels`` must all be present), as
        ``view`` shows them if given."""
        wanted = {name.lower() for name in labels or []}
        with self.state.lock:
            found = []
            for issue in (view or self.state).issues.values():
                names = {label.name.lower() for label in self.state.issue_labels(issue)}
                if state != "all" and issue.state != state:
                    continue
                if not wanted <= names or (since is not None and issue.updated_at < since):
                    continue
                if creator is not None and issue.author.lower() != creator.lower():
                    continue
                if assignee == "none" and issue.assignees:
                    continue
                if assignee == "*" and not issue.assignees:
                    continue
                if assignee not in (None, "none", "*") and assignee.lower() not in map(str.lower, issue.assignees):
                    continue
                found.append(issue)
        key = {"created": "created_at", "updated": "updated_at", "comments": "comments"}[sort]
        found.sort(key=lambda i: (getattr(i, key), i.number), reverse=direction == "desc")
        return found

    def list_comments(
        self, number: int | None = None, *, since: float | None = None, view: Snapshot | None = None
    ) -> list[Comment]:
        """Comments of one issue (or of the repository), oldest first, as ``view`` shows them if given."""
        with self.state.lock:
            found = [
                c
                for c in (view or self.state).comments.values()
                if (number is None or c.issue_number == number) and (since is None or c.updated_at >= since)
            ]
        return sorted(found, key=lambda c: c.id)

    def list_events(self, number: int) -> list[IssueEvent]:
        with self.state.lock:
            return [e for e in self.state.events if e.issue_number == number]

    # -- issues --------------------------------------------------------------------------------------------
    def create_issue(
        self,
        origin: Origin,
        title: str,
        body: str | None = None,
        labels: Iterable[str] = (),
        assignees: Iterable[str] = (),
        *,
        association: str | None = None,
        pull_request: bool = False,
    ) -> Issue:
        """Open an issue; unknown labels are created (colour ``ededed``), as GitHub does for pushers.

        Fires ``issues.opened`` and then one ``issues.labeled`` per label, in that order.
        """
        _check_text(title, body)
        labels = _check_names(labels)
        st = self.state
        with st.lock:
            now = st.clock.now()
            issue = Issue(
                number=st.next_number(),
                id=st.next_id("issue"),
                title=title,
                body=body,
                author=st.user(origin.login).login,
                author_association=association or st.association(origin.login),
                created_at=now,
                updated_at=now,
                assignees=[st.user(login).login for login in dict.fromkeys(assignees)],
                is_pull_request=pull_request,
            )
            st.issues[issue.number] = issue
            added = self._attach(origin, issue, labels)
            with self._one_change():
                self._notify(origin, "issues", "opened", issue)
                for label in added:
                    self._notify(origin, "issues", "labeled", issue, label=label)
        return issue

    def update_issue(self, origin: Origin, number: int, changes: dict[str, Any]) -> Issue:
        """Apply a PATCH: ``title``, ``body``, ``state``, ``state_reason``, ``labels`` (replaces the set),
        ``assignees``. Fires ``edited``/``labeled``/``unlabeled``/``closed``/``reopened`` as they apply."""
        st = self.state
        state = changes.get("state")
        reason = changes.get("state_reason")
        if state is not None and state not in ("open", "closed"):
            raise validation_failed("Issue", "state", "invalid")
        if reason is not None and reason not in STATE_REASONS:
            raise validation_failed("Issue", "state_reason", "invalid")
        with st.lock:
            issue = self.require_issue(number)
            title = changes.get("title", issue.title)
            body = changes.get("body", issue.body)
            _check_text(title, body)
            edits: dict[str, Any] = {}
            if title != issue.title:
                edits["title"] = {"from": issue.title}
            if body != issue.body:
                edits["body"] = {"from": issue.body or ""}
            issue.title, issue.body = title, body
            if "assignees" in changes:
                issue.assignees = [st.user(login).login for login in dict.fromkeys(changes["assignees"] or [])]
            added: list[Label] = []
            removed: list[Label] = []
            if "labels" in changes:
                target = _check_names(changes["labels"] or [])
                keep = {name.lower() for name in target}
                current = [lab.name for lab in st.issue_labels(issue)]
                removed = self._detach(origin, issue, [n for n in current if n.lower() not in keep])
                added = self._attach(origin, issue, target)
            transition = self._set_state(origin, issue, state, reason)
            issue.updated_at = st.clock.now()
            if edits:
                self._notify(origin, "issues", "edited", issue, changes=edits)
            for label in added:
                self._notify(origin, "issues", "labeled", issue, label=label)
            for label in removed:
                self._notify(origin, "issues", "unlabeled", issue, label=label)
            if transition:
                self._notify(origin, "issues", transition, issue)
        return issue

    def _set_state(self, origin: Origin, issue: Issue, state: str | None, reason: str | None) -> str | None:
        now = self.state.clock.now()
        if state == "closed" and issue.state == "open":
            issue.state, issue.state_reason = "closed", reason or "completed"
            issue.closed_at, issue.closed_by = now, self.state.user(origin.login).login
            self._record(issue, "closed", origin, state_reason=issue.state_reason)
            return "closed"
        if state == "open" and issue.state == "closed":
            issue.state, issue.state_reason = "open", "reopened"
            issue.closed_at = issue.closed_by = None
            self._record(issue, "reopened", origin, state_reason="reopened")
            return "reopened"
        if reason is not None and issue.state == "closed":
            issue.state_reason = reason
        return None

    # -- issue labels --------------------------------------------------------------------------------------
    def add_labels(self, origin: Origin, number: int, names: Iterable[str]) -> list[Label]:
        """Add labels (creating unknown ones); returns the issue's labels afterwards."""
        names = _check_names(names)
        with self.state.lock:
            issue = self.require_issue(number)
            added = self._attach(origin, issue, names)
            if added:
                issue.updated_at = self.state.clock.now()
            for label in added:
                self._notify(origin, "issues", "labeled", issue, label=label)
            return self.state.issue_labels(issue)

    def remove_labels(self, origin: Origin, number: int, names: Iterable[str]) -> list[Label]:
        """Remove those of ``names`` still on the issue (absent ones are skipped: the 404 was decided
        earlier, by :meth:`require_issue_label`); returns the issue's labels afterwards."""
        with self.state.lock:
            issue = self.require_issue(number)
            removed = self._detach(origin, issue, names)
            if removed:
                issue.updated_at = self.state.clock.now()
            for label in removed:
                self._notify(origin, "issues", "unlabeled", issue, label=label)
            return self.state.issue_labels(issue)

    def set_labels(self, origin: Origin, number: int, names: Iterable[str]) -> list[Label]:
        """Replace the issue's labels with ``names``; returns them."""
        self.update_issue(origin, number, {"labels": list(names)})
        return self.state.issue_labels(self.require_issue(number))

    def _attach(self, origin: Origin, issue: Issue, names: Iterable[str]) -> list[Label]:
        added = []
        for name in dict.fromkeys(names):
            label = self.state.label_named(name) or self.create_label(name, AUTO_LABEL_COLOR, None)
            if label.id not in issue.label_ids:
                issue.label_ids.append(label.id)
                self._record(issue, "labeled", origin, label=label)
                added.append(label)
        return added

    def _detach(self, origin: Origin, issue: Issue, names: Iterable[str]) -> list[Label]:
        removed = []
        for name in dict.fromkeys(names):
            label = self.state.label_named(name)
            if label is not None and label.id in issue.label_ids:
                issue.label_ids.remove(label.id)
                self._record(issue, "unlabeled", origin, label=label)
                removed.append(label)
        return removed

    # -- repository labels ---------------------------------------------------------------------------------
    def create_label(self, name: str, color: str | None, description: str | None) -> Label:
        """Create a repository label; 422 ``already_exists`` when the name is taken (case-insensitively)."""
        color = (color or AUTO_LABEL_COLOR).lstrip("#")
        _check_label(name, color)
        with self.state.lock:
            if self.state.label_named(name) is not None:
                raise validation_failed("Label", "name", "already_exists")
            label = Label(self.state.next_id("label"), name, color.lower(), description)
            self.state.labels[label.id] = label
            return label

    def update_label(self, name: str, changes: dict[str, Any]) -> Label:
        with self.state.lock:
            label = self.require_label(name)
            new_name = changes.get("new_name") or changes.get("name") or label.name
            color = (changes.get("color") or label.color).lstrip("#")
            _check_label(new_name, color)
            other = self.state.label_named(new_name)
            if other is not None and other.id != label.id:
                raise validation_failed("Label", "name", "already_exists")
            label.name, label.color = new_name, color.lower()
            if "description" in changes:
                label.description = changes["description"]
            return label

    def delete_label(self, name: str) -> None:
        """Delete a label; it disappears from every issue (without issue events, as on GitHub)."""
        with self.state.lock:
            label = self.require_label(name)
            del self.state.labels[label.id]
            for issue in self.state.issues.values():
                if label.id in issue.label_ids:
                    issue.label_ids.remove(label.id)

    # -- comments ------------------------------------------------------------------------------------------
    def create_comment(self, origin: Origin, number: int, body: str, association: str | None = None) -> Comment:
        """Comment on an issue; fires ``issue_comment.created``."""
        _check_comment(body)
        st = self.state
        with st.lock:
            issue = self.require_issue(number)
            now = st.clock.now()
            comment = Comment(
                id=st.next_id("comment"),
                issue_number=number,
                body=body,
                author=st.user(origin.login).login,
                author_association=association or st.association(origin.login),
                created_at=now,
                updated_at=now,
            )
            st.comments[comment.id] = comment
            issue.comments += 1
            issue.updated_at = now
            self._notify(origin, "issue_comment", "created", issue, comment=comment)
        return comment

    def update_comment(self, origin: Origin, comment_id: int, body: str) -> Comment:
        _check_comment(body)
        with self.state.lock:
            comment = self.require_comment(comment_id)
            old, comment.body = comment.body, body
            comment.updated_at = self.state.clock.now()
            issue = self.require_issue(comment.issue_number)
            self._notify(origin, "issue_comment", "edited", issue, comment=comment, changes={"body": {"from": old}})
        return comment

    def delete_comment(self, origin: Origin, comment_id: int) -> None:
        with self.state.lock:
            comment = self.require_comment(comment_id)
            del self.state.comments[comment_id]
            issue = self.require_issue(comment.issue_number)
            issue.comments -= 1
            self._notify(origin, "issue_comment", "deleted", issue, comment=comment)

    # -- events and webhooks -------------------------------------------------------------------------------
    def _record(self, issue: Issue, event: str, origin: Origin, *, label: Label | None = None, **extra: Any) -> None:
        st = self.state
        st.events.append(
            IssueEvent(
                id=st.next_id("event"),
                issue_number=issue.number,
                event=event,
                actor=st.user(origin.login).login,
                created_at=st.clock.now(),
                label_name=label.name if label else None,
                label_color=label.color if label else None,
                **extra,
            )
        )

    def _one_change(self) -> AbstractContextManager[None]:
        """Deliveries of one change, which the ``reorder`` webhook fault may send last first."""
        return self.hooks.batch() if self.hooks is not None else nullcontext()

    def _notify(
        self,
        origin: Origin,
        event: str,
        action: str,
        issue: Issue,
        *,
        label: Label | None = None,
        comment: Comment | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        # Pull requests get ``pull_request`` webhooks on GitHub, which the emulator does not model.
        if self.hooks is None or (issue.is_pull_request and event == "issues"):
            return
        r = Renderer(self.state, origin.base)
        payload: dict[str, Any] = {"action": action, "issue": r.issue(issue)}
        if label is not None:
            payload["label"] = r.label(label)
        if comment is not None:
            payload["comment"] = r.comment(comment)
        if changes is not None:
            payload["changes"] = changes
        payload["repository"] = r.repository()
        organization = r.organization()
        if organization is not None:
            payload["organization"] = organization
        payload["sender"] = r.user(origin.login)
        self.hooks.emit(event, payload)


def _check_text(title: Any, body: Any) -> None:
    if not isinstance(title, str) or not title.strip():
        raise validation_failed("Issue", "title", "missing_field")
    if len(title) > MAX_TITLE:
        raise too_long("Issue", "title", MAX_TITLE)
    if body is not None and not isinstance(body, str):
        raise invalid_request(f"For 'properties/body', {body!r} is not a string or null.")
    if body is not None and len(body) > MAX_BODY:
        raise too_long("Issue", "body", MAX_BODY)


def _check_comment(body: Any) -> None:
    if not isinstance(body, str) or not body:
        raise validation_failed("IssueComment", "body", "missing_field")
    if len(body) > MAX_BODY:
        raise too_long("IssueComment", "body", MAX_BODY)


def _check_names(names: Iterable[str]) -> list[str]:
    # Checked before anything changes, so a bad name cannot leave an issue half-updated.
    unique = list(dict.fromkeys(names))
    for name in unique:
        _check_label(name, AUTO_LABEL_COLOR)
    return unique


def _check_label(name: Any, color: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise validation_failed("Label", "name", "missing_field")
    if len(name) > MAX_LABEL_NAME:
        raise validation_failed("Label", "name", "invalid")
    if not _COLOR.match(color):
        raise validation_failed("Label", "color", "invalid")
