"""Reads that lag writes: GitHub serves many reads from replicas, so right after a write a ``GET`` can 404 or
show the old state, and a listing can miss a new issue, for a few seconds.

:class:`Replica` keeps copies of the issues and comments as they were after each change, and answers reads with
the copy as of ``read_lag`` seconds ago (on the emulator's clock, so :meth:`FakeGitHub.advance_time` lets the
replica catch up at once). With ``read_lag`` 0 reads see the primary. The lag counts from when it was switched
on: the oldest copy kept is the state at that moment.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from octoqueue.testing.fake_github.faults import FaultSettings
from octoqueue.testing.fake_github.state import Comment, Issue, RepoState


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
        """Copy the current state (after a write); drops copies no read can see any more."""
        lag = self.settings.read_lag
        st = self.state
        with st.lock:
            if lag <= 0:
                self._snapshots.clear()
                return
            now = st.clock.now()
            issues = {
                n: replace(i, label_ids=list(i.label_ids), assignees=list(i.assignees)) for n, i in st.issues.items()
            }
            comments = {cid: replace(c) for cid, c in st.comments.items()}
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
            self.record()  # changes made without a request (the UI helpers) count from now
            return self._snapshots[0]
