"""The CLI as a user runs it: a subprocess, env twins, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def oq(*args: str, store: Path | None = None, input: str | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    if store is not None:
        full_env["OCTOQUEUE_STORE"] = f"sqlite:///{store}"
    return subprocess.run(
        [sys.executable, "-m", "octoqueue.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def test_full_lifecycle(db: Path, tmp_path: Path) -> None:
    first = oq("enqueue", '{"n": 20}', "--title", "double it", "--label", "math", store=db)
    assert first.returncode == 0, first.stderr
    job_id = int(first.stdout)
    second = int(oq("enqueue", "-", "--priority", "critical", store=db, input='{"n": 1}').stdout)
    header, *listing = oq("list", store=db).stdout.splitlines()
    assert header.split()[:3] == ["ID", "STATUS", "P"]
    assert len(listing) == 2 and "double it" in listing[0] and "[math]" in listing[0]
    assert oq("status", str(job_id), store=db).stdout.strip() == "pending"
    summary = tmp_path / "summary.json"
    worked = oq(
        "work", "--handler", "tests.core.handlers_for_tests:double", "--once", "--summary-json", str(summary), store=db
    )
    assert worked.returncode == 0, worked.stderr
    report = json.loads(summary.read_text())
    assert report["processed"] == 2 and report["completed"] == 2
    assert report["job_ids"] == [second, job_id]  # critical first
    shown = json.loads(oq("show", str(job_id), store=db).stdout)
    assert shown["state"] == "completed" and shown["result"] == 40
    assert "40" in shown["comment_list"][0]["body"]
    assert oq("requeue", str(job_id), store=db).stdout.strip() == "pending"
    assert oq("cancel", str(job_id), store=db).stdout.strip() == "cancelled"
    assert oq("list", "--status", "cancelled", "--json", store=db).stdout.count("\n") == 1
    assert oq("clear", "--older-than", "-1", "--json", store=db).stdout.strip().startswith('{"cleared": 2,')


def test_manual_complete_and_fail(db: Path) -> None:
    a = oq("enqueue", "{}", store=db).stdout.strip()
    b = oq("enqueue", "{}", store=db).stdout.strip()
    assert oq("complete", a, "--result", '{"ok": true}', store=db).stdout.strip() == "completed"
    assert oq("fail", b, "--comment", "no thanks", store=db).stdout.strip() == "failed"


def test_a_result_too_large_is_refused_and_the_job_left_as_it_was(db: Path) -> None:
    job_id = oq("enqueue", "{}", store=db).stdout.strip()
    refused = oq("complete", job_id, "--result", json.dumps({"blob": "x" * 70_000}), store=db)
    assert refused.returncode != 0 and "the job was not changed" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert oq("status", job_id, store=db).stdout.strip() == "pending"


def test_command_handler_via_cli(db: Path) -> None:
    job_id = oq("enqueue", '{"text": "a b c"}', store=db).stdout.strip()
    cmd = "python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"text\"].split()))'"
    assert oq("work", "--command", cmd, "--once", store=db).returncode == 0
    assert json.loads(oq("show", job_id, store=db).stdout)["result"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("status", "12345"), "job 12345 does not exist"),
        (("requeue", "12345"), "job 12345 does not exist"),
        (("enqueue", "{broken"), "not valid JSON"),
        (("enqueue", "{}", "--priority", "urgent"), "unknown priority"),
        (("work", "--once"), "exactly one of --handler"),
        (("work", "--once", "--handler", "no_such_module:fn"), "cannot import handler module"),
        (("list", "--store", "ftp://x"), "unknown store URL"),
    ],
)
def test_errors_are_one_clear_line(db: Path, args: tuple[str, ...], message: str) -> None:
    oq("enqueue", "{}", store=db)  # the store exists: reading commands refuse a missing one
    result = oq(*args, store=db)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_completing_a_finished_job_is_refused(db: Path) -> None:
    job_id = oq("enqueue", "{}", store=db).stdout.strip()
    oq("cancel", job_id, store=db)
    result = oq("complete", job_id, store=db)
    assert result.returncode == 1 and "cancelled" in result.stderr


def test_env_twins(db: Path) -> None:
    for i in range(3):
        oq("enqueue", json.dumps({"n": i}), store=db)
    result = oq(
        "work", "--handler", "tests.core.handlers_for_tests:double", store=db, env={"OCTOQUEUE_WORK_MAX_JOBS": "2"}
    )
    assert result.returncode == 0, result.stderr
    assert len(oq("list", "--status", "pending", "--json", store=db).stdout.splitlines()) == 1
    assert "OCTOQUEUE_STORE" in oq("work", "--help").stdout


def test_work_prefetch(db: Path) -> None:
    from octoqueue.worker import DEFAULT_PREFETCH

    for i in range(5):
        oq("enqueue", json.dumps({"n": i}), store=db)
    refused = oq("work", "--handler", "tests.core.handlers_for_tests:double", "--once", "--prefetch", "0", store=db)
    assert refused.returncode == 1 and "--prefetch" in refused.stderr
    summary = db.parent / "prefetch.json"
    worked = oq(
        "work", "--handler", "tests.core.handlers_for_tests:double", "--once", "--prefetch", "2",
        "--summary-json", str(summary), store=db,
    )  # fmt: skip
    assert worked.returncode == 0, worked.stderr
    assert json.loads(summary.read_text())["completed"] == 5
    assert f"default: {DEFAULT_PREFETCH} where" in " ".join(oq("work", "--help").stdout.split())


def test_help_and_version() -> None:
    out = oq("--help").stdout
    for command in ("enqueue", "list", "status", "show", "complete", "fail", "requeue", "cancel", "work", "clear"):
        assert command in out
    assert oq("--version").stdout.startswith("octoqueue")


@pytest.mark.parametrize("label", ["Completed", "octoqueue-settings", "queue:work", "  "])
def test_enqueue_refuses_a_reserved_label_in_one_line(db: Path, label: str) -> None:
    result = oq("enqueue", "{}", "--label", label, store=db)
    assert result.returncode != 0
    assert repr(label) in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert oq("list", store=db).stdout.strip() == ""


def test_work_strict_fails_when_it_lacks_the_key_of_an_encrypted_job(tmp_path: Path) -> None:
    """B5: a worker without the key failed encrypted jobs silently: exit 0, '0 failed', no log line."""
    from octoqueue.sealing import new_key

    db = tmp_path / "w.db"
    assert oq("enqueue", '{"card": "x"}', store=db, env={"OCTOQUEUE_ENCRYPTION_KEY": new_key()}).returncode == 0
    worked = oq(
        "work",
        "--handler",
        "tests.core.handlers_for_tests:double",
        "--once",
        "--strict",
        store=db,
    )
    assert worked.returncode == 2, worked.stderr
    assert "job 1 cannot run and is failed: its data is encrypted and this process has no key" in worked.stderr
    assert "1 failed" in worked.stderr + worked.stdout


def test_an_empty_encryption_key_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    """B11: `OCTOQUEUE_ENCRYPTION_KEY= octoqueue enqueue ...` stored the payload in clear."""
    refused = oq("enqueue", '{"card": "x"}', store=tmp_path / "e.db", env={"OCTOQUEUE_ENCRYPTION_KEY": ""})
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: OCTOQUEUE_ENCRYPTION_KEY is set but holds no key ('')")
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("[1,2]",), None, "DATA is a JSON array, not an object"),
        (('"str"',), None, "DATA is a JSON string, not an object"),
        (("-",), '{"a": 1}\n7\n', "line 2 is a JSON number, not an object"),
        (("{}", "--delay", "-5"), None, "--delay"),
        (("{}", "--timeout", "0"), None, "--timeout"),
    ],
)
def test_enqueue_takes_what_create_job_takes(db: Path, args: tuple[str, ...], stdin: str | None, message: str) -> None:
    """A4: enqueue accepted '[1,2]', '"str"' and --delay -5, which /create-job refuses."""
    refused = oq("enqueue", *args, store=db, input=stdin)
    assert refused.returncode == 1 and message in refused.stderr
    assert oq("list", store=db).stdout.count("\n") <= 1  # nothing enqueued (the header at most)
