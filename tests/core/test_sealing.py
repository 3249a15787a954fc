"""Encrypted payloads: nothing readable reaches the store, jobs run normally, keys rotate, a keyless worker fails
a sealed job with a clear error instead of running it with garbage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from octoqueue import Queue
from octoqueue.errors import ConfigurationError
from octoqueue.sealing import MISSING_KEY, WRONG_KEY, is_encrypted, is_sealed, new_key
from octoqueue.states import JobState
from octoqueue.stores.sqlite import SQLiteStore
from octoqueue.worker import Worker

SECRET = "the launch code is 0000"


def _raw(path: Path) -> bytes:
    """Everything SQLite keeps for the queue: the database and its write-ahead log."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_nothing_readable_reaches_the_store_and_jobs_run_normally(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    queue = Queue(SQLiteStore(path), encryption_keys=new_key())
    job_id = queue.enqueue({"secret": SECRET})
    failing = queue.enqueue({"secret": SECRET, "fail": True})
    worker = Worker(
        queue,
        lambda data: (
            (_ for _ in ()).throw(ValueError(data["secret"])) if data.get("fail") else {"echo": data["secret"]}
        ),
        on_failure="fail",
    )
    worker.run(once=True)

    done = queue.get(job_id)
    assert (done.state, done.data, done.result) == (JobState.COMPLETED, {"secret": SECRET}, {"echo": SECRET})
    assert SECRET in queue.comments(job_id)[-1].body
    failed = queue.get(failing)
    assert failed.state is JobState.FAILED and SECRET in (failed.last_error or "")

    raw = Queue(SQLiteStore(path))  # the store as it is, without the key
    stored = raw.get(job_id)
    assert is_sealed(stored.data) and is_sealed(stored.result)
    assert (raw.get(failing).last_error or "").startswith("octoqueue-encrypted:")
    assert all(SECRET not in c.body for j in (job_id, failing) for c in raw.comments(j))
    queue.close()
    raw.close()
    assert SECRET.encode() not in _raw(path)


def test_rotation_old_jobs_still_run_after_a_new_key_is_added(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    path = tmp_path / "jobs.db"
    before = Queue(SQLiteStore(path), encryption_keys=old).enqueue({"n": 1})
    rotated = Queue(SQLiteStore(path), encryption_keys=f"{new},{old}")
    after = rotated.enqueue({"n": 2})
    assert rotated.get(before).data == {"n": 1}
    job = rotated.claim()
    assert job is not None and job.id == before and job.data == {"n": 1}
    assert Queue(SQLiteStore(path), encryption_keys=new).get(after).data == {"n": 2}  # sealed with the new key
    assert is_sealed(Queue(SQLiteStore(path), encryption_keys=old).get(after).data)  # which the old cannot open


@pytest.mark.parametrize(("keys", "error"), [(None, MISSING_KEY), ("other", WRONG_KEY)])
def test_a_worker_without_the_key_fails_the_job_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, keys: str | None, error: str
) -> None:
    monkeypatch.delenv("OCTOQUEUE_ENCRYPTION_KEY", raising=False)
    path = tmp_path / "jobs.db"
    job_id = Queue(SQLiteStore(path), encryption_keys=new_key()).enqueue({"secret": SECRET})
    ran: list[Any] = []
    keyless = Queue(SQLiteStore(path), encryption_keys=new_key() if keys else None)
    # B5: a failure of the worker's, counted (so --strict exits non-zero) and logged, not a silent one.
    stats = Worker(keyless, ran.append).run(once=True)
    assert ran == []  # never handed to a handler
    assert (stats.failed, stats.all_succeeded, stats.job_ids) == (1, False, [job_id])
    assert f"job {job_id} cannot run and is failed: {error}" in caplog.text
    assert keyless.claim() is None
    job = keyless.get(job_id)
    assert (job.state, job.last_error) == (JobState.FAILED, error)
    assert "Give this worker the queue's key and requeue the job." in keyless.comments(job_id)[-1].body


def test_the_key_comes_from_the_environment_and_a_bad_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTOQUEUE_ENCRYPTION_KEY", new_key())
    queue = Queue(SQLiteStore(tmp_path / "jobs.db"))
    job_id = queue.enqueue({"a": 1})
    assert is_sealed(Queue(SQLiteStore(tmp_path / "jobs.db"), encryption_keys=[]).store.get(job_id).data)
    monkeypatch.setenv("OCTOQUEUE_ENCRYPTION_KEY", "not-a-key")
    with pytest.raises(ConfigurationError, match="key 1 is not a Fernet key"):
        Queue("memory://")


def test_people_s_comments_stay_readable_and_are_not_sealed(tmp_path: Path) -> None:
    queue = Queue(SQLiteStore(tmp_path / "jobs.db"), encryption_keys=new_key())
    job_id = queue.enqueue({"a": 1})
    queue.store.inner.comment(job_id, "/requeue")  # type: ignore[attr-defined]  # a person's ChatOps command
    assert [c.body for c in queue.comments(job_id)] == ["/requeue"]
    assert json.loads(json.dumps(queue.get(job_id).data)) == {"a": 1}


def test_a_schedule_s_data_is_sealed_in_the_settings_too(tmp_path: Path) -> None:
    queue = Queue(SQLiteStore(tmp_path / "jobs.db"), encryption_keys=new_key())
    queue.create_schedule("s", {"secret": SECRET}, "@daily")
    assert SECRET not in json.dumps(queue.store.get_setting("schedules"))
    job = queue.trigger_schedule("s")
    assert job.data == {"secret": SECRET}
    assert is_sealed(queue.store.inner.get(job.id).data)  # type: ignore[attr-defined]


def test_a_worker_on_an_encrypted_queue_logs_no_result_or_error_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """B4a: results were logged at INFO and errors at WARNING in clear."""
    caplog.set_level("INFO", logger="octoqueue")
    queue = Queue(SQLiteStore(tmp_path / "jobs.db"), encryption_keys=new_key())
    done, failed = queue.enqueue({"secret": SECRET}), queue.enqueue({"secret": SECRET, "fail": True})

    def handler(data: dict[str, Any]) -> dict[str, str]:
        if data.get("fail"):
            raise ValueError(f"boom {data['secret']}")
        return {"echo": data["secret"]}

    Worker(queue, handler, on_failure="fail").run(once=True)
    assert (queue.get(done).state, queue.get(failed).state) == (JobState.COMPLETED, JobState.FAILED)
    assert f"job {done} completed" in caplog.text and f"job {failed} attempt 1 failed" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize("value", ["", "  ", ",", " , "])
def test_a_set_but_empty_key_is_an_error_not_plaintext(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """B11: an empty key (an unset secret passed through, say) silently meant "no encryption"."""
    monkeypatch.setenv("OCTOQUEUE_ENCRYPTION_KEY", value)
    with pytest.raises(ConfigurationError, match="OCTOQUEUE_ENCRYPTION_KEY is set but holds no key"):
        Queue(SQLiteStore(tmp_path / "jobs.db"))
    monkeypatch.delenv("OCTOQUEUE_ENCRYPTION_KEY")
    with pytest.raises(ConfigurationError, match="encryption_keys is set but holds no key"):
        Queue("memory://", encryption_keys=value)
    assert not is_encrypted(Queue("memory://", encryption_keys=[]).store)  # no keys on purpose: a list, or unset
