"""Git references: the one compare-and-swap GitHub offers.

``create`` checks and inserts under the repository lock, so of many clients racing to create the same ref
exactly one gets 201 and the rest 422 "Reference already exists" — octoqueue claims jobs this way.
"""

from __future__ import annotations

import re

from octoqueue.testing.fake_github.errors import GitHubError, not_found
from octoqueue.testing.fake_github.state import RepoState

_SHA = re.compile(r"^[0-9a-f]{40}$")
# git check-ref-format's forbidden sequences (a subset that matters for names people pick).
_BAD_REF = re.compile(r"(\.\.|@\{|[\x00-\x20~^:?*\[\\]|//|/\.|\.lock(/|$)|[/.]$)")


def _unprocessable(message: str) -> GitHubError:
    return GitHubError(422, message)


class GitRefs:
    """The refs of the emulated repository (``refs/heads/main`` exists from the start)."""

    def __init__(self, state: RepoState) -> None:
        self.state = state

    def _known_sha(self, sha: object) -> str:
        if not isinstance(sha, str) or not _SHA.match(sha) or sha not in self.state.commits:
            raise _unprocessable("Object does not exist")
        return sha

    def create(self, ref: str, sha: object) -> str:
        """Create ``ref`` (fully qualified, ``refs/...``) at ``sha``; atomic create-if-absent."""
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise _unprocessable("Reference name must contain at least three slash-separated components.")
        if _BAD_REF.search(ref):
            raise _unprocessable(f"{ref} is not a valid ref name.")
        with self.state.lock:
            sha = self._known_sha(sha)
            refs = self.state.refs
            if ref in refs:
                raise _unprocessable("Reference already exists")
            # git cannot hold both refs/a/b and refs/a/b/c (one would be a file, the other a directory).
            if any(other.startswith(ref + "/") or ref.startswith(other + "/") for other in refs):
                raise _unprocessable("Reference update failed")
            refs[ref] = sha
            return sha

    def get(self, short_ref: str) -> str:
        """The sha of ``refs/<short_ref>`` (``heads/main``); 404 when absent."""
        with self.state.lock:
            sha = self.state.refs.get(f"refs/{short_ref}")
        if sha is None:
            raise not_found()
        return sha

    def matching(self, prefix: str) -> list[tuple[str, str]]:
        """Refs whose name starts with ``refs/<prefix>``, sorted; empty when none match."""
        full = f"refs/{prefix}" if prefix else "refs/"
        with self.state.lock:
            return sorted((ref, sha) for ref, sha in self.state.refs.items() if ref.startswith(full))

    def update(self, short_ref: str, sha: object, force: bool) -> str:
        """Move ``refs/<short_ref>`` to ``sha``; without ``force`` only a fast-forward is allowed."""
        with self.state.lock:
            ref = f"refs/{short_ref}"
            current = self.state.refs.get(ref)
            if current is None:
                raise _unprocessable("Reference does not exist")
            sha = self._known_sha(sha)
            if not force and not self.state.is_ancestor(current, sha):
                raise _unprocessable("Update is not a fast forward")
            self.state.refs[ref] = sha
            return sha

    def delete(self, short_ref: str) -> None:
        """Delete ``refs/<short_ref>``; 422 "Reference does not exist" when absent."""
        with self.state.lock:
            if self.state.refs.pop(f"refs/{short_ref}", None) is None:
                raise _unprocessable("Reference does not exist")
