"""The GitHub Action's glue: decide what to work on from the triggering event, run ``octoqueue work``, and report.

Run as ``python -m octoqueue.action`` by the composite action in ``action.yml``. Composite actions receive no
``INPUT_*`` variables, so ``action.yml`` passes every input as an ``OCTOQUEUE_ACTION_*`` environment variable:

``REPOSITORY`` (owner/name), ``LABELS`` (comma- or newline-separated), ``LABEL_PREFIX``, ``COMMAND``,
``HANDLER``, ``MAX_JOBS``, ``TIMEOUT``, ``LEASE``, ``CONCURRENCY``, ``ON_FAILURE`` (retry|fail). The token
reaches the worker as ``GH_TOKEN``/``GITHUB_TOKEN``; the API URL is the runner's ``GITHUB_API_URL``.

What it works on:

- an ``issues`` event (opened, labeled, reopened, ...) for an open issue carrying the pending label (and the
  queue's labels): that job only (``--job N``);
- an ``issues`` event for any other issue (not a job, or a job already taken or finished): nothing;
- ``repository_dispatch`` with ``client_payload.job_id``, or ``workflow_dispatch`` with a ``job`` input: that job;
- anything else (``schedule``, plain dispatches, ``push``, ...): the queue, up to ``MAX_JOBS`` jobs
  (``--once --max-jobs N``; 0 means no limit).

The claim is the same atomic claim every octoqueue worker makes, so runs started at once never share a job.
Afterwards it writes the outputs ``processed``, ``completed``, ``failed``, ``retried``, ``job-ids`` (a JSON
array) and ``mode`` to ``$GITHUB_OUTPUT``, and a Markdown table of the jobs to ``$GITHUB_STEP_SUMMARY``.
Its exit status is the worker's: 0 even when jobs failed (failures are recorded on the jobs), 1 when the worker
could not work — e.g. GitHub refused the token (401) or it lacks the write permissions (403): then an ``::error``
annotation names the cause and the fix, and the step fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octoqueue.errors import ConfigurationError
from octoqueue.states import JobState, LabelScheme

ENV_PREFIX = "OCTOQUEUE_ACTION_"
DEFAULT_MAX_JOBS = 10
#: Longest result or error text shown in one cell of the job summary.
CELL_LIMIT = 120
#: Longest error shown in full below the summary's table (its tail is kept).
ERROR_LIMIT = 2_000


@dataclass(frozen=True)
class ActionInputs:
    """The action's inputs, read from ``OCTOQUEUE_ACTION_*``."""

    repository: str
    labels: tuple[str, ...] = ()
    label_prefix: str = ""
    command: str | None = None
    handler: str | None = None
    max_jobs: int = DEFAULT_MAX_JOBS
    timeout: float | None = None
    lease: float | None = None
    concurrency: int | None = None
    on_failure: str = "retry"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ActionInputs:
        def value(name: str) -> str:
            return env.get(ENV_PREFIX + name, "").strip()

        repository = value("REPOSITORY") or env.get("GITHUB_REPOSITORY", "").strip()
        owner, sep, name = repository.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise ConfigurationError(f"repository {repository!r} must look like owner/name")
        command = env.get(ENV_PREFIX + "COMMAND", "").strip() or None
        handler = value("HANDLER") or None
        if bool(command) == bool(handler):
            raise ConfigurationError("set exactly one of the inputs command and handler")
        on_failure = value("ON_FAILURE").lower() or "retry"
        if on_failure not in ("retry", "fail"):
            raise ConfigurationError(f"on-failure must be retry or fail, not {on_failure!r}")
        labels = tuple(
            dict.fromkeys(part.strip() for chunk in value("LABELS").splitlines() for part in chunk.split(","))
        )
        max_jobs = _number("max-jobs", value("MAX_JOBS"), int)
        concurrency = _number("concurrency", value("CONCURRENCY"), int)
        if concurrency is not None and concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        return cls(
            repository=repository,
            labels=tuple(label for label in labels if label),
            label_prefix=value("LABEL_PREFIX"),
            command=command,
            handler=handler,
            max_jobs=DEFAULT_MAX_JOBS if max_jobs is None else max(0, max_jobs),
            timeout=_positive("timeout", value("TIMEOUT")),
            lease=_positive("lease", value("LEASE")),
            concurrency=concurrency,
            on_failure=on_failure,
        )

    @property
    def store_url(self) -> str:
        return f"github://{self.repository}"


def _number(name: str, text: str, kind: type[int] | type[float]) -> Any:
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {text!r}") from None


def _positive(name: str, text: str) -> float | None:
    number: float | None = _number(name, text, float)
    if number is not None and number <= 0:
        raise ConfigurationError(f"{name} must be positive")
    return number


@dataclass(frozen=True)
class Plan:
    """What this run works on: one job (``job``), the queue (``drain``) or nothing (``skip``)."""

    mode: str
    job_id: int | None = None
    reason: str = ""


