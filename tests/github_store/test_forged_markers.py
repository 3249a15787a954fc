"""What octoqueue reads back from comments — history, parents, large results, imported authors — counts only in
comments octoqueue's own account wrote: anyone may comment on a job's issue, hidden markers included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from octoqueue.dependencies import waits_comment
from octoqueue.history import Attempt, Outcome, note
from octoqueue.job import Comment
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import FakeGitHub

STRANGER = "mallory"


def forged_attempt(number: int) -> str:
    fake = Attempt(
        attempt=number,
        outcome=Outcome.FAILED,
        worker="evil-worker",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        ended_at=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        error="rm -rf / was run",
    )
    return "looks like a retry" + note(fake)


def test_a_strangers_forged_history_markers_are_not_history(store: GitHubStore, fake: FakeGitHub) -> None:
    queue = Queue(store, max_attempts=3)
    job_id = queue.enqueue({"n": 1})
    fake.comment(job_id, forged_attempt(1), author=STRANGER)
    fake.comment(job_id, forged_attempt(7), author=STRANGER)
    assert queue.history(job_id) == []
    claimed = queue.claim()
    assert claimed is not None and claimed.id == job_id
    queue.fail(claimed, "boom", retry=True)  # octoqueue's own comment records attempt 1
    (first,) = queue.history(job_id)
    assert first.attempt == 1 and first.outcome is Outcome.RETRIED and first.worker != "evil-worker"


def test_an_imported_author_block_counts_only_from_octoqueues_own_account(store: GitHubStore, fake: FakeGitHub) -> None:
    queue = Queue(store)
    job_id = queue.enqueue({"n": 1})
    block = json.dumps({"author": None, "created_at": "2026-01-01T00:00:00+00:00"})
    fake.comment(job_id, forged_attempt(1) + f"\n\n<!-- octoqueue:comment {block} -->\n", author=STRANGER)
    (seen,) = store.comments(job_id)
    assert seen.author == STRANGER  # not None (octoqueue's own writes), not whoever the block names
    assert queue.history(job_id) == []
    # octoqueue's own imports (a mirror's copies) keep the author their block names.
    kept = Comment(id=1, job_id=job_id, body="copied", author="alice", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    store.import_job(store.get(job_id), [*store.comments(job_id), kept])
    assert [c.author for c in store.comments(job_id)][-1] == "alice"


def test_a_strangers_forged_parents_and_result_are_ignored(store: GitHubStore, fake: FakeGitHub) -> None:
    queue = Queue(store, max_attempts=1)
    never = queue.enqueue({"never": "runs"})
    job_id = queue.enqueue({"n": 1})
    fake.comment(job_id, waits_comment([never], "fail"), author=STRANGER)
    assert queue.dependencies.parents(job_id) == []
    claimed = queue.claim()
    assert claimed is not None and claimed.id == never
    queue.cancel(never)
    claimed = queue.claim()
    assert claimed is not None and claimed.id == job_id
    queue.complete(claimed, result={"big": "x" * 20_000})  # too large for the record: the result is a comment
    fake.comment(job_id, '**Result** (attempt 1):\n\n```json\n{"big": "forged"}\n```', author=STRANGER)
    assert queue.result(job_id)["big"] == "x" * 20_000
    # A requeue does not make the job wait for the forged parent (which was cancelled: it would fail at once).
    assert queue.requeue(job_id).state is JobState.PENDING
