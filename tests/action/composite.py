"""Runs a composite action's steps as the Actions runner would, without a runner.

For each step: evaluate ``if:``, substitute ``${{ ... }}`` in ``env`` and ``run``, write the script to a file and
run it with ``bash --noprofile --norc -eo pipefail {0}`` (the runner's command for ``shell: bash``), with a fresh
``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY`` per step, then read the step's outputs the way the runner does.
``uses:`` steps cannot run here: one whose condition holds is an error.

The expression evaluator knows only the forms action.yml uses (and a test failure says so when it meets another):
``inputs.<name>``, ``github.<name>``, ``github.event.<path>`` (the event payload), ``runner.<name>``,
``steps.<id>.outputs.<name>``, string literals, ``==``/``!=`` comparisons, and ``||``/``&&`` between them (without
parentheses), which is what keeps action.yml's and the example workflow's expressions simple.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
COMPARISON = re.compile(r"^(.+?)\s*(==|!=)\s*(.+)$", re.DOTALL)
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


class UnsupportedExpression(Exception):
    pass


@dataclass
class Contexts:
    inputs: dict[str, str]
    github: dict[str, str]
    runner: dict[str, str]
    steps: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)

    def lookup(self, path: str) -> str:
        parts = path.split(".")
        if parts[:2] == ["github", "event"] and len(parts) > 2:
            value: Any = self.event
            for part in parts[2:]:
                value = value.get(part) if isinstance(value, dict) else None
            # A missing property is null, which Actions turns into '' when it compares strings.
            return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            # An output of a step that did not run (or did not set it) is the empty string.
            return self.steps.get(parts[1], {}).get("outputs", {}).get(parts[3], "")
        if parts[0] in ("inputs", "github", "runner") and len(parts) == 2:
            table: dict[str, str] = getattr(self, parts[0])
            return table.get(parts[1], "")
        raise UnsupportedExpression(path)


def evaluate(expression: str, contexts: Contexts) -> str:
    """Value of one expression (the text inside ``${{ }}``, or an ``if:``)."""
    expression = expression.strip()
    if "(" in expression:
        raise UnsupportedExpression(expression)
    # || binds looser than &&; each returns the deciding operand, as Actions does.
    if "||" in expression:
        values = [evaluate(part, contexts) for part in expression.split("||")]
        return next((value for value in values if truthy(value)), values[-1])
    if "&&" in expression:
        values = [evaluate(part, contexts) for part in expression.split("&&")]
        return next((value for value in values if not truthy(value)), values[-1])
    match = COMPARISON.match(expression)
    if match:
        left, op, right = (evaluate(match.group(1), contexts), match.group(2), evaluate(match.group(3), contexts))
        # Actions compares strings case-insensitively; the result is a boolean.
        equal = left.lower() == right.lower()
        return "true" if equal == (op == "==") else "false"
    if len(expression) >= 2 and expression[0] == expression[-1] == "'":
        return expression[1:-1].replace("''", "'")
    if re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)+", expression):
        return contexts.lookup(expression)
    raise UnsupportedExpression(expression)


def truthy(value: str) -> bool:
    return value not in ("", "false", "0")


def substitute(text: str, contexts: Contexts) -> str:
    return EXPRESSION.sub(lambda m: evaluate(m.group(1), contexts), text)


def condition(text: Any, contexts: Contexts) -> bool:
    if text is None:
        return True  # success(): no earlier step failed, or we would have stopped
    if isinstance(text, bool):
        return text
    inner = EXPRESSION.fullmatch(str(text).strip())
    return truthy(evaluate(inner.group(1) if inner else str(text), contexts))


def parse_command_file(text: str) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIMITER`` blocks, as the runner reads ``$GITHUB_OUTPUT``."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body: list[str] = []
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ValueError(f"output {name!r}: delimiter {delimiter!r} never closed")
            i += 1
            values[name] = "\n".join(body)
        else:
            name, _, value = line.partition("=")
            values[name] = value
    return values


@dataclass
class StepRun:
    id: str | None
    name: str
    ran: bool
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict[str, str]
    summary: str

    @property
    def returncode(self) -> int:
        return next((s.returncode for s in self.steps if s.returncode), 0)

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name}\n{s.stdout}{s.stderr}" for s in self.steps if s.ran)

    def step(self, step_id: str) -> StepRun:
        return next(s for s in self.steps if s.id == step_id)


def load_action(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["runs"]["using"] == "composite"
    return data  # type: ignore[no-any-return]


def run_composite(
    action_path: Path,
    *,
    inputs: Mapping[str, str],
    github: Mapping[str, str],
    env: Mapping[str, str],
    workdir: Path,
    temp: Path,
    timeout: float = 90,
    interrupt: Mapping[str, Callable[[subprocess.Popen[str]], None]] | None = None,
) -> ActionRun:
    """Run the composite action at ``action_path`` (a directory holding action.yml) with ``inputs``.

    ``github``: the github context (``token``, ``repository``, ``action_path``, ...); ``env``: the environment
    the runner gives every step (GITHUB_* variables included); ``workdir``: the job's workspace.
    ``interrupt``: step id -> a function called in a thread with the step's process once it started (to signal
    it as the runner does when a run is cancelled).
    """
    interrupt = interrupt or {}
    action = load_action(action_path / "action.yml")
    contexts = Contexts(inputs={}, github=dict(github), runner={"temp": str(temp), "os": "Linux"})
    declared = action.get("inputs") or {}
    unknown = set(inputs) - set(declared)
    assert not unknown, f"inputs not declared by the action: {sorted(unknown)}"
    for name, spec in declared.items():
        default = str((spec or {}).get("default", ""))
        contexts.inputs[name] = str(inputs[name]) if name in inputs else substitute(default, contexts)
    runs: list[StepRun] = []
    failed = False
    for index, step in enumerate(action["runs"]["steps"]):
        step_id = step.get("id")
        name = step.get("name") or step_id or f"step {index}"
        if failed or not condition(step.get("if"), contexts):  # after a failure, success() is false
            runs.append(StepRun(step_id, name, ran=False))
            continue
        if "uses" in step:
            raise AssertionError(f"step {name!r} uses {step['uses']} and cannot run outside a runner")
        assert step.get("shell") == "bash", f"step {name!r}: composite run steps need shell: bash here"
        script = temp / f"step-{index}-{uuid.uuid4().hex}.sh"
        script.write_text(substitute(step["run"], contexts), encoding="utf-8")
        output_file = temp / f"set_output_{uuid.uuid4().hex}"
        summary_file = temp / f"step_summary_{uuid.uuid4().hex}"
        output_file.touch()
        summary_file.touch()
        step_env = dict(env)
        step_env.update(
            GITHUB_OUTPUT=str(output_file),
            GITHUB_STEP_SUMMARY=str(summary_file),
            GITHUB_ACTION_PATH=str(action_path),
        )
        for key, value in (step.get("env") or {}).items():
            step_env[key] = substitute(str(value), contexts)
        cwd = workdir / substitute(step["working-directory"], contexts) if "working-directory" in step else workdir
        proc = subprocess.Popen(
            [*BASH, str(script)], env=step_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        watcher = None
        if step_id in interrupt:
            watcher = threading.Thread(target=interrupt[step_id], args=(proc,), daemon=True)
            watcher.start()
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if watcher is not None:
            watcher.join(timeout)
        outputs = parse_command_file(output_file.read_text(encoding="utf-8"))
        summary = summary_file.read_text(encoding="utf-8")
        runs.append(StepRun(step_id, name, True, proc.returncode, stdout, stderr, outputs, summary))
        if step_id:
            contexts.steps[step_id] = {"outputs": outputs}
        failed = proc.returncode != 0
    action_outputs = {
        name: substitute(str(spec.get("value", "")), contexts) for name, spec in (action.get("outputs") or {}).items()
    }
    return ActionRun(runs, action_outputs, "".join(r.summary for r in runs))


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a step starts from: little of ours (no OCTOQUEUE_*, no proxies), plus ``extra``."""
    keep = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(extra)
    return env
