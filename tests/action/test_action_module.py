"""octoqueue.action without GitHub: inputs, the event -> plan decision, the worker's arguments, the reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from octoqueue import action
from octoqueue.action import ActionInputs, Plan, Report
from octoqueue.errors import ConfigurationError

from .composite import parse_command_file

EVENTS = Path(__file__).parent / "events"


def settings(**env: str) -> ActionInputs:
    base = {"OCTOQUEUE_ACTION_REPOSITORY": "octo-org/jobs", "OCTOQUEUE_ACTION_COMMAND": "cat"}
    base.update(env)
    return ActionInputs.from_env({k: v for k, v in base.items() if v is not None})


def labeled_event() -> dict[str, Any]:
    return json.loads((EVENTS / "issues_labeled.json").read_text())


# -- inputs ----------------------------------------------------------------------------------------------------
def test_settings_from_env_reads_every_input() -> None:
    s = settings(
        OCTOQUEUE_ACTION_LABELS="images, thumbs\nbig,images",
        OCTOQUEUE_ACTION_LABEL_PREFIX="oq:",
        OCTOQUEUE_ACTION_MAX_JOBS="7",
        OCTOQUEUE_ACTION_TIMEOUT="60",
        OCTOQUEUE_ACTION_LEASE="120",
        OCTOQUEUE_ACTION_CONCURRENCY="2",
        OCTOQUEUE_ACTION_ON_FAILURE="FAIL",
    )
    assert s.labels == ("images", "thumbs", "big")
    assert (s.label_prefix, s.max_jobs, s.timeout, s.lease, s.concurrency) == ("oq:", 7, 60.0, 120.0, 2)
    assert s.on_failure == "fail"
    assert s.store_url == "github://octo-org/jobs"


def test_settings_defaults_and_repository_fallback() -> None:
    s = ActionInputs.from_env({"GITHUB_REPOSITORY": "me/q", "OCTOQUEUE_ACTION_HANDLER": "mod:fn"})
    assert (s.repository, s.handler, s.command, s.max_jobs, s.on_failure) == ("me/q", "mod:fn", None, 10, "retry")
    assert s.labels == () and s.timeout is None and s.lease is None and s.concurrency is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OCTOQUEUE_ACTION_REPOSITORY": "nope"}, "owner/name"),
        ({"OCTOQUEUE_ACTION_COMMAND": ""}, "exactly one of"),
        ({"OCTOQUEUE_ACTION_HANDLER": "m:f"}, "exactly one of"),
        ({"OCTOQUEUE_ACTION_ON_FAILURE": "ignore"}, "retry or fail"),
        ({"OCTOQUEUE_ACTION_MAX_JOBS": "ten"}, "max-jobs must be a number"),
        ({"OCTOQUEUE_ACTION_TIMEOUT": "-1"}, "timeout must be positive"),
        ({"OCTOQUEUE_ACTION_CONCURRENCY": "0"}, "at least 1"),
    ],
)
def test_bad_inputs_are_configuration_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings(**env)


# -- what to work on -------------------------------------------------------------------------------------------
def test_labeled_event_for_a_pending_job_works_on_that_job() -> None:
    assert action.plan("issues", labeled_event(), settings()) == Plan("job", 1, "issues.labeled on pending job #1")


def test_issue_events_that_are_not_for_a_pending_job_are_skipped() -> None:
    event = labeled_event()
    event["issue"]["labels"] = [{"name": "bug"}]
    assert action.plan("issues", event, settings()).mode == "skip"  # not a job
    event["issue"]["labels"] = [{"name": "processing"}]
    assert "processing" in action.plan("issues", event, settings()).reason
    event["issue"]["labels"] = [{"name": "pending"}]
    event["issue"]["state"] = "closed"
    assert action.plan("issues", event, settings()).mode == "skip"
    event["issue"]["state"] = "open"
    event["issue"]["pull_request"] = {"url": "x"}
    assert action.plan("issues", event, settings()).mode == "skip"


def test_issue_events_respect_the_queue_labels_and_prefix() -> None:
    event = labeled_event()
    assert action.plan("issues", event, settings(OCTOQUEUE_ACTION_LABELS="images")).mode == "skip"
    event["issue"]["labels"].append({"name": "images"})
    assert action.plan("issues", event, settings(OCTOQUEUE_ACTION_LABELS="images")).mode == "job"
    # With a prefix, "pending" is not a status label; "oq:pending" is.
    assert action.plan("issues", event, settings(OCTOQUEUE_ACTION_LABEL_PREFIX="oq:")).mode == "skip"
    event["issue"]["labels"] = [{"name": "oq:pending"}]
    assert action.plan("issues", event, settings(OCTOQUEUE_ACTION_LABEL_PREFIX="oq:")) == Plan(
        "job", 1, "issues.labeled on pending job #1"
    )


def test_other_events_drain_the_queue_unless_they_name_a_job() -> None:
    s = settings()
    assert action.plan("schedule", {"schedule": "*/15 * * * *"}, s).mode == "drain"
    assert action.plan("workflow_dispatch", {"inputs": {"job": ""}}, s).mode == "drain"
    assert action.plan("workflow_dispatch", {"inputs": {"job": "#12"}}, s) == Plan(
        "job", 12, "workflow_dispatch for job #12"
    )
    dispatch = {"action": "octoqueue-job", "client_payload": {"job_id": 5}}
    assert action.plan("repository_dispatch", dispatch, s).job_id == 5
    assert action.plan("repository_dispatch", {"client_payload": {"job_id": True}}, s).mode == "drain"
    assert action.plan("repository_dispatch", {"action": "octoqueue-job"}, s).mode == "drain"
    assert action.plan("", {}, s).mode == "drain"


def test_work_args() -> None:
    s = settings(
        OCTOQUEUE_ACTION_LABELS="a,b",
        OCTOQUEUE_ACTION_LABEL_PREFIX="oq:",
        OCTOQUEUE_ACTION_TIMEOUT="1.5",
        OCTOQUEUE_ACTION_LEASE="600",
        OCTOQUEUE_ACTION_ON_FAILURE="fail",
    )
    args = action.work_args(s, Plan("job", 3), "/tmp/s.json")
    assert args == [
        "work",
        "--store",
        "github://octo-org/jobs",
        "--command",
        "cat",
        "--once",
        "--job",
        "3",
        "--max-jobs",
        "1",
        "--label",
        "a",
        "--label",
        "b",
        "--label-prefix",
        "oq:",
        "--timeout",
        "1.5",
        "--lease",
        "600",
        "--on-failure",
        "fail",
        "--summary-json",
        "/tmp/s.json",
    ]
    drain = action.work_args(settings(OCTOQUEUE_ACTION_MAX_JOBS="4"), Plan("drain"), "s.json")
    assert drain[drain.index("--once") :][:3] == ["--once", "--max-jobs", "4"]
    unlimited = action.work_args(settings(OCTOQUEUE_ACTION_MAX_JOBS="0"), Plan("drain"), "s.json")
    assert "--max-jobs" not in unlimited


def test_work_args_are_accepted_by_the_cli() -> None:
    """Every flag the action passes exists on ``octoqueue work`` (parsed, not run)."""
    from octoqueue.cli import main

    s = settings(
        OCTOQUEUE_ACTION_LABELS="a",
        OCTOQUEUE_ACTION_LABEL_PREFIX="oq:",
        OCTOQUEUE_ACTION_TIMEOUT="2",
        OCTOQUEUE_ACTION_LEASE="60",
        OCTOQUEUE_ACTION_CONCURRENCY="2",
    )
    for chosen in (Plan("job", 3), Plan("drain")):
        args = action.work_args(s, chosen, "summary.json")
        context = main.make_context("octoqueue", list(args), resilient_parsing=True)
        sub = main.get_command(context, args[0])
        assert sub is not None
        sub_context = sub.make_context("work", list(args[1:]))
        assert sub_context.params["once"] is True
        assert sub_context.params["label_prefix"] == "oq:"


# -- reporting -------------------------------------------------------------------------------------------------
SUMMARY = {
    "processed": 2,
    "completed": 1,
    "failed": 1,
    "retried": 0,
    "job_ids": [4, 5],
    "jobs": [
        {
            "id": 4,
            "title": "Resize | big",
            "status": "completed",
            "attempt": 1,
            "result": {"ok": "a|b"},
            "seconds": 0.5,
        },
        {"id": 5, "title": "Broken", "status": "failed", "attempt": 2, "error": "boom\nline 2", "seconds": 1},
    ],
}


def test_outputs_are_multiline_safe(tmp_path: Path) -> None:
    report = Report(**{k: v for k, v in SUMMARY.items()})  # type: ignore[arg-type]
    out = tmp_path / "out"
    out.write_text("earlier=1\n")
    action.write_outputs(str(out), action.outputs(report, Plan("drain")))
    action.write_outputs(str(out), {"note": "two\nlines"})
    parsed = parse_command_file(out.read_text())
    assert parsed == {
        "earlier": "1",
        "processed": "2",
        "completed": "1",
        "failed": "1",
        "retried": "0",
        "job-ids": "[4, 5]",
        "mode": "drain",
        "note": "two\nlines",
    }


def test_summary_markdown_lists_the_jobs() -> None:
    report = Report(**SUMMARY)  # type: ignore[arg-type]
    text = action.summary_markdown(report, Plan("drain", reason="schedule"), settings(), "https://github.example")
    rows = [line for line in text.splitlines() if line.startswith("| [#")]
    assert len(rows) == 2
    assert rows[0].startswith("| [#4](https://github.example/octo-org/jobs/issues/4) | Resize \\| big | completed")
    assert '`{"ok": "a\\|b"}`' in rows[0]
    assert rows[1].endswith("| error: boom (below) |")
    assert "**#5** (failed, attempt 2):\n\n```\nboom\nline 2\n```" in text  # the whole error below the table
    assert all(row.count(" | ") == 5 for row in rows)  # escaped pipes keep the table's six columns
    assert "Processed 2 job(s): 1 completed, 1 failed" in text
    skipped = action.summary_markdown(Report(), Plan("skip", reason="issue #3 is not a job"), settings())
    assert "Nothing to do: issue #3 is not a job." in skipped
    empty = action.summary_markdown(Report(), Plan("drain", reason="schedule"), settings())
    assert "No runnable jobs." in empty


def test_report_load_tolerates_missing_or_partial_files(tmp_path: Path) -> None:
    assert Report.load(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{")
    assert Report.load(tmp_path / "bad.json") is None
    (tmp_path / "partial.json").write_text(json.dumps({"processed": 1, "jobs": [{"id": 9, "status": "completed"}]}))
    loaded = Report.load(tmp_path / "partial.json")
    assert loaded is not None and loaded.job_ids == [9] and loaded.processed == 1


def test_annotations_are_escaped() -> None:
    assert action.annotate("warning", "100%\ndone", title="job #1: a, b") == (
        "::warning title=job #1%3A a%2C b::100%25%0Adone"
    )


def test_main_with_bad_inputs_exits_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = action.main({"OCTOQUEUE_ACTION_REPOSITORY": "x/y", "GITHUB_OUTPUT": str(out)})
    assert code == 1
    assert capsys.readouterr().out.strip() == "::error::octoqueue: set exactly one of the inputs command and handler"


def test_main_skips_without_running_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    event = labeled_event()
    event["issue"]["labels"] = [{"name": "completed"}]
    (tmp_path / "event.json").write_text(json.dumps(event))

    def no_worker(*args: object) -> int:
        raise AssertionError("no worker should run")

    monkeypatch.setattr(action, "run_worker", no_worker)
    env = {
        "OCTOQUEUE_ACTION_REPOSITORY": "octo-org/jobs",
        "OCTOQUEUE_ACTION_COMMAND": "cat",
        "GITHUB_EVENT_NAME": "issues",
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    assert action.main(env) == 0
    outputs = parse_command_file((tmp_path / "out").read_text())
    assert outputs["processed"] == "0" and outputs["mode"] == "skip" and outputs["job-ids"] == "[]"
    assert "job #1 is completed: nothing to do" in (tmp_path / "summary.md").read_text()
    assert "nothing to do" in capsys.readouterr().out


def test_run_worker_runs_the_cli_without_the_action_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child is ``octoqueue`` itself and sees the runner's environment but not the OCTOQUEUE_ACTION_* inputs."""
    import os
    import subprocess

    env = {**os.environ, "OCTOQUEUE_ACTION_COMMAND": "secret", "KEEP": "1"}
    assert action.run_worker(["--version"], env) == 0
    seen: dict[str, Any] = {}
    real = subprocess.Popen

    def spy(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        seen.update(argv=argv, env=env)
        return real([sys.executable, "-c", "pass"])

    monkeypatch.setattr(action.subprocess, "Popen", spy)
    assert action.run_worker(["work", "--once"], env) == 0
    assert seen["argv"][0] == sys.executable and seen["argv"][-2:] == ["work", "--once"]
    assert seen["env"]["KEEP"] == "1" and "OCTOQUEUE_ACTION_COMMAND" not in seen["env"]


def test_the_recorded_event_is_what_github_sends() -> None:
    """The fixture parses as githubkit's ``issues.labeled`` webhook model (GitHub's published schema)."""
    from githubkit.webhooks import parse_obj
    from githubkit_schemas.latest.models import WebhookIssuesLabeled

    event = parse_obj("issues", labeled_event())
    assert isinstance(event, WebhookIssuesLabeled)
    assert event.label is not None and event.label.name == "pending"
