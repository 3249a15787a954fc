"""Reads that lag writes: GitHub serves many reads from replicas, so right after a write a ``GET`` can 404 or
show the old state, and a listing can miss a new issue, for a few seconds.

:class:`Replica` keeps copies of the issues and comments as they were after each change, and answers reads with
the copy as of ``read_lag`` seconds ago (on the emulator's clock, so :meth:`FakeGitHub.advance_time` lets the
replica catch up at once). With ``read_lag`` 0 reads see the primary. The lag counts from when it was switched
on: the oldest copy kept is the state at the first write or read after that.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import TypeVar

from octoqueue.testing.fake_github.faults import FaultSettings
from octoqueue.testing.fake_github.state import Comment, Issue, RepoState

T = TypeVar("T")
#: Writes (through the API or the UI helpers) copy the state at once; a read copies it, to catch changes made
#: to the state directly, at most this often (emulator seconds).
READ_RECORD_INTERVAL = 0.05


@dataclass(frozen=True)
class Snapshot:
    """The issues and comments as they were at ``taken`` (emulator clock)."""

    taken: float
    issues: dict[int, Issue]
    comments: dict[int, Comment]


class Replica:
    """Copies of the repository's issues and comments, to serve lagging reads from."""

    def __init__(self, state: RepoState, settings: FaultSettings) -> None:
        self.state = state
        self.settings = settings
        self._snapshots: deque[Snapshot] = deque()

    def record(self) -> None:
        """Copy the current state (after a write); drops copies no read can see any more.

        An issue or comment unchanged since the previous copy shares that copy, so memory grows with the changes
        made within the lag, not with the number of copies times the repository's size.
        """
        lag = self.settings.read_lag
        st = self.state
        with st.lock:
            if lag <= 0:
                self._snapshots.clear()
                return
            now = st.clock.now()
            last = self._snapshots[-1] if self._snapshots else Snapshot(now, {}, {})
            issues = {n: _same(last.issues.get(n), i) or _copy_issue(i) for n, i in st.issues.items()}
            comments = {cid: _same(last.comments.get(cid), c) or replace(c) for cid, c in st.comments.items()}
            self._snapshots.append(Snapshot(now, issues, comments))
            horizon = now - lag
            while len(self._snapshots) > 1 and self._snapshots[1].taken <= horizon:
                self._snapshots.popleft()

    def before_write(self) -> None:
        """Keep the state before a write when no copy is kept yet (the lag was just switched on)."""
        if self.settings.read_lag > 0 and not self._snapshots:
            self.record()

    def view(self) -> Snapshot | None:
        """What a read sees: the state ``read_lag`` seconds ago, or None to read the primary."""
        if self.settings.read_lag <= 0:
            self.record()  # forget the copies
            return None
        with self.state.lock:
            newest = self._snapshots[-1].taken if self._snapshots else None
            if newest is None or self.state.clock.now() - newest >= READ_RECORD_INTERVAL:
                self.record()  # changes made to the state directly count from about now
            return self._snapshots[0]


def _same(kept: T | None, current: T) -> T | None:
    """The kept copy when it still equals ``current`` (dataclass equality), else None."""
    return kept if kept is not None and kept == current else None


def _copy_issue(issue: Issue) -> Issue:
    return replace(issue, label_ids=list(issue.label_ids), assignees=list(issue.assignees))