def plan(event_name: str, event: Mapping[str, Any], settings: ActionInputs) -> Plan:
    """Decide from the triggering event (the parsed ``$GITHUB_EVENT_PATH``) what to work on."""
    scheme = LabelScheme(settings.label_prefix)
    if event_name in ("issues", "issue_comment"):
        issue = event.get("issue")
        if not isinstance(issue, Mapping) or "number" not in issue:
            return Plan("drain", reason=f"{event_name} event without an issue")
        number = int(issue["number"])
        if issue.get("pull_request"):
            return Plan("skip", reason=f"#{number} is a pull request, not a job")
        names = [str(label.get("name", "")) for label in issue.get("labels") or () if isinstance(label, Mapping)]
        state = scheme.state_of(names)
        if state is None:
            return Plan("skip", reason=f"issue #{number} has no status label: it is not a job")
        missing = [label for label in settings.labels if label not in names]
        if missing:
            return Plan("skip", reason=f"job #{number} lacks this queue's label(s) {', '.join(missing)}")
        if state is not JobState.PENDING or issue.get("state", "open") != "open":
            return Plan("skip", reason=f"job #{number} is {state.value}: nothing to do")
        return Plan("job", number, reason=f"{event_name}.{event.get('action', '')} on pending job #{number}")
    if event_name == "repository_dispatch":
        job_id = _as_job_id((event.get("client_payload") or {}).get("job_id"))
        if job_id is not None:
            return Plan("job", job_id, reason=f"repository_dispatch for job #{job_id}")
    if event_name == "workflow_dispatch":
        inputs = event.get("inputs") or {}
        job_id = _as_job_id(inputs.get("job") or inputs.get("job_id"))
        if job_id is not None:
            return Plan("job", job_id, reason=f"workflow_dispatch for job #{job_id}")
    return Plan("drain", reason=f"{event_name or 'unknown'} event: working through the queue")


def _as_job_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().lstrip("#").isdigit():
        return int(value.strip().lstrip("#")) or None
    return None


def work_args(settings: ActionInputs, plan: Plan, summary_path: str) -> list[str]:
    """The ``octoqueue work`` arguments for this run."""
    args = ["work", "--store", settings.store_url]
    if settings.handler:
        args += ["--handler", settings.handler]
    else:
        args += ["--command", settings.command or ""]
    args.append("--once")
    if plan.mode == "job" and plan.job_id is not None:
        args += ["--job", str(plan.job_id), "--max-jobs", "1"]
    elif settings.max_jobs:
        args += ["--max-jobs", str(settings.max_jobs)]
    for label in settings.labels:
        args += ["--label", label]
    if settings.label_prefix:
        args += ["--label-prefix", settings.label_prefix]
    if settings.timeout is not None:
        args += ["--timeout", f"{settings.timeout:g}"]
    if settings.lease is not None:
        args += ["--lease", f"{settings.lease:g}"]
    if settings.concurrency is not None:
        args += ["--concurrency", str(settings.concurrency)]
    args += ["--on-failure", settings.on_failure, "--summary-json", summary_path]
    return args


