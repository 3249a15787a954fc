"""The emulated repository's data: plain records behind one lock.

Only the records and their lookups live here; the rules for changing them (events, webhooks, validation)
live in :mod:`.issues` and :mod:`.git`.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from octoqueue.testing.fake_github.clock import Clock

#: The sha of the commit every emulated repository starts with (``refs/heads/main`` points at it).
INITIAL_COMMIT_SHA = hashlib.sha1(b"octoqueue fake-github initial commit").hexdigest()


@dataclass
class User:
    login: str
    id: int
    created_at: float
    type: str = "User"
    site_admin: bool = False


#: Repository roles, weakest first; the permission endpoint's legacy ``permission`` maps maintain→write, triage→read.
ROLES = ("read", "triage", "write", "maintain", "admin")
LEGACY_PERMISSION = {"read": "read", "triage": "read", "write": "write", "maintain": "write", "admin": "admin"}


@dataclass
class Member:
    """A person's place in the organisation that owns the repository."""

    role: str
    #: Public membership shows as ``MEMBER``; a private one does not (see :meth:`RepoState.association`).
    public: bool


@dataclass
class Label:
    id: int
    name: str
    color: str
    description: str | None
    default: bool = False


@dataclass
class Issue:
    number: int
    id: int
    title: str
    body: str | None
    author: str
    author_association: str
    created_at: float
    updated_at: float
    state: str = "open"
    state_reason: str | None = None
    #: Label ids, not names: renaming a label keeps it on its issues, as on GitHub.
    label_ids: list[int] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    locked: bool = False
    comments: int = 0
    closed_at: float | None = None
    closed_by: str | None = None
    is_pull_request: bool = False


@dataclass
class Comment:
    id: int
    issue_number: int
    body: str
    author: str
    author_association: str
    created_at: float
    updated_at: float


@dataclass
class IssueEvent:
    id: int
    issue_number: int
    event: str
    actor: str
    created_at: float
    #: GitHub keeps the label's name and colour as they were when the event happened.
    label_name: str | None = None
    label_color: str | None = None
    state_reason: str | None = None


@dataclass
class Commit:
    sha: str
    parents: tuple[str, ...]
    message: str
    created_at: float


@dataclass
class RepoState:
    """Everything one emulated repository holds. Callers take :attr:`lock` around any read-then-write."""

    owner: str
    name: str
    token_login: str
    clock: Clock
    #: ``Organization`` for an organisation-owned repository, else ``User``.
    owner_type: str = "User"
    id: int = 100_001
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: dict[str, User] = field(default_factory=dict)
    labels: dict[int, Label] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    events: list[IssueEvent] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    #: Issue dependencies: issue number -> the numbers of the issues it is blocked by, in the order added.
    blocked_by: dict[int, list[int]] = field(default_factory=dict)
    #: Organisation members (organisation-owned repositories only), by lower-case login.
    members: dict[str, Member] = field(default_factory=dict)
    #: Outside collaborators and their role, by lower-case login.
    collaborators: dict[str, str] = field(default_factory=dict)
    #: Logins that have contributed (a commit in the default branch): ``CONTRIBUTOR`` when nothing stronger.
    contributors: set[str] = field(default_factory=set)
    created_at: float = 0.0
    pushed_at: float = 0.0

    def __post_init__(self) -> None:
        # Distinct id ranges per kind make a mixed-up id (a comment id used as an issue id) fail loudly.
        self._ids = {
            kind: itertools.count(start)
            for kind, start in {
                "user": 1_001,
                "label": 2_000_001,
                "issue": 3_000_001,
                "comment": 4_000_001,
                "event": 5_000_001,
            }.items()
        }
        self._numbers = itertools.count(1)
        now = self.clock.now()
        self.created_at = self.pushed_at = now
        self.user(self.owner).type = self.owner_type
        self.user(self.token_login)
        if self.owner_type == "Organization" and self.token_login.lower() != self.owner.lower():
            self.members[self.token_login.lower()] = Member("admin", public=True)
        self.commits[INITIAL_COMMIT_SHA] = Commit(INITIAL_COMMIT_SHA, (), "Initial commit", now)
        self.refs["refs/heads/main"] = INITIAL_COMMIT_SHA

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def next_id(self, kind: str) -> int:
        with self.lock:
            return next(self._ids[kind])

    def next_number(self) -> int:
        """Issues and pull requests share one number sequence."""
        with self.lock:
            return next(self._numbers)

    def user(self, login: str) -> User:
        """The user with this login, registered on first sight (the emulator knows every login)."""
        with self.lock:
            key = login.lower()
            if key not in self.users:
                self.users[key] = User(login, next(self._ids["user"]), self.clock.now())
            return self.users[key]

    def association(self, login: str) -> str:
        """``author_association`` for a login, as GitHub shows it to everyone.

        The owner of a user-owned repository (and the token's user there) is ``OWNER``; a public member of the
        owning organisation ``MEMBER``; an outside collaborator ``COLLABORATOR``; a contributor — and a private
        member, whose membership GitHub does not reveal — ``CONTRIBUTOR``; anyone else ``NONE``.
        """
        key = login.lower()
        with self.lock:
            if self.owner_type == "User" and key in {self.owner.lower(), self.token_login.lower()}:
                return "OWNER"
            member = self.members.get(key)
            if member is not None and member.public:
                return "MEMBER"
            if key in self.collaborators:
                return "COLLABORATOR"
            if member is not None or key in self.contributors:
                return "CONTRIBUTOR"
            return "NONE"

    def role(self, login: str) -> str:
        """The login's highest repository role from every grant; ``read`` for anyone (the repository is public)."""
        key = login.lower()
        with self.lock:
            if self.owner_type == "User" and key in {self.owner.lower(), self.token_login.lower()}:
                return "admin"
            grants = ["read", self.collaborators.get(key, "read")]
            if key in self.members:
                grants.append(self.members[key].role)
        return max(grants, key=ROLES.index)

    def label_named(self, name: str) -> Label | None:
        """Label names are case-insensitive on GitHub."""
        key = name.lower()
        with self.lock:
            return next((label for label in self.labels.values() if label.name.lower() == key), None)

    def blocking(self, number: int) -> list[int]:
        """The numbers of the issues that issue ``number`` blocks (the reverse of :attr:`blocked_by`)."""
        return [child for child, parents in self.blocked_by.items() if number in parents]

    def issue_labels(self, issue: Issue) -> list[Label]:
        """The issue's labels in GitHub's order (by name)."""
        with self.lock:
            found = [self.labels[i] for i in issue.label_ids if i in self.labels]
        return sorted(found, key=lambda label: label.name.lower())

    def add_commit(self, parent: str, message: str) -> str:
        """Record a commit whose parent is ``parent``; returns its sha."""
        with self.lock:
            if parent not in self.commits:
                raise KeyError(parent)
            now = self.clock.now()
            sha = hashlib.sha1(f"{parent}\n{message}\n{len(self.commits)}".encode()).hexdigest()
            self.commits[sha] = Commit(sha, (parent,), message, now)
            self.pushed_at = now
            return sha

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ``descendant`` is ``ancestor`` or reaches it through parents (a fast-forward)."""
        with self.lock:
            todo, seen = [descendant], set()
            while todo:
                sha = todo.pop()
                if sha == ancestor:
                    return True
                if sha in seen or sha not in self.commits:
                    continue
                seen.add(sha)
                todo.extend(self.commits[sha].parents)
            return False
