"""``--follow``: the mirror keeps up while the source works, costs nothing when idle, and GitHub as the face of a fast
queue: a requeue made on the GitHub side runs the job again on the source."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from octoqueue.mirror import Mirror, Selection
from octoqueue.mirror_requests import TargetRequests
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.testing.clock import ManualClock
from octoqueue.testing.fake_github import FakeGitHub
from tests.mirror.conftest import MakeGitHub, assert_same_queue

PROCESSED = 200


def _mirrored_job(
    make_github: MakeGitHub, source: SQLiteStore, *, failed: bool
) -> tuple[FakeGitHub, Queue, Mirror, TargetRequests]:
    """One job on ``source`` (failed once when ``failed``), copied to a GitHub face whose requests act on it."""
    queue = Queue(source, max_attempts=1)
    queue.enqueue({"n": 1})
    if failed:
        job = queue.claim()
        assert job is not None
        queue.fail(job, error="no")
    fake, face = make_github("octo-org/face")
    copier = Mirror(source, face)
    requests = TargetRequests(copier, queue)
    copier.run()
    fake.advance_time(5)
    return fake, queue, copier, requests


def test_follow_keeps_the_copy_equal_while_200_jobs_are_processed(make_github: MakeGitHub, tmp_path: Path) -> None:
    clock = ManualClock()
    source = SQLiteStore(tmp_path / "fast.db", clock=clock)
    queue = Queue(source, max_attempts=2)
    _, face = make_github("octo-org/face")
    for n in range(20):
        queue.enqueue({"n": n})
    done = 0

    def work_meanwhile(_interval: float) -> None:
        """Between two polls the source moves on: new jobs arrive, jobs are claimed, completed, failed, retried."""
        nonlocal done
        clock.advance(1)
        for n in range(15):
            queue.enqueue({"batch": done, "n": n})
        for job in queue.claim_batch(25, lease=60):
            if job.id % 7 == 0:
                queue.fail(job, error=f"job {job.id} broke", retry=True)  # back to pending, or failed for good
            elif job.id % 11 == 0:
                continue  # stays processing for now
            else:
                queue.complete(job, result={"id": job.id})
            done += 1

    copier = Mirror(source, face, wait=work_meanwhile)
    passes: list[int] = []
    copier.follow(stop=lambda: done >= PROCESSED, on_pass=lambda tally: passes.append(tally.changed))
    assert done >= PROCESSED and len(passes) > 5 and all(passes)
    assert_same_queue(source, face)
    assert copier.poll().changed == 0  # nothing moved since: nothing written
    source.close()


def test_an_idle_poll_of_a_github_source_is_a_304(make_github: MakeGitHub, tmp_path: Path) -> None:
    fake, github = make_github("octo-org/source")
    queue = Queue(github)
    for n in range(3):
        queue.enqueue({"n": n})
    copy = SQLiteStore(tmp_path / "copy.db")
    copier = Mirror(github, copy)
    assert copier.run().created == 3
    copier.poll()
    fake.reset_counters()
    assert copier.poll().changed == 0
    assert [status for _, _, status in fake.request_log] == [304]  # GitHub does not count it against the limit
    queue.cancel(2)
    assert copier.poll().updated == 1 and copy.get(2).state is JobState.CANCELLED
    copy.close()


def test_a_requeue_on_github_runs_the_job_again_on_the_source(make_github: MakeGitHub, tmp_path: Path) -> None:
    clock = ManualClock()
    source = SQLiteStore(tmp_path / "fast.db", clock=clock)
    queue = Queue(source, max_attempts=1)
    for n in range(4):
        queue.enqueue({"n": n})
    for job in queue.claim_batch(4):
        if job.id == 1:
            queue.complete(job)
        else:
            queue.fail(job, error=f"job {job.id}: the SMTP server said no")
    fake, face = make_github("octo-org/face")
    copier = Mirror(source, face, selection=Selection(states=frozenset({JobState.FAILED})))
    requests = TargetRequests(copier, queue)
    assert copier.run().created == 3
    assert face.get(2).state is JobState.FAILED and "SMTP server said no" in face.comments(2)[-1].body
    assert requests.poll().requests == []  # nobody asked anything yet

    fake.advance_time(5)  # people come by later (GitHub stamps comments in whole seconds)
    fake.add_label(2, "requeue")  # a person with triage access, on the issue page
    fake.comment(3, "/retry please", author="octo-org")  # the repository's owner
    fake.comment(4, "/requeue", author="stranger")  # no write access: ignored
    asked = requests.poll().requests
    assert sorted(line.split(":")[0] for line in asked) == ["job 2", "job 3"]
    assert source.get(2).state is JobState.PENDING and source.get(4).state is JobState.FAILED
    copier.poll()
    assert face.get(2).state is JobState.PENDING and face.get(2).labels == ()  # the requeue label is gone

    # The fast queue runs them again after the people asked (both clocks are the real one in production; here the
    # source's is a ManualClock, so bring it past the emulator's, which stamped the comments).
    clock.set(datetime.fromtimestamp(fake.clock.now() + 1, UTC))
    for job in queue.claim_batch(5):
        queue.complete(job, result="sent")
    copier.poll()
    for number in (2, 3):
        assert source.get(number).state is JobState.COMPLETED and source.get(number).attempt == 2
        assert face.get(number).state is JobState.COMPLETED and not face.get(number).open
    assert requests.poll().requests == []  # each request is acted upon once
    clock.advance(timedelta(minutes=5))
    assert requests.poll().requests == [] and copier.poll().changed == 0
    source.close()


def test_a_strangers_comment_cannot_pass_for_a_maintainers_or_a_future_one(
    make_github: MakeGitHub, tmp_path: Path
) -> None:
    """The hidden block an imported comment ends with names its author and time; a stranger who writes one must not
    pass for the owner (who may cancel) nor date the comment in the future (a request acted upon again and again)."""
    source = SQLiteStore(tmp_path / "fast.db", clock=ManualClock())
    fake, _, _, requests = _mirrored_job(make_github, source, failed=False)
    block = json.dumps({"author": "octo-org", "created_at": "2999-01-01T00:00:00+00:00"}, separators=(",", ":"))
    fake.comment(1, f"/cancel\n\n<!-- octoqueue:comment {block} -->\n", author="stranger")
    assert requests.poll().requests == []
    assert source.get(1).state is JobState.PENDING
    source.close()


def test_a_stranger_spamming_commands_costs_one_permission_request_a_minute(
    make_github: MakeGitHub, tmp_path: Path
) -> None:
    source = SQLiteStore(tmp_path / "fast.db", clock=ManualClock())
    fake, _, _, requests = _mirrored_job(make_github, source, failed=True)
    fake.reset_counters()
    for n in range(10):  # each comment changes the issue, so each poll reads every comment again
        fake.comment(1, f"/requeue {n}", author="stranger")
        assert requests.poll().requests == []
    asked = [path for _, path, _ in fake.request_log if "/permission" in path]
    assert len(asked) == 1
    assert source.get(1).state is JobState.FAILED
    source.close()


def test_a_comment_is_acted_upon_once_even_when_the_source_clock_is_behind_githubs(
    make_github: MakeGitHub, tmp_path: Path
) -> None:
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=1))  # the source's clock is an hour behind GitHub's
    source = SQLiteStore(tmp_path / "fast.db", clock=clock)
    fake, queue, copier, requests = _mirrored_job(make_github, source, failed=True)
    fake.comment(1, "/requeue", author="octo-org")
    assert len(requests.poll().requests) == 1
    for _ in range(3):  # the job runs again, and the mirror copies it, and looks for requests
        again = queue.claim()
        assert again is not None
        queue.complete(again)
        copier.poll()
        assert requests.poll().requests == []
        queue.requeue(1)  # anything else that changes the job keeps the comment acted upon
        copier.poll()
    assert source.get(1).attempt == 4
    source.close()