def run_worker(args: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``octoqueue work`` in a child process (its output goes straight to the log); return its status.

    SIGTERM and SIGINT (a cancelled run) are passed on, so the worker gives its jobs back before it exits.
    """
    child_env = {k: v for k, v in env.items() if not k.startswith(ENV_PREFIX)}
    # sys.path[0] of ``python -c`` is the working directory, so a handler module in the checkout imports.
    code = "import sys; from octoqueue.cli import main; sys.exit(main())"
    sys.stdout.flush()
    child = subprocess.Popen([sys.executable, "-c", code, *args], env=child_env)

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- reporting ---------------------------------------------------------------------------------------------------
@dataclass
class Report:
    """The worker's ``--summary-json``, with defaults for a run that processed nothing."""

    processed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    job_ids: list[int] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    #: Why the worker stopped early (the store refused its token), and GitHub's status for it.
    error: str | None = None
    error_status: int | None = None

    @classmethod
    def load(cls, path: Path) -> Report | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        jobs = [job for job in data.get("jobs") or [] if isinstance(job, dict)]
        job_ids = data.get("job_ids")
        if not isinstance(job_ids, list):
            job_ids = [job["id"] for job in jobs if "id" in job]
        return cls(
            processed=int(data.get("processed") or 0),
            completed=int(data.get("completed") or 0),
            failed=int(data.get("failed") or 0),
            retried=int(data.get("retried") or 0),
            job_ids=[int(i) for i in job_ids],
            jobs=jobs,
            error=str(data["error"]) if data.get("error") else None,
            error_status=data["error_status"] if isinstance(data.get("error_status"), int) else None,
        )


def outputs(report: Report, plan: Plan) -> dict[str, str]:
    return {
        "processed": str(report.processed),
        "completed": str(report.completed),
        "failed": str(report.failed),
        "retried": str(report.retried),
        "job-ids": json.dumps(report.job_ids),
        "mode": plan.mode,
    }


def write_outputs(path: str | None, values: Mapping[str, str]) -> None:
    """Append ``values`` to ``$GITHUB_OUTPUT`` in the multi-line-safe ``name<<delimiter`` form."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for name, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def summary_markdown(
    report: Report, plan: Plan, settings: ActionInputs, server_url: str = "https://github.com", exit_code: int = 0
) -> str:
    """The job summary: a headline and a table of the jobs processed."""
    lines = [f"### octoqueue worker: {settings.repository}", ""]
    if exit_code != 0:
        lines += [f"The worker stopped with exit status {exit_code}; see the log.", ""]
    if plan.mode == "skip":
        lines += [f"Nothing to do: {plan.reason}.", ""]
        return "\n".join(lines)
    lines += [
        f"Processed {report.processed} job(s): {report.completed} completed, {report.failed} failed, "
        f"{report.retried} to be retried. ({plan.reason})",
        "",
    ]
    if not report.jobs:
        lines += ["No runnable jobs.", ""]
        return "\n".join(lines)
    lines += ["| Job | Title | Status | Attempt | Seconds | Result or error |", "|---|---|---|---|---|---|"]
    base = server_url.rstrip("/")
    for job in report.jobs:
        number = job.get("id")
        link = f"[#{number}]({base}/{settings.repository}/issues/{number})"
        status = str(job.get("status", ""))
        if "error" in job and job.get("error"):
            detail = "error: " + _cell(str(job["error"]).strip().splitlines()[0]) + " (below)"
        elif "result" in job:
            detail = _code_cell(json.dumps(job["result"], ensure_ascii=False))
        else:
            detail = ""
        seconds = job.get("seconds")
        seconds_text = f"{seconds:.2f}" if isinstance(seconds, int | float) else ""
        row = [link, _cell(str(job.get("title", ""))), _cell(status), str(job.get("attempt", "")), seconds_text]
        lines.append("| " + " | ".join([*row, detail]) + " |")
    lines.append("")
    for job in report.jobs:
        if job.get("error"):
            text = str(job["error"]).strip()
            if len(text) > ERROR_LIMIT:
                text = "…" + text[-ERROR_LIMIT:]
            fence = "```"
            while fence in text:
                fence += "`"
            heading = f"**#{job.get('id')}** ({_cell(str(job.get('status', '')))}, attempt {job.get('attempt', '?')}):"
            lines += [heading, "", fence, text, fence, ""]
    return "\n".join(lines)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…"


def _cell(text: str) -> str:
    text = _shorten(text)
    for char in "\\|<>*_`[]":
        text = text.replace(char, "\\" + char)
    return text


def _code_cell(text: str) -> str:
    text = _shorten(text).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def access_advice(report: Report, settings: ActionInputs) -> str:
    """The worker's error, and what to change in the workflow to fix it."""
    if report.error_status == 401:
        fix = (
            "Fix: pass a valid token in the action's token input (the default github.token works for the "
            "workflow's own repository); a personal access token or App token may have expired."
        )
    elif report.error_status == 403:
        fix = (
            "Fix: give the job `permissions: {issues: write, contents: write}` in the workflow, or pass a token "
            f"with write access to {settings.repository}'s issues and contents in the action's token input."
        )
    else:
        fix = "See the worker's last lines in the log."
    return f"{report.error}\n{fix}"


def annotate(kind: str, message: str, title: str | None = None) -> str:
    """A workflow command line (``::warning title=...::message``), escaped as the runner expects."""
    data = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    props = ""
    if title:
        escaped = title.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        props = " title=" + escaped.replace(":", "%3A").replace(",", "%2C")
    return f"::{kind}{props}::{data}"


# -- entry point -------------------------------------------------------------------------------------------------
def read_event(env: Mapping[str, str]) -> dict[str, Any]:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(annotate("warning", f"cannot read the event at {path}: {exc}; working through the queue"))
        return {}
    return data if isinstance(data, dict) else {}


def main(env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    try:
        settings = ActionInputs.from_env(env)
    except ConfigurationError as exc:
        print(annotate("error", f"octoqueue: {exc}"))
        return 1
    event_name = env.get("GITHUB_EVENT_NAME", "")
    chosen = plan(event_name, read_event(env), settings)
    print(f"octoqueue: {chosen.reason}")
    report = Report()
    code = 0
    if chosen.mode != "skip":
        with tempfile.TemporaryDirectory(prefix="octoqueue-action-") as tmp:
            summary_path = Path(tmp) / "summary.json"
            code = run_worker(work_args(settings, chosen, str(summary_path)), env)
            report = Report.load(summary_path) or report
        if code != 0 and report.error:
            title = f"octoqueue cannot use {settings.repository}"
            print(annotate("error", access_advice(report, settings), title=title))
        elif code != 0:
            print(annotate("error", f"octoqueue work stopped with exit status {code}; its last lines say why"))
    for job in report.jobs:
        if job.get("error"):
            print(
                annotate(
                    "warning",
                    str(job["error"])[:ERROR_LIMIT],
                    title=f"octoqueue job #{job.get('id')} {job.get('status', 'failed')}",
                )
            )
    write_outputs(env.get("GITHUB_OUTPUT"), outputs(report, chosen))
    summary_file = env.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        markdown = summary_markdown(
            report, chosen, settings, env.get("GITHUB_SERVER_URL") or "https://github.com", code
        )
        with open(summary_file, "a", encoding="utf-8") as out:
            out.write(markdown + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
