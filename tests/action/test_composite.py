"""The composite action run step by step as the runner would, against the GitHub emulator over HTTP.

Each run parses action.yml, evaluates its expressions, and runs its ``run:`` steps with
``bash --noprofile --norc -eo pipefail``; the install step finds this checkout's octoqueue already installed and
skips itself (it checks the version, not just the import), so no package is downloaded. The last test runs the
real install (a fresh virtualenv and ``pip install`` of the checkout) when OCTOQUEUE_TEST_ACTION_INSTALL=1.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .composite import ActionRun
from .conftest import REPO, ROOT, Harness, labeled_event

pytestmark = pytest.mark.timeout(90)

#: The example workflow's command, so the example is what gets tested.
EXAMPLE = yaml.safe_load((ROOT / "examples/workflows/worker.yml").read_text())
EXAMPLE_STEP = next(s for s in EXAMPLE["jobs"]["work"]["steps"] if s.get("id") == "worker")
WORD_COUNT = EXAMPLE_STEP["with"]["command"]
FAILING = "echo 'reading input' >&2; echo 'boom: the input was bad' >&2; exit 3"


def outputs_of(run: ActionRun) -> dict[str, Any]:
    assert run.returncode == 0, run.log
    return run.outputs


def test_issues_labeled_event_completes_that_job(harness: Harness) -> None:
    with harness.queue() as queue:
        other = queue.enqueue({"text": "not this one"})
        job_id = queue.enqueue({"text": "hello from the issues event"}, title="count words")
    event = labeled_event(harness.github.get_issue(job_id))

    run = harness.run({"command": WORD_COUNT, "max-jobs": "5"}, "issues", event)

    out = outputs_of(run)
    assert "already installed" in run.step("install").stdout
    assert run.step("install").outputs["python"]
    assert out["processed"] == "1" and out["completed"] == "1" and out["failed"] == "0"
    assert json.loads(out["job-ids"]) == [job_id]
    assert out["mode"] == "job"
    issue = harness.github.get_issue(job_id)
    assert issue["state"] == "closed"
    assert "completed" in harness.github.labels_of(job_id)
    (comment,) = harness.result_comments(job_id)
    assert '"words": 5' in comment
    # Only the event's job ran; the other stays pending.
    assert harness.github.labels_of(other) == ["pending"]
    assert f"[#{job_id}](https://github.com/{REPO}/issues/{job_id})" in run.summary
    assert "| count words | completed | 1 |" in run.summary


def test_failing_command_with_on_failure_fail_fails_the_job(harness: Harness) -> None:
    with harness.queue() as queue:
        job_id = queue.enqueue({"n": 1}, max_attempts=3)
    event = labeled_event(harness.github.get_issue(job_id))
    run = harness.run({"command": FAILING, "on-failure": "fail"}, "issues", event)

    out = outputs_of(run)  # failures are recorded on the job, not in the exit status
    assert out["processed"] == "1" and out["failed"] == "1" and out["completed"] == "0"
    assert harness.github.get_issue(job_id)["state"] == "closed"
    assert "failed" in harness.github.labels_of(job_id)
    assert any("boom: the input was bad" in c["body"] for c in harness.github.comments_of(job_id))
    assert not harness.result_comments(job_id)
    assert "boom: the input was bad" in run.summary
    assert f"::warning title=octoqueue job #{job_id} failed::" in run.step("work").stdout


def test_failing_command_with_on_failure_retry_puts_the_job_back(harness: Harness) -> None:
    with harness.queue() as queue:
        job_id = queue.enqueue({"n": 1}, max_attempts=3)
    event = labeled_event(harness.github.get_issue(job_id))
    run = harness.run({"command": FAILING, "on-failure": "retry"}, "issues", event)

    out = outputs_of(run)
    assert out["processed"] == "1" and out["retried"] == "1" and out["failed"] == "0"
    issue = harness.github.get_issue(job_id)
    assert issue["state"] == "open"
    assert "pending" in harness.github.labels_of(job_id)
    comments = [c["body"] for c in harness.github.comments_of(job_id)]
    assert any("Attempt 1 failed" in body and "boom: the input was bad" in body for body in comments)
    with harness.queue() as queue:
        job = queue.get(job_id)
        assert job.attempt == 1 and job.attempts_left == 2


def test_python_handler_from_the_checkout(harness: Harness) -> None:
    shutil.copy(ROOT / "examples/handlers.py", harness.workspace / "handlers.py")
    with harness.queue() as queue:
        job_id = queue.enqueue({"text": "three little words"})
    run = harness.run({"handler": "handlers:word_count"}, "issues", labeled_event(harness.github.get_issue(job_id)))

    assert outputs_of(run)["completed"] == "1"
    (comment,) = harness.result_comments(job_id)
    assert '"words": 3' in comment and '"longest": "little"' in comment


def test_schedule_drains_up_to_max_jobs(harness: Harness) -> None:
    with harness.queue() as queue:
        ids = [queue.enqueue({"text": f"job {i}"}) for i in range(4)]
    event = {"schedule": "*/15 * * * *", "workflow": ".github/workflows/worker.yml"}
    run = harness.run({"command": WORD_COUNT, "max-jobs": "3"}, "schedule", event)

    out = outputs_of(run)
    assert out["processed"] == "3" and out["mode"] == "drain"
    assert json.loads(out["job-ids"]) == ids[:3]  # oldest first
    assert harness.github.labels_of(ids[3]) == ["pending"]


def test_issue_event_for_a_non_job_issue_does_nothing(harness: Harness) -> None:
    number = harness.github.create_issue("The docs have a typo", "Please fix", labels=["bug"])
    with harness.queue() as queue:
        pending = queue.enqueue({"text": "waits for the schedule"})
    harness.github.reset_counters()
    run = harness.run({"command": WORD_COUNT}, "issues", labeled_event(harness.github.get_issue(number)))

    out = outputs_of(run)
    assert out["mode"] == "skip" and out["processed"] == "0" and out["job-ids"] == "[]"
    assert harness.github.request_log == []  # decided from the event alone: no API request at all
    assert harness.github.labels_of(pending) == ["pending"]
    assert "Nothing to do: issue" in run.summary


def test_repository_dispatch_from_dispatch_worker_runs_that_job(harness: Harness) -> None:
    from octoqueue.dispatch import dispatch_worker

    with harness.queue() as queue:
        first = queue.enqueue({"text": "first"})
        job_id = queue.enqueue({"text": "woken by a dispatch"})
    dispatch_worker(REPO, "ghs_action_test_token", harness.url, job_id=job_id)
    (sent,) = harness.github.dispatches
    event = {
        "action": sent["event_type"],
        "branch": "main",
        "client_payload": sent["client_payload"],
        "repository": {"full_name": REPO},
        "sender": {"login": sent["sender"]},
    }
    run = harness.run({"command": WORD_COUNT}, "repository_dispatch", event)

    out = outputs_of(run)
    assert json.loads(out["job-ids"]) == [job_id]
    assert harness.github.get_issue(job_id)["state"] == "closed"
    assert harness.github.labels_of(first) == ["pending"]


def test_two_runs_at_once_never_process_a_job_twice(harness: Harness) -> None:
    with harness.queue() as queue:
        ids = [queue.enqueue({"text": " ".join(["w"] * (i + 1))}, title=f"job {i}") for i in range(20)]
    event = {"schedule": "*/15 * * * *", "workflow": ".github/workflows/worker.yml"}
    runs: dict[str, ActionRun] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def one(name: str) -> None:
        try:
            start.wait()
            runs[name] = harness.run({"command": WORD_COUNT, "max-jobs": "20"}, "schedule", event, name=name)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(80)
    assert not errors, errors
    logs = "\n".join(f"=== run {name}\n{run.log}" for name, run in runs.items())
    taken = {name: json.loads(outputs_of(run)["job-ids"]) for name, run in runs.items()}
    assert not set(taken["a"]) & set(taken["b"]), (taken, logs)
    assert sorted(taken["a"] + taken["b"]) == ids, (taken, logs)
    assert sum(int(run.outputs["processed"]) for run in runs.values()) == 20, logs
    for i, job_id in enumerate(ids):
        assert "completed" in harness.github.labels_of(job_id), logs
        results = harness.result_comments(job_id)
        assert len(results) == 1, (job_id, results, logs)  # exactly one result per job
        assert f'"words": {i + 1}' in results[0]


def test_install_step_refuses_an_old_python(harness: Harness, tmp_path: Path) -> None:
    """Without octoqueue installed, the install step checks the interpreter before making a virtualenv."""
    shim = tmp_path / "old-python"
    shim.mkdir()
    (shim / "python3").write_text("#!/bin/sh\nexit 1\n")
    (shim / "python3").chmod(0o755)
    run = harness.run({"command": WORD_COUNT}, "schedule", {}, path=str(shim))
    assert run.returncode == 1
    assert "::error::octoqueue needs Python 3.11 or newer" in run.step("install").stdout
    assert not run.step("work").ran


def test_cancelled_run_gives_its_job_back(harness: Harness) -> None:
    """A cancelled run gets SIGINT, then SIGTERM 7.5 s later: the worker stops and releases the job unrun."""
    with harness.queue() as queue:
        job_id = queue.enqueue({"text": "slow"})
    event = labeled_event(harness.github.get_issue(job_id))

    def cancel(step: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 30
        while "processing" not in harness.github.labels_of(job_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the command is running
        step.send_signal(signal.SIGINT)  # to the step's process only, as the runner does
        time.sleep(0.5)
        step.send_signal(signal.SIGTERM)

    run = harness.run({"command": "sleep 60"}, "issues", event, interrupt={"work": cancel})

    assert run.step("work").ran
    log = run.step("work").stderr
    assert "second signal" in log, log  # both signals reached the worker (the step execs Python)
    assert "released" in log
    assert harness.github.labels_of(job_id) == ["pending"]
    assert harness.github.get_issue(job_id)["state"] == "open"
    with harness.queue() as queue:
        job = queue.get(job_id)
        assert job.attempts_left == job.max_attempts  # a released attempt does not count


def test_configuration_error_fails_the_step_with_one_clear_line(harness: Harness) -> None:
    with harness.queue() as queue:
        job_id = queue.enqueue({"text": "never runs"})
    run = harness.run({"handler": "no_such_module:handle"}, "schedule", {})

    work = run.step("work")
    assert work.returncode == 1
    assert "Error: cannot import handler module 'no_such_module'" in work.stderr
    assert "::error::octoqueue work stopped with exit status 1" in work.stdout
    assert work.outputs["processed"] == "0"  # outputs are written all the same
    assert "exit status 1" in run.summary
    assert harness.github.labels_of(job_id) == ["pending"]


BARE_PROBE = "import sys, importlib.util as u; sys.exit(sys.version_info < (3, 11) or bool(u.find_spec('octoqueue')))"


def _bare_python_dir() -> str | None:
    """A directory on PATH (not this virtualenv) whose python3 is 3.11+ and has no octoqueue installed."""
    import os
    import sys

    ours = str(Path(sys.executable).parent)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / "python3"
        if directory == ours or not candidate.exists():
            continue
        probe = BARE_PROBE
        if subprocess.run([str(candidate), "-I", "-c", probe], capture_output=True).returncode == 0:
            return directory
    return None


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_install_step_installs_octoqueue_from_the_action_path(harness: Harness) -> None:
    """The real install: a virtualenv under RUNNER_TEMP and ``pip install`` of this checkout (needs a package
    index, so it runs only with OCTOQUEUE_TEST_ACTION_INSTALL=1, as CI sets it)."""
    import os

    if os.environ.get("OCTOQUEUE_TEST_ACTION_INSTALL") != "1":
        pytest.skip("set OCTOQUEUE_TEST_ACTION_INSTALL=1 to pip-install octoqueue into a fresh virtualenv")
    bare = _bare_python_dir()
    if bare is None:
        pytest.skip("no Python 3.11+ without octoqueue on PATH")
    with harness.queue() as queue:
        job_id = queue.enqueue({"text": "installed from the action path"})
    event = labeled_event(harness.github.get_issue(job_id))
    run = harness.run({"command": WORD_COUNT}, "issues", event, path=bare, timeout=540)

    install = run.step("install")
    assert install.returncode == 0, run.log
    assert "installed octoqueue 0.2.0 in" in install.stdout
    assert install.outputs["python"].endswith("octoqueue-venv/bin/python")
    assert outputs_of(run)["completed"] == "1"
    assert '"words": 5' in harness.result_comments(job_id)[0]


@pytest.mark.parametrize(
    ("status", "fix"),
    [(401, "pass a valid token in the action's token input"), (403, "permissions: {issues: write, contents: write}")],
)
def test_a_token_github_refuses_fails_the_step_with_the_cause_and_the_fix(
    harness: Harness, status: int, fix: str
) -> None:
    with harness.queue() as queue:
        job_id = queue.enqueue({"text": "needs a working token"})
    event = labeled_event(harness.github.get_issue(job_id))
    if status == 401:
        harness.github.backend.token = "a-token-the-workflow-does-not-have"
    else:
        harness.github.backend.token_read_only = True

    started = time.monotonic()
    run = harness.run({"command": WORD_COUNT}, "issues", event)

    work = run.step("work")
    assert work.returncode == 1, run.log
    (error,) = [line for line in work.stdout.splitlines() if line.startswith("::error")]
    assert f"title=octoqueue cannot use {REPO.replace('/', '/')}" in error
    assert f"({status} " in error and fix in error
    assert "exit status 1" in run.summary
    assert time.monotonic() - started < 60  # it stops at once instead of backing off
    assert harness.github.labels_of(job_id) == ["pending"]  # nothing half-done
