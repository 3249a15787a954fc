"""Exclusive moves on GitHub: git refs created only if absent.

``POST /repos/{o}/{r}/git/refs`` answers 201 when it made the ref and 422 "Reference already exists" when the ref
was there — the one atomic create-if-absent GitHub's REST API offers. Whoever creates a ref owns the move it names
(a claim, a recovery, a settings revision, an idempotency key); everyone else learns they lost.

A winner that dies before acting would leave its name taken for ever, so :meth:`RefLocks.take` *rescues*: a name
seen taken for ``orphan_grace`` seconds, while ``still_current()`` confirms that the move never happened, is
replaced by the next name ``…-r1``, ``…-r2``. A winner must act before :meth:`RefLocks.deadline` (half the grace)
or not at all, so a rescuer never races a slow winner.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from octoqueue.errors import ConfigurationError, StoreUnavailable
from octoqueue.stores.github.client import GitHubClient, error_message

log = logging.getLogger("octoqueue.github")

#: Taken names remembered (with when they were first seen taken) for rescues.
SEEN_LIMIT = 10_000


class RefLocks:
    """Create-if-absent refs in ``owner/repo``, pointing at the default branch's head commit (read once)."""

    def __init__(self, client: GitHubClient, owner: str, repo: str, *, orphan_grace: float) -> None:
        self._client = client
        self.owner, self.repo = owner, repo
        self.orphan_grace = orphan_grace
        self._lock = threading.Lock()
        self._sha: str | None = None
        self._seen_taken: OrderedDict[str, float] = OrderedDict()

    def anchor(self, refresh: bool = False) -> str:
        """A commit for refs to point at (any will do): the default branch's head, fetched once."""
        with self._lock:
            if self._sha is not None and not refresh:
                return self._sha
        repo = self._client.get(f"/repos/{self.owner}/{self.repo}", what="read the repository", use_cache=False)
        branch = repo.data.get("default_branch") or "main"
        response = self._client.call(
            lambda gh: gh.rest.git.get_ref(self.owner, self.repo, f"heads/{branch}"),
            expect=(404, 409),
            what="find a commit for claim refs",
        )
        sha = (response.json().get("object") or {}).get("sha") if response.status_code == 200 else None
        if not sha:
            raise ConfigurationError(
                f"{self.owner}/{self.repo} has no commits on {branch}: octoqueue's claims are git refs and need "
                "one commit to point at. Push an initial commit (a README will do)."
            )
        with self._lock:
            self._sha = str(sha)
            return self._sha

    def create(self, name: str, *, deadline: float | None = None) -> bool:
        """Create ref ``name``; True if this call created it, False if it already existed.

        A 5xx is retried (by the client), and so is GitHub's transient 422 "Reference update failed"; either may
        have made the ref all the same, and then the retry's "already exists" reads as a loss (the name is
        rescued later, see :meth:`take`).
        """
        sha = self.anchor()
        refreshed = False
        tries = self._client.retries + 1
        for attempt in range(tries):
            data = {"ref": name, "sha": sha}
            response = self._client.call(
                lambda gh, data=data: gh.rest.git.create_ref(self.owner, self.repo, data=data),  # type: ignore[misc]
                expect=(409, 422),
                deadline=deadline,
                what=f"take {name}",
            )
            if response.status_code < 300:
                return True
            message = error_message(response)
            if "already exists" in message.lower():
                return False
            if "reference update failed" in message.lower() and attempt < tries - 1:
                log.info("%s: GitHub answered 422 %s; trying again", name, message)
                time.sleep(self._client.retry_backoff * 2**attempt * random.uniform(0.75, 1.25))
                continue
            if not refreshed and attempt < tries - 1:
                refreshed = True
                sha = self.anchor(refresh=True)  # the commit may have gone (force push): find another
                continue
            raise StoreUnavailable(f"GitHub refused to create {name}: {response.status_code} {message}")
        raise AssertionError("unreachable")

    def take(self, name: str, still_current: Callable[[], bool] | None = None) -> bool:
        """Win the move named by ref ``name``: True if this process owns it now, False if another does.

        When ``name`` (or a rescue name after it) was seen taken ``orphan_grace`` seconds ago and
        ``still_current()`` confirms the move never happened, the winner is presumed dead and the next rescue
        name ``name-rN`` is tried. Without ``still_current`` there is no rescue.
        """
        return self.take_name(name, still_current) is not None

    def take_name(self, name: str, still_current: Callable[[], bool] | None = None) -> str | None:
        """:meth:`take`, answering the name this process won (``name`` or a rescue name ``name-rN``) or None."""
        level = 0
        while True:
            current = name if level == 0 else f"{name}-r{level}"
            if self.create(current):
                return current
            now = time.monotonic()
            with self._lock:
                seen = self._seen_taken.setdefault(current, now)
                while len(self._seen_taken) > SEEN_LIMIT:
                    self._seen_taken.popitem(last=False)
            if now - seen < self.orphan_grace or still_current is None or not still_current():
                return None
            log.warning(
                "%s was taken %.0f s ago and nothing happened: rescuing with the next name", current, now - seen
            )
            level += 1

    def deadline(self, started: float) -> float:
        """The latest moment (``time.monotonic()``) a move whose ref was taken at ``started`` may be written."""
        return started + self.orphan_grace / 2

    def delete_under(self, prefix: str) -> None:
        """Delete every ref whose name starts with ``refs/{prefix}``."""
        response = self._client.call(
            lambda gh: gh.rest.git.list_matching_refs(self.owner, self.repo, prefix),
            expect=(404,),
            what=f"list refs/{prefix}",
        )
        if response.status_code != 200:
            return
        for ref in response.json():
            name = str(ref.get("ref", ""))[len("refs/") :]
            self._client.call(
                lambda gh, name=name: gh.rest.git.delete_ref(self.owner, self.repo, name),  # type: ignore[misc]
                expect=(404, 422),
                what=f"delete refs/{name}",
            )

    def find(self, prefix: str) -> list[str]:
        """Names of the refs under ``refs/{prefix}`` (one request)."""
        response = self._client.call(
            lambda gh: gh.rest.git.list_matching_refs(self.owner, self.repo, prefix),
            expect=(404,),
            what=f"list refs/{prefix}",
        )
        if response.status_code != 200:
            return []
        return [str(ref.get("ref", "")) for ref in response.json()]
