"""A mirror into GitHub with its secondary limits on (80 writes a minute, 500 an hour): paced under them, killed
halfway (right after GitHub made a comment, before the answer arrived) and run again: it finishes, nothing is
duplicated, and no request was refused before the kill.

Time is virtual (tests/github_store/test_pacing.py's VirtualTime): a pacer's sleep moves its clock and the
emulator's together, so hours of GitHub pacing take seconds. ``OCTOQUEUE_MIRROR_PACING_JOBS`` sets the job count
(300 in CI; ``make mirror-pacing`` runs 2,000).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from github_store.test_pacing import VirtualTime  # tests/ is on the path: its packages are top-level

import octoqueue.queue
from octoqueue.mirror import Mirror
from octoqueue.states import JobState
from octoqueue.stores.github import GitHubStore, claims, client, posts, refs, settings
from octoqueue.stores.github import store as github_store
from octoqueue.stores.memory import MemoryStore
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub
from tests.mirror.conftest import TOKEN, assert_same_queue

REPO = "octo-org/face"
JOBS = int(os.environ.get("OCTOQUEUE_MIRROR_PACING_JOBS", "300"))


class KilledAfter(httpx.BaseTransport):
    """Passes requests on; the ``after``-th comment POST reaches GitHub, and then the process "dies"."""

    def __init__(self, inner: Any, after: int) -> None:
        self.inner, self.after, self.seen = inner, after, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/comments"):
            self.seen += 1
            if self.seen == self.after:
                raise KeyboardInterrupt("killed right after GitHub made a comment")
        return response

    def close(self) -> None:
        self.inner.close()


def paced_store(transport: Any) -> GitHubStore:
    return GitHubStore(
        REPO,
        token=TOKEN,
        base_url=IN_PROCESS_URL,
        transport=transport,
        writes_per_minute=80,
        writes_per_hour=500,
        retry_backoff=0.01,
        read_lag=0.0,
    )


def source_queue(count: int) -> MemoryStore:
    """``count`` jobs: a third pending, a third completed with a result comment, a third failed with its error."""
    store = MemoryStore()
    for n in range(count):
        job = store.create(octoqueue.queue.NewJob(data={"n": n}, title=f"job {n}", max_attempts=1))
        if n % 3 == 1:
            store.transition(job.id, expected=JobState.PENDING, target=JobState.COMPLETED, result=n)
            store.comment(job.id, f"result: {n}")
        elif n % 3 == 2:
            store.transition(job.id, expected=JobState.PENDING, target=JobState.FAILED, last_error=f"error {n}")
            store.comment(job.id, f"This job has failed: error {n}")
    return store


def test_a_paced_mirror_into_github_is_killed_and_resumed(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeGitHub(repo=REPO, token=TOKEN, enforce_secondary=True) as fake:  # GitHub's 80/min and 500/h
        clock = VirtualTime(fake)
        for module in (client, github_store, refs, claims, posts, settings):
            monkeypatch.setattr(module, "time", clock)
        source = source_queue(JOBS)

        first = paced_store(KilledAfter(fake.transport(), after=JOBS // 3))
        with pytest.raises(KeyboardInterrupt):
            Mirror(source, first, wait=clock.sleep).run()
        refused_before_kill = [entry for entry in fake.request_log if entry[2] in (403, 429)]
        made_before_kill = len(fake.issues)
        assert refused_before_kill == []
        assert 0 < made_before_kill < JOBS

        # A new process (its own transport and pacer, knowing nothing of the first one's writes).
        second = paced_store(fake.transport())
        resumed = Mirror(source, second, wait=clock.sleep).run()
        assert resumed.created == JOBS - made_before_kill
        assert resumed.unchanged + resumed.updated == made_before_kill
        assert len(fake.issues) == JOBS  # one issue per job: none made twice
        assert_same_queue(source, second)
        assert sum(len(fake.comments_of(n)) for n in range(1, JOBS + 1)) == 2 * (JOBS // 3) + (JOBS % 3 == 2)

        again = Mirror(source, second, wait=clock.sleep).run()
        assert (again.examined, again.changed) == (JOBS, 0)
        refused = [entry for entry in fake.request_log if entry[2] in (403, 429)]
        writes = [entry for entry in fake.request_log if entry[0] != "GET"]
        print(
            f"\n{JOBS} jobs mirrored into GitHub: {len(writes)} writes over {clock.slept / 3600:.1f} virtual hours, "
            f"{len(refused)} refused (all after the restart, each waited out), {resumed.rate_limit_waits} waits"
        )
        first.close()
        second.close()
