"""The GitHub store's verbs against the emulator, and what people do to issues by hand."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from octoqueue.errors import (
    ConfigurationError,
    DeadlinePassed,
    JobNotFound,
    JobTooLarge,
    LeaseLost,
    RateLimited,
    StateConflict,
)
from octoqueue.github import GithubQueue
from octoqueue.job import NewJob
from octoqueue.queue import Queue
from octoqueue.states import JobState
from octoqueue.stores import open_store
from octoqueue.stores.github import GitHubStore
from octoqueue.stores.github.client import Ambiguous
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub
from octoqueue.worker import Worker

from .conftest import FAST, REPO, TOKEN, MakeStore


def new(data: object = None, **kw: object) -> NewJob:
    return NewJob(data={"n": 0} if data is None else data, title=str(kw.pop("title", "job")), **kw)  # type: ignore[arg-type]


# -- the issue a job is ---------------------------------------------------------------------------------------
def test_job_is_an_issue(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new({"x": "é"}, title="hello", labels=("gpu",), priority=1, max_attempts=3))
    issue = fake.get_issue(job.id)
    assert issue["title"] == "hello" and issue["state"] == "open"
    assert sorted(fake.labels_of(job.id)) == ["gpu", "pending"]
    assert issue["body"].startswith('```json\n{\n  "x": "é"\n}\n```')  # the original Octoqueue's block
    assert "<!-- octoqueue:meta" in issue["body"]
    assert job.url == issue["html_url"]
    (claimed,) = store.claim(worker="w", lease=60)
    done = store.transition(claimed.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1)
    issue = fake.get_issue(job.id)
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    assert sorted(fake.labels_of(job.id)) == ["completed", "gpu"]
    assert done.labels == ("gpu",) and not done.open


def test_failed_and_cancelled_close_as_not_planned(fake: FakeGitHub, store: GitHubStore) -> None:
    a, b = store.create(new()), store.create(new())
    store.transition(a.id, expected=JobState.PENDING, target=JobState.FAILED)
    store.transition(b.id, expected=JobState.PENDING, target=JobState.CANCELLED)
    assert fake.get_issue(a.id)["state_reason"] == fake.get_issue(b.id)["state_reason"] == "not_planned"


def test_body_too_large_is_refused_before_sending(fake: FakeGitHub, store: GitHubStore) -> None:
    store.create(new())  # set-up requests out of the way
    fake.reset_counters()
    with pytest.raises(JobTooLarge):
        store.create(new({"big": "x" * 70_000}))
    with pytest.raises(JobTooLarge):
        store.comment(1, "y" * 70_000)
    assert fake.request_log == []


def test_claim_refs_are_the_fencing_tokens(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new(max_attempts=3))
    store.claim(worker="w", lease=60)
    store.transition(job.id, expected=JobState.PROCESSING, target=JobState.PENDING, attempt=1)
    store.claim(worker="w", lease=60)
    claims = sorted(r for r in fake.refs if r.startswith("refs/octoqueue/claims/"))
    assert claims == [f"refs/octoqueue/claims/{job.id}-1", f"refs/octoqueue/claims/{job.id}-2"]


def test_cancel_of_pending_job_and_requeue_use_fresh_names(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new())
    store.transition(job.id, expected=JobState.PENDING, target=JobState.CANCELLED)
    store.transition(job.id, expected=JobState.CANCELLED, target=JobState.PENDING)
    (claimed,) = store.claim(worker="w", lease=60)  # the cancel took claims/{n}-1; this spell is -g1
    assert claimed.id == job.id and claimed.attempt == 1
    assert f"refs/octoqueue/claims/{job.id}-1-g1" in fake.refs


def _race(worker: GitHubStore, admin: GitHubStore, job_id: int) -> dict[str, object]:
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def claim() -> None:
        barrier.wait()
        results["claim"] = worker.claim(worker="w", lease=60)

    def cancel() -> None:
        barrier.wait()
        try:
            results["cancel"] = admin.transition(job_id, expected=JobState.PENDING, target=JobState.CANCELLED)
        except StateConflict as exc:
            results["cancel"] = exc

    threads = [threading.Thread(target=claim), threading.Thread(target=cancel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_claim_and_cancel_race_one_wins(make_store: MakeStore) -> None:
    producer = make_store()
    for _ in range(5):
        job = producer.create(new())
        results = _race(make_store(), make_store(), job.id)
        final = producer.get(job.id)
        if results["claim"]:
            assert isinstance(results["cancel"], StateConflict)
            assert final.state is JobState.PROCESSING
        else:
            assert final.state is JobState.CANCELLED


# -- people at work --------------------------------------------------------------------------------------------
def test_closed_by_hand_reads_as_cancelled(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new())
    fake.edit_issue(job.id, state="closed", state_reason="not_planned")
    got = store.get(job.id)
    assert got.state is JobState.CANCELLED and not got.open
    assert store.claim(worker="w", lease=60) == []
    assert store.count([JobState.CANCELLED, JobState.PENDING]) == {JobState.CANCELLED: 1, JobState.PENDING: 0}
    assert [j.id for j in store.list_jobs(states=[JobState.CANCELLED]).jobs] == [job.id]
    back = store.transition(job.id, expected=JobState.CANCELLED, target=JobState.PENDING)
    assert back.state is JobState.PENDING and back.open
    assert [j.id for j in store.claim(worker="w", lease=60)] == [job.id]


def test_status_label_removed_by_hand(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new(labels=("keep",)))
    other = store.create(new())
    fake.remove_label(job.id, "pending")
    got = store.get(job.id)
    assert got.state is None and got.status is None and got.labels == ("keep",)
    assert [j.id for j in store.list_jobs().jobs] == [job.id, other.id]
    assert [j.id for j in store.list_jobs(states=[JobState.PENDING]).jobs] == [other.id]
    assert [j.id for j in store.claim(worker="w", lease=60)] == [other.id]
    assert store.claim(worker="w", lease=60) == []
    back = store.transition(job.id, expected=None, target=JobState.PENDING)
    assert back.state is JobState.PENDING and sorted(fake.labels_of(job.id)) == ["keep", "pending"]


def test_remove_label_takes_off_one_extra_label(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new(labels=("keep", "requeue")))
    store.remove_label(job.id, "requeue")
    assert sorted(fake.labels_of(job.id)) == ["keep", "pending"]
    store.remove_label(job.id, "requeue")  # already gone: nothing to do, no error
    with pytest.raises(ValueError, match="status label"):
        store.remove_label(job.id, "pending")
    assert store.get(job.id).state is JobState.PENDING and store.get(job.id).labels == ("keep",)


def test_a_heartbeat_sees_a_cancel_made_by_hand_and_does_not_undo_it(fake: FakeGitHub, store: GitHubStore) -> None:
    queue = Queue(store)
    queue.enqueue({"n": 1})
    job = queue.claim(lease=300)
    assert job is not None
    renewed = queue.heartbeat(job, 300)  # nobody touched it: renewed
    assert renewed.lease_expires_at is not None and job.lease_expires_at is not None
    assert renewed.lease_expires_at >= job.lease_expires_at
    fake.edit_issue(job.id, state="closed", state_reason="not_planned")  # a person cancels it in the issue UI
    with pytest.raises((LeaseLost, StateConflict)):
        queue.heartbeat(renewed, 300)
    issue = fake.get_issue(job.id)
    assert issue["state"] == "closed" and issue["state_reason"] == "not_planned"
    assert store.get(job.id).state is JobState.CANCELLED


def test_a_worker_stops_a_job_cancelled_by_hand_and_leaves_it_cancelled(
    fake: FakeGitHub, make_store: MakeStore
) -> None:
    store = make_store(lease_margin=0.2)  # so that the holder's own shortcut is in play with a 1.5 s lease
    queue = Queue(store)
    job_id = queue.enqueue({"n": 1})
    started, release = threading.Event(), threading.Event()

    def handler(data: object) -> str:
        started.set()
        release.wait(10)
        return "done"

    worker = Worker(queue, handler, lease=1.5, poll_interval=0.05)
    runner = threading.Thread(target=worker.run, kwargs={"once": True})
    runner.start()
    assert started.wait(10)
    fake.edit_issue(job_id, state="closed", state_reason="not_planned")  # cancelled in the issue UI mid-run
    deadline = time.monotonic() + 10
    while job_id not in worker._lost:  # the next heartbeat (every 0.5 s) reads the issue and sees the cancel
        assert time.monotonic() < deadline, "the worker never noticed the cancel"
        time.sleep(0.05)
    release.set()
    runner.join(20)
    assert not runner.is_alive()
    issue = fake.get_issue(job_id)
    assert issue["state"] == "closed" and issue["state_reason"] == "not_planned"
    assert "completed" not in fake.labels_of(job_id)
    assert store.get(job_id).state is JobState.CANCELLED


def test_two_status_labels_the_finished_one_wins(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new())
    fake.add_label(job.id, "completed")
    assert store.get(job.id).state is JobState.COMPLETED
    assert store.claim(worker="w", lease=60) == []


def test_body_edited_into_invalid_json(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new({"a": 1}))
    broken = '```json\n{"a": 1,,}\n```\n'
    fake.edit_issue(job.id, body=broken)
    got = store.get(job.id)
    assert got.data is None and got.body_error is not None and "not valid JSON" in got.body_error
    assert [j.id for j in store.list_jobs().jobs] == [job.id]
    queue = Queue(store)
    assert queue.claim() is None  # the queue fails it at once, with a comment saying why
    failed = store.get(job.id)
    assert failed.state is JobState.FAILED
    assert "cannot run" in store.comments(job.id)[-1].body
    body = fake.get_issue(job.id)["body"]
    assert body.startswith(broken.rstrip())  # the person's text is kept for them to fix
    assert '"attempt":1' in body


def test_issue_written_by_the_original_octoqueue(fake: FakeGitHub, store: GitHubStore) -> None:
    number = fake.create_issue("legacy", '```json\n{\n  "data": "example"\n}\n```', labels=["pending"])
    (job,) = store.claim(worker="w", lease=60)
    assert (job.id, job.data, job.attempt) == (number, {"data": "example"}, 1)


def test_pull_requests_are_never_jobs(fake: FakeGitHub, store: GitHubStore) -> None:
    pr = fake.create_pull_request("feature", "not a job")
    fake.add_label(pr, "pending")
    job = store.create(new())
    assert [j.id for j in store.list_jobs().jobs] == [job.id]
    assert store.count([JobState.PENDING]) == {JobState.PENDING: 1}
    with pytest.raises(JobNotFound):
        store.get(pr)
    assert [j.id for j in store.claim(worker="w", lease=60, limit=5)] == [job.id]
    assert "pending" in fake.labels_of(pr)


# -- listing and counting ----------------------------------------------------------------------------------------
def test_listing_follows_pages(store: GitHubStore) -> None:
    ids = [store.create(new({"i": i})).id for i in range(130)]
    got, cursor, pages = [], None, 0
    while True:
        page = store.list_jobs(limit=45, cursor=cursor)
        got += [j.id for j in page.jobs]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert got == ids and pages == 3
    assert [j.id for j in store.list_jobs(limit=500).jobs] == ids


def test_count_of_long_listings_reads_first_and_last_page(fake: FakeGitHub, store: GitHubStore) -> None:
    store.create(new())
    for i in range(250):
        number = fake.create_issue(f"done {i}", "```json\n1\n```", labels=["completed"])
        fake.edit_issue(number, state="closed", state_reason="completed")
    fake.reset_counters()
    assert store.count([JobState.COMPLETED]) == {JobState.COMPLETED: 250}
    assert len(fake.request_log) == 2
    assert store.count()[JobState.PENDING] == 1


# -- leases, clocks, orphans ---------------------------------------------------------------------------------------
def test_leases_run_on_githubs_clock(fake: FakeGitHub, store: GitHubStore) -> None:
    store.create(new(max_attempts=2))
    (job,) = store.claim(worker="w", lease=600)
    fake.advance_time(3600)  # GitHub's clock is an hour ahead of ours now
    (back,) = store.recover_expired()
    assert back.id == job.id and back.state is JobState.PENDING
    assert (store.now() - job.lease_expires_at).total_seconds() > 2900  # type: ignore[operator]
    with pytest.raises(LeaseLost):
        store.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1)


def test_late_finisher_and_recoverer_only_one_acts(make_store: MakeStore) -> None:
    worker, janitor = make_store(), make_store()
    worker.create(new(max_attempts=2))
    (job,) = worker.claim(worker="w", lease=0.3)
    time.sleep(0.5)
    done = worker.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1)
    assert done.state is JobState.COMPLETED
    assert janitor.recover_expired() == []
    assert janitor.get(job.id).state is JobState.COMPLETED


def test_another_processes_recovery_fences_the_holder(make_store: MakeStore) -> None:
    worker, janitor = make_store(), make_store()
    worker.create(new(max_attempts=2))
    (job,) = worker.claim(worker="w", lease=0.3)
    time.sleep(0.5)
    assert [j.id for j in janitor.recover_expired()] == [job.id]
    assert janitor.recover_expired() == []
    with pytest.raises(LeaseLost):
        worker.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1)


def test_orphaned_claim_ref_is_rescued(fake: FakeGitHub, make_store: MakeStore) -> None:
    store = make_store(orphan_grace=0.3)
    job = store.create(new())
    # A worker won the claim and died before its PATCH: the ref exists, the job still says pending.
    with fake.client() as client:
        sha = fake.initial_commit_sha
        ref = f"refs/octoqueue/claims/{job.id}-1"
        assert client.post(f"/repos/{REPO}/git/refs", json={"ref": ref, "sha": sha}).status_code == 201
    assert store.claim(worker="w", lease=60) == []
    time.sleep(0.4)
    (claimed,) = store.claim(worker="w", lease=60)
    assert claimed.id == job.id and claimed.attempt == 1
    assert f"refs/octoqueue/claims/{job.id}-1-r1" in fake.refs


# -- purge, comments, settings ---------------------------------------------------------------------------------------
def test_purge_archives_and_deletes_refs(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new(idempotency_key="k"))
    store.claim(worker="w", lease=60)
    store.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1)
    assert store.purge(states=[JobState.COMPLETED], older_than=store.now() + timedelta(seconds=5)) == 1
    assert "archived" in fake.labels_of(job.id) and "completed" not in fake.labels_of(job.id)
    assert fake.get_issue(job.id)["state"] == "closed"
    assert not [r for r in fake.refs if r.startswith("refs/octoqueue/")]
    with pytest.raises(JobNotFound):
        store.get(job.id)
    assert store.count()[JobState.COMPLETED] == 0
    again = store.create(new(idempotency_key="k"))  # the key is free again, as on other stores
    assert again.id != job.id


def test_a_job_just_purged_reads_as_gone_at_once(make_store: MakeStore) -> None:
    """The archive is a write of this store: a read right after it does not wait out read_lag for the replica."""
    store = make_store(read_lag=30.0)
    job = store.create(new())
    store.transition(job.id, expected=JobState.PENDING, target=JobState.COMPLETED)
    assert store.purge(states=[JobState.COMPLETED], older_than=store.now() + timedelta(seconds=5)) == 1
    started = time.monotonic()
    with pytest.raises(JobNotFound):
        store.get(job.id)
    assert time.monotonic() - started < 10


def test_comments_roundtrip(fake: FakeGitHub, store: GitHubStore) -> None:
    job = store.create(new())
    note = store.comment(job.id, "hello **world**")
    fake.comment(job.id, "a person answers")
    got = store.comments(job.id)
    assert [c.body for c in got] == ["hello **world**", "a person answers"]
    assert got[0].id == note.id and got[1].author == "octocat"


def test_settings_live_in_one_issue_and_survive_restarts(fake: FakeGitHub, make_store: MakeStore) -> None:
    first = make_store()
    first.set_setting("job_schema", {"type": "object"})
    settings = [n for n, i in fake.issues.items() if "octoqueue-settings" in [x["name"] for x in i["labels"]]]
    assert len(settings) == 1
    assert fake.get_issue(settings[0])["title"] == "octoqueue settings"
    first.close()
    second = make_store()
    assert second.get_setting("job_schema") == {"type": "object"}
    assert list(second.iter_jobs()) == [] and second.claim(worker="w", lease=5) == []


def test_concurrent_setting_writers_lose_nothing(fake: FakeGitHub, make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def write(i: int) -> None:
        barrier.wait()
        for j in range(3):
            stores[i].set_setting(f"k{i}-{j}", j)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = make_store()
    assert all(reader.get_setting(f"k{i}-{j}") == j for i in range(4) for j in range(3))
    labelled = [i for i in fake.issues.values() if "octoqueue-settings" in [x["name"] for x in i["labels"]]]
    assert len(labelled) == 1


# -- configuration --------------------------------------------------------------------------------------------------
def test_open_store_url_and_prefix(fake: FakeGitHub) -> None:
    store = open_store(
        f"github://{REPO}?prefix=oq-", token=TOKEN, base_url=IN_PROCESS_URL, transport=fake.transport(), **FAST
    )
    try:
        assert isinstance(store, GitHubStore)
        assert store.url == f"github://{REPO}?prefix=oq-&base_url={IN_PROCESS_URL}"
        job = store.create(new())
        assert fake.labels_of(job.id) == ["oq-pending"]
        assert store.get(job.id).state is JobState.PENDING
    finally:
        store.close()


@pytest.mark.parametrize("url", ["github://owner", "github:///repo", "github://o/r/x", "github://o/r?colour=red"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        GitHubStore.from_url(url)


def test_token_and_api_url_from_environment(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", IN_PROCESS_URL)
    store = GitHubStore(REPO, transport=fake.transport(), **FAST)
    try:
        assert store.create(new()).id == 1
    finally:
        store.close()
    monkeypatch.delenv("GH_TOKEN")
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    store = GitHubStore(REPO, transport=fake.transport(), **FAST)
    try:
        with pytest.raises(Exception, match="401"):
            store.create(new())
    finally:
        store.close()


def test_github_queue_both_constructor_forms(fake: FakeGitHub) -> None:
    options = {"base_url": IN_PROCESS_URL, "transport": fake.transport(), **FAST}
    with GithubQueue(repo=REPO, token=TOKEN, **options) as original:
        job_id = original.enqueue({"data": "example"})
        assert original.repo == REPO
    owner, name = REPO.split("/")
    with GithubQueue(owner=owner, repo=name, token=TOKEN, max_attempts=2, **options) as seeded:
        assert seeded.dequeue() == (job_id, {"data": "example"})
        seeded.complete(job_id)
        assert seeded.get_job_status(job_id) == "completed"
        assert seeded.rate_limit.remaining is not None
    with pytest.raises(ConfigurationError):
        GithubQueue(owner="someone-else", repo=REPO, token=TOKEN, **options)


def test_github_app_installation_auth() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from githubkit import AppInstallationAuthStrategy

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    store = GitHubStore(REPO, app_id=123, private_key=pem, installation_id=456, base_url=IN_PROCESS_URL, **FAST)
    try:
        auth = store._client.gh.auth
        assert isinstance(auth, AppInstallationAuthStrategy)
        assert (auth.app_id, auth.installation_id) == (123, 456)
    finally:
        store.close()
    with pytest.raises(ConfigurationError, match="app_id, private_key and installation_id"):
        GitHubStore(REPO, app_id=123, private_key=pem)


@pytest.mark.timeout(30)
def test_the_holder_does_not_wait_out_a_rate_limit_past_its_lease(fake: FakeGitHub, make_store: MakeStore) -> None:
    # Found by `make chaos`: a holder's finish met a secondary limit (retry-after 58 s), waited it out past its
    # 20 s lease, and then wrote "completed" over the job another worker had recovered and completed meanwhile.
    worker = make_store(max_rate_limit_wait=120)
    fake.set_limits(enforce_secondary=True, secondary_writes_per_minute=1000)  # counting writes from now on
    worker.create(new(max_attempts=2))
    (job,) = worker.claim(worker="w", lease=30)  # the lease outlasts the margin: the holder finishes unread
    fake.set_limits(secondary_writes_per_minute=1)  # the next write gets a retry-after of about a minute
    started = time.monotonic()
    with pytest.raises(RateLimited):
        worker.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1)
    assert time.monotonic() - started < 10  # refused at once: the wait would outlast the lease
    assert fake.labels_of(job.id) == ["processing"]


class _Killed(BaseException):
    """The process dies here (nothing below it runs, no except clause of the store catches it)."""


def _dies_before_recording_its_key(store: GitHubStore) -> GitHubStore:
    """``store``, made to die (raise ``_Killed``) between posting a keyed issue and writing its keyjobs ref."""
    create_ref = store._refs.create

    def die_before_the_key_is_recorded(name: str, *args: object, **kwargs: object) -> object:
        if "/keyjobs/" in name:
            raise _Killed
        return create_ref(name, *args, **kwargs)

    store._refs.create = die_before_the_key_is_recorded  # type: ignore[method-assign]
    return store


def test_a_keyed_create_killed_after_its_post_is_not_made_twice(fake: FakeGitHub, make_store: MakeStore) -> None:
    # Found by `make chaos`: a server SIGKILLed between posting a keyed issue and recording its keyjobs ref left the
    # key ref taken; orphan_grace later the producer's retry rescued the ref, found no job and posted another.
    killed, rescuer = _dies_before_recording_its_key(make_store()), make_store(orphan_grace=0.2)
    with pytest.raises(_Killed):
        killed.create(NewJob(data={"n": 1}, title="once", idempotency_key="k-1"))
    (orphan,) = fake.issues
    again = rescuer.create(NewJob(data={"n": 1}, title="once", idempotency_key="k-1"))
    assert list(fake.issues) == [orphan]
    assert again.id == orphan
    assert rescuer.create(NewJob(data={"n": 1}, title="once", idempotency_key="k-1")).id == orphan  # recorded now
    assert any("/keyjobs/" in name for name in fake.refs)


def test_a_dead_creators_keyed_issue_is_found_below_the_newest_hundred(fake: FakeGitHub, make_store: MakeStore) -> None:
    killed, rescuer = _dies_before_recording_its_key(make_store()), make_store(orphan_grace=0.2)
    with pytest.raises(_Killed):
        killed.create(NewJob(data={"n": 1}, title="once", idempotency_key="k-1"))
    (orphan,) = fake.issues
    for n in range(105):  # the orphan is on the second page of the newest issues now
        fake.create_issue(f"other {n}", labels=["pending"])
    again = rescuer.create(NewJob(data={"n": 1}, title="once", idempotency_key="k-1"))
    assert again.id == orphan
    assert [n for n, issue in fake.issues.items() if issue["title"] == "once"] == [orphan]


def test_a_dead_creators_keyed_issue_is_found_while_reads_lag(fake: FakeGitHub, make_store: MakeStore) -> None:
    lag = 0.6
    killed = _dies_before_recording_its_key(make_store())
    rescuer = make_store(orphan_grace=0.1, read_lag=4 * lag)
    killed.ensure_ready()
    fake.set_faults(read_lag=lag)  # listings will not show the orphan for 0.6 s; the rescue looks at 0.1 s
    with pytest.raises(_Killed):
        killed.create(NewJob(data={"n": 1}, title="once", idempotency_key="k-1"))
    again = rescuer.create(NewJob(data={"n": 1}, title="once", idempotency_key="k-1"))
    fake.set_faults(read_lag=0.0)
    assert list(fake.issues) == [again.id]


def test_a_keyed_create_does_not_post_after_a_rescuer_may_have(fake: FakeGitHub, make_store: MakeStore) -> None:
    # A creator whose POST hung (and then failed without effect) for longer than orphan_grace: meanwhile another
    # create with its key rescued the key ref and made the job. The first must not post after its deadline.
    slow, rescuer = make_store(orphan_grace=0.2), make_store(orphan_grace=0.2)
    call = slow._client.call
    hung: list[int] = []

    def hang_then_fail(fn: Any, **kwargs: Any) -> Any:
        if kwargs.get("what") == "create a job" and not hung:
            hung.append(rescuer.create(NewJob(data={"n": 1}, title="once", idempotency_key="k-1")).id)
            raise Ambiguous("create a job: the connection dropped")
        return call(fn, **kwargs)

    slow._client.call = hang_then_fail  # type: ignore[method-assign]
    with pytest.raises(DeadlinePassed, match="deadline passed"):
        slow.create(NewJob(data={"n": 1}, title="once", idempotency_key="k-1"))
    assert list(fake.issues) == hung


@pytest.mark.timeout(5)
def test_the_holder_does_not_wait_out_another_threads_rate_limit_hold(make_store: MakeStore) -> None:
    # Found by `make chaos`: the deadline was checked before a send, but the send then waited out the pacer's hold,
    # so a holder's finish landed after its lease.
    worker = make_store(max_rate_limit_wait=120)
    worker.create(new(max_attempts=2))
    (job,) = worker.claim(worker="w", lease=30)
    worker._client.pacer.hold(60)  # another thread met a secondary limit: every request of this store waits
    with pytest.raises(DeadlinePassed) as refused:
        worker.transition(job.id, expected=JobState.PROCESSING, target=JobState.COMPLETED, attempt=1)
    assert isinstance(refused.value, RateLimited) and refused.value.retry_after > 50
    worker._client.pacer.clear()
    assert worker.get(job.id).state is JobState.PROCESSING  # nothing was written


def test_a_heartbeat_in_flight_cannot_undo_the_same_processes_finish(make_store: MakeStore) -> None:
    # Found by `make chaos`: a heartbeat read the issue (processing), the handler's completion landed, then the
    # heartbeat's write put the job back to processing; its lease ran out and the job ran and completed again.
    store = make_store()
    queue = Queue(store, lease=60)
    queue.enqueue({"n": 1})
    job = queue.claim()
    assert job is not None
    read_done, go = threading.Event(), threading.Event()
    fetch = store._fetch

    def slow_fetch(job_id: int) -> Any:
        record = fetch(job_id)
        if threading.current_thread().name == "heartbeat":
            read_done.set()
            go.wait(5)
        return record

    store._fetch = slow_fetch  # type: ignore[method-assign]
    beat = threading.Thread(target=queue.heartbeat, args=(job,), name="heartbeat")
    beat.start()
    assert read_done.wait(5)
    finish = threading.Thread(target=lambda: queue.complete(job), name="finish")
    finish.start()
    finish.join(timeout=0.5)  # unserialized, the completion lands now, between the heartbeat's read and write
    go.set()
    beat.join(5)
    finish.join(5)
    assert store._fetch(job.id).job.state is JobState.COMPLETED
