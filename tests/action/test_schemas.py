"""action.yml and every workflow validate against the published schemas (SchemaStore's, vendored inside
check-jsonschema, so no network is used: the test runs it with proxies that lead nowhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(sys.executable).parent / "check-jsonschema"
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("examples/workflows/*.yml")])


def check(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    if not CHECK.exists():
        pytest.fail(f"{CHECK} is missing: install the dev extras (check-jsonschema)")
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port: any download would fail
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead}
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return subprocess.run(
        [str(CHECK), "--builtin-schema", schema, "--no-cache", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_action_yml_validates() -> None:
    done = check("vendor.github-actions", ROOT / "action.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_there_are_workflows() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in WORKFLOWS}
    assert {".github/workflows/ci.yml", "examples/workflows/worker.yml"} <= names


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_workflow_validates(workflow: Path) -> None:
    done = check("vendor.github-workflows", workflow)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_does_fail_on_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: 3\n")
    done = check("vendor.github-workflows", broken)
    assert done.returncode == 1, done.stdout + done.stderr


def test_workflows_set_permissions_explicitly() -> None:
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        assert "permissions" in workflow, f"{path.name} has no top-level permissions"
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    assert ci["permissions"] == {"contents": "read"}
    assert ci["jobs"]["test"]["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]
    worker = yaml.safe_load((ROOT / "examples/workflows/worker.yml").read_text())
    assert worker["permissions"] == {"issues": "write", "contents": "write"}


def test_example_worker_triggers_and_concurrency() -> None:
    worker = yaml.safe_load((ROOT / "examples/workflows/worker.yml").read_text())
    triggers = worker[True]  # YAML 1.1 reads the key "on" as True
    assert triggers["issues"]["types"] == ["labeled"]
    assert triggers["repository_dispatch"]["types"] == ["octoqueue-job"]
    assert "workflow_dispatch" in triggers
    assert triggers["schedule"] == [{"cron": "*/15 * * * *"}]
    group = worker["concurrency"]["group"]
    assert group.startswith("${{ github.workflow }}-${{ github.event.issue.number ||")
    assert group.endswith("|| github.run_id }}")
    assert worker["concurrency"]["cancel-in-progress"] is False


def test_action_inputs_reach_the_steps_through_env() -> None:
    """Composite actions get no INPUT_* variables: every input must be passed on through a step's env."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    used = "\n".join(yaml.safe_dump(step) for step in action["runs"]["steps"])
    for name in action["inputs"]:
        assert "${{ inputs." + name + " }}" in used, f"input {name} is never used"
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert "inputs." not in step["run"], "expressions in run: scripts are injection-prone; use env"
            assert step["shell"] == "bash"
