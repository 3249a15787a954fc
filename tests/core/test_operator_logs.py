"""What an operator reads: failures as warnings, per-job durations, a run summary with its pace, jobs no handler
takes, HTTP clients quiet below DEBUG, one format (text or JSON) for octoqueue's and uvicorn's lines, and an exit
status scripts can test."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import octoqueue
from octoqueue.errors import PermanentError
from octoqueue.logs import configure_logging
from octoqueue.queue import Queue
from octoqueue.worker import Worker

from .test_cli import ROOT, oq


@pytest.fixture
def queue() -> Iterator[Queue]:
    with Queue("memory://") as q:
        yield q


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _refuse(data: object) -> None:
    raise PermanentError("no thanks")


def test_a_failed_job_is_a_warning_with_its_duration(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    job_id = queue.enqueue({})
    caplog.set_level(logging.WARNING, logger="octoqueue.worker")
    Worker(queue, _refuse).run(once=True, install_signal_handlers=False)
    [record] = [r for r in caplog.records if getattr(r, "job_id", None) == job_id]
    assert record.levelno == logging.WARNING
    assert f"job {job_id} attempt 1 failed after" in record.getMessage() and "no thanks" in record.getMessage()
    assert record.outcome == "failed" and record.seconds >= 0  # type: ignore[attr-defined]


def test_a_completed_job_line_says_how_long_it_took(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    job_id = queue.enqueue({"n": 2})
    caplog.set_level(logging.INFO, logger="octoqueue.worker")
    stats = Worker(queue, lambda data: data["n"]).run(once=True, install_signal_handlers=False)
    [record] = [r for r in caplog.records if getattr(r, "job_id", None) == job_id]
    assert record.getMessage().startswith(f"job {job_id} completed in ") and " s (attempt 1)" in record.getMessage()
    assert stats.reports[0].seconds == pytest.approx(record.seconds, abs=1e-6)  # type: ignore[attr-defined]


def test_the_run_summary_has_elapsed_time_and_pace(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    for n in range(4):
        queue.enqueue({"n": n})
    caplog.set_level(logging.INFO, logger="octoqueue.worker")
    stats = Worker(queue, lambda data: data["n"]).run(once=True, install_signal_handlers=False)
    assert stats.seconds > 0 and stats.jobs_per_second == pytest.approx(4 / stats.seconds)
    summary = stats.as_dict()
    assert summary["seconds"] > 0 and summary["jobs_per_second"] > 0
    stopped = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
    assert stopped and " jobs/s): 4 completed" in stopped[0] and "processed 4 in " in stopped[0]


def test_jobs_of_a_type_no_handler_takes_are_warned_about(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    queue.enqueue({}, type="resize")
    orphan = queue.enqueue({}, type="transcode")
    worker = Worker(queue)
    worker.register("resize", lambda data: "ok")
    caplog.set_level(logging.WARNING, logger="octoqueue.worker")
    stats = worker.run(once=True, install_signal_handlers=False)
    assert stats.completed == 1
    warnings = [r for r in caplog.records if "no handler" in r.getMessage()]
    assert len(warnings) == 1  # once a type, though looked for at the start and at the end
    assert f"pending job(s) {orphan} of type 'transcode'" in warnings[0].getMessage()
    assert "'resize'" in warnings[0].getMessage()


def test_a_catch_all_worker_warns_about_nothing(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    queue.enqueue({}, type="anything")
    caplog.set_level(logging.WARNING, logger="octoqueue.worker")
    Worker(queue, lambda data: None).run(once=True, install_signal_handlers=False)
    assert not [r for r in caplog.records if "no handler" in r.getMessage()]


@pytest.mark.usefixtures("restore_logging")
def test_http_request_lines_show_only_at_debug() -> None:
    for level, shown in (("info", False), ("debug", True)):
        out = io.StringIO()
        configure_logging(level, stream=out)
        logging.getLogger("httpx").info('HTTP Request: GET https://api.github.com/x "HTTP/1.1 200 OK"')
        assert ("DEBUG httpx: HTTP Request" in out.getvalue()) is shown, (level, out.getvalue())


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_for_octoqueue_and_uvicorn_alike() -> None:
    out = io.StringIO()
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(io.StringIO()))  # as uvicorn's config does
    configure_logging("info", "json", stream=out)
    logging.getLogger("octoqueue.worker").warning("job %d failed", 7, extra={"job_id": 7})
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("octoqueue.api").exception("it broke")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["logger"], d["level"], d["message"]) for d in lines] == [
        ("octoqueue.worker", "warning", "job 7 failed"),
        ("uvicorn.error", "info", "Started server process [42]"),
        ("octoqueue.api", "error", "it broke"),
    ]
    assert lines[0]["job_id"] == 7 and "ValueError: boom" in lines[2]["exception"]
    assert not logging.getLogger("uvicorn.error").handlers


def test_work_strict_exits_2_when_a_job_failed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    oq("enqueue", '{"n": 1}', store=db)
    oq("enqueue", '{"no_n": 1}', store=db)
    loose = oq("work", "--handler", "tests.core.handlers_for_tests:double", "--once", "--on-failure", "fail", store=db)
    assert loose.returncode == 0, loose.stderr
    assert "processed 2 in " in loose.stderr and "jobs/s): 1 completed, 1 failed" in loose.stderr
    oq("enqueue", '{"no_n": 2}', store=db)
    strict = oq(
        "work",
        "--handler",
        "tests.core.handlers_for_tests:double",
        "--once",
        "--on-failure",
        "fail",
        "--strict",
        "--log-level",
        "warning",
        store=db,
    )
    assert strict.returncode == 2, strict.stderr
    assert "WARNING octoqueue.worker: job 3 attempt 1 failed after" in strict.stderr
    oq("enqueue", '{"n": 3}', store=db)
    fine = oq("work", "--handler", "tests.core.handlers_for_tests:double", "--once", "--strict", store=db)
    assert fine.returncode == 0, fine.stderr


def test_work_log_format_json(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    oq("enqueue", '{"n": 1}', store=db)
    result = oq("work", "--handler", "tests.core.handlers_for_tests:double", "--once", "--log-format", "json", store=db)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.strip().splitlines()]  # every line
    done = next(r for r in records if r.get("outcome") == "completed")
    assert done["job_id"] == 1 and done["attempt"] == 1 and done["seconds"] >= 0
    assert records[-1]["completed"] == 1 and records[-1]["jobs_per_second"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("work", "--once"), "Error: give exactly one of --handler"),
        (("enqueue",), "Error: Missing argument 'DATA' (see 'octoqueue enqueue --help')"),
        (("no-such-command",), "Error: No such command 'no-such-command' (see 'octoqueue --help')"),
        (("list", "--limit", "0"), "Error: Invalid value for '--limit'"),
        (("enqueue", "{broken"), "Error: Invalid value: DATA is not valid JSON"),
    ],
)
def test_usage_errors_are_one_line_and_exit_1_as_the_readme_says(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    result = oq(*args, store=tmp_path / "u.db")
    assert result.returncode == 1
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1, result.stderr
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "errors exit 1 with one line" in readme


def test_the_cli_imports_only_what_a_command_needs() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['octoqueue', '--version']\n"
        "try:\n"
        "    runpy.run_module('octoqueue.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('fastapi', 'uvicorn', 'pydantic', 'githubkit', 'httpx') if m in sys.modules)\n"
        "print('loaded:', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert result.stdout.splitlines() == ["octoqueue, version " + octoqueue.__version__, "loaded: []"], result


def test_every_job_command_is_reachable_by_its_name() -> None:
    from octoqueue.cli import COMMANDS, main
    from octoqueue.cli.jobs import COMMANDS as JOB_COMMANDS

    names = {name for name, target in COMMANDS.items() if target.startswith("octoqueue.cli.jobs:")}
    assert {command.name for command in JOB_COMMANDS} == names
    for name in COMMANDS:
        assert main.get_command(click.Context(main), name) is not None, name
