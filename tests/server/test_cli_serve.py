"""``octoqueue serve`` and ``uvicorn octoqueue.api:app``: options, environment twins, .env, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from octoqueue.api import Settings
from octoqueue.cli import main
from octoqueue.cli.serve import build_settings, settings_environment
from octoqueue.errors import ConfigurationError

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
OCTOQUEUE = str(Path(sys.executable).with_name("octoqueue"))
SAMPLES: dict[str, str] = {
    "host": "127.0.0.2",
    "port": "9123",
    "log_level": "debug",
    "log_format": "json",
    "reload": "true",
    "repo": "acme/jobs",
    "label_prefix": "oq-",
    "read_mirror": "sqlite:///read-mirror.db",
    "read_mirror_interval": "7.5",
    "lease": "42",
    "max_attempts": "3",
    "allowed_origins": "https://a.example,https://b.example",
    "api_key": "k",
    "api_keys": "producer:p1",
    "open_reads": "false",
    "webhook_secret": "s",
    "webhook_trusted_users": "alice",
    "webhook_repo": "acme/jobs",
    "rate_limit_requests": "7",
    "rate_limit_window": "30",
    "max_body_bytes": "1000",
    "max_block_ms": "100",
    "claim_poll_interval": "0.5",
    "recover_interval": "2",
    "settings_cache_seconds": "0",
    "metrics_cache_seconds": "2.5",
    "max_job_waiters": "50",
    "worker": "false",
    "scheduler": "true",
    "handler": "mod:fn",
    "concurrency": "4",
    "prefetch": "8",
    "worker_labels": "a,b",
    "worker_limits": "email=2,report=1",
}
SKIPPED_SAMPLES = {"store", "command"}  # exclusive with repo / handler


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields.values():
        for name in getattr(field.validation_alias, "choices", ()):
            monkeypatch.delenv(str(name), raising=False)


@pytest.mark.parametrize("field", sorted(set(Settings.model_fields) - SKIPPED_SAMPLES))
def test_every_setting_has_an_environment_twin(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    variable = str(Settings.model_fields[field].validation_alias.choices[0])  # type: ignore[union-attr]
    monkeypatch.setenv(variable, SAMPLES[field])
    value = getattr(Settings(_env_file=None), field)  # type: ignore[call-arg]
    shown = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    assert str(shown).lower() == SAMPLES[field].lower() or float(shown) == float(SAMPLES[field])


def test_the_original_variable_names_work(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    for name, value in {
        "GITHUB_REPO": "o/r",
        "API_KEY": "key",
        "ALLOWED_ORIGINS": "https://x.example,https://y.example",
        "RATE_LIMIT_REQUESTS": "5",
        "RATE_LIMIT_WINDOW": "60",
        "PORT": "5000",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.store_url == "github://o/r"
    assert settings.origins == ["https://x.example", "https://y.example"]
    assert (settings.rate_limit_requests, settings.rate_limit_window, settings.port) == (5, 60, 5000)


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    (tmp_path / ".env").write_text("RATE_LIMIT_REQUESTS=7\nPORT=9000\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "9001")
    settings = Settings()
    assert settings.rate_limit_requests == 7
    assert settings.port == 9001
    assert build_settings({"port": 9002}).port == 9002  # a flag wins over both


def test_flags_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    settings = build_settings(
        {"allowed_origins": ("https://a.example", "https://b.example"), "repo": "o/r", "worker_labels": ()}
    )
    assert settings.origins == ["https://a.example", "https://b.example"]
    assert settings.store_url == "github://o/r"
    assert settings.store_url == Settings(_env_file=None).store_url.replace("sqlite:///octoqueue.db", "github://o/r")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"repo": "not-a-repo"}, "owner/repo"),
        ({"repo": "o/r", "store": "sqlite:///x.db"}, "disagree"),
        ({"repo": "o/r", "webhook_repo": "someone/else"}, "its own repository only"),
        ({"webhook_repo": "not a repo"}, "owner/repo"),
        ({"worker": True}, "--handler"),
        ({"handler": "m:f", "command": "cat"}, "not both"),
    ],
)
def test_bad_options_are_one_clear_error(
    options: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clean_env(monkeypatch)
    with pytest.raises(ConfigurationError, match=message):
        build_settings(options)


def test_bad_options_exit_1_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    result = CliRunner().invoke(main, ["serve", "--repo", "nope"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: repo:")


def test_bad_api_keys_stop_serve_before_it_says_it_is_listening(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A1: the banner ("listening on ... Send it a job") came first, then the error about API_KEYS."""
    _clean_env(monkeypatch)
    monkeypatch.setenv("API_KEYS", "no-role-here")
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--store", f"sqlite:///{tmp_path}/a.db"])
    assert result.exit_code == 1
    assert "listening on" not in result.output and "Send it a job" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: ")


def test_help_lists_every_option() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for option in [
        "--host",
        "--port",
        "--repo",
        "--store",
        "--allowed-origin",
        "--api-key",
        "--api-keys",
        "--webhook-secret",
        "--log-level",
        "--reload",
        "--rate-limit-requests",
        "--rate-limit-window",
        "--max-body-bytes",
        "--worker",
        "--handler",
        "--command",
        "--concurrency",
        "--prefetch",
    ]:
        assert option in result.output, option


@pytest.mark.parametrize(("given", "expected"), [({}, 16), ({"prefetch": 1}, 1), ({"prefetch": 40}, 40)])
def test_the_in_process_worker_takes_the_prefetch_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: dict[str, Any], expected: int
) -> None:
    from octoqueue.api.metrics import Metrics
    from octoqueue.api.server import _start_worker
    from octoqueue.queue import Queue

    _clean_env(monkeypatch)
    settings = build_settings({"worker": True, "command": "true", **given})
    queue = Queue(f"sqlite:///{tmp_path / 'q.db'}")
    worker = _start_worker(settings, queue, Metrics(lambda: queue, 1.0))
    assert worker is not None
    try:
        assert worker.prefetch == expected
    finally:
        worker.stop()
        queue.close()


def test_a_prefetch_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    result = CliRunner().invoke(main, ["serve", "--prefetch", "0"])
    assert result.exit_code != 0
    assert "Invalid value for '--prefetch'" in result.output


def test_settings_environment_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    settings = build_settings({"repo": "o/r", "api_keys": "admin:a", "rate_limit_requests": 3, "open_reads": False})
    for name, value in settings_environment(settings).items():
        monkeypatch.setenv(name, value)
    again = Settings(_env_file=None)  # type: ignore[call-arg]
    assert again.model_dump() == settings.model_dump()


# -- real processes ----------------------------------------------------------------------------------------------
def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCTOQUEUE_", "GITHUB_", "API_KEY", "RATE_"))}
    env.pop("PORT", None)
    env.update(extra)
    return env


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.communicate()}")
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not come up")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, cwd=tmp_path, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def test_octoqueue_serve_runs_and_stops_on_sigterm(spawn: Any, tmp_path: Path) -> None:
    port = free_port()
    proc = spawn(
        [OCTOQUEUE, "serve", "--host", "127.0.0.1", "--store", f"sqlite:///{tmp_path}/q.db"],
        PORT=str(port),
        API_KEY="secret-key",
    )
    url = f"http://127.0.0.1:{port}"
    _wait_up(url, proc)
    assert requests.post(url + "/create-job", json={"data": {}}, timeout=5).status_code == 401
    created = requests.post(
        url + "/create-job", json={"data": {"a": 1}}, headers={"X-API-Key": "secret-key"}, timeout=5
    )
    assert created.status_code == 201
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells how it ended
    assert proc.returncode in (0, -signal.SIGTERM)
    assert b"Application shutdown complete" in err


def test_serve_with_an_in_process_worker(spawn: Any, tmp_path: Path) -> None:
    port = free_port()
    proc = spawn(
        [
            OCTOQUEUE,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--store",
            f"sqlite:///{tmp_path}/q.db",
            "--worker",
            "--command",
            "cat",
            "--concurrency",
            "2",
        ],
    )
    url = f"http://127.0.0.1:{port}"
    _wait_up(url, proc)
    job_id = requests.post(url + "/create-job", json={"data": {"echo": "me"}}, timeout=5).json()["job_id"]
    from octoqueue.queue import Queue

    with Queue(f"sqlite:///{tmp_path}/q.db") as queue:
        deadline = time.monotonic() + 20
        while queue.get(job_id).status != "completed":
            assert time.monotonic() < deadline, "the in-process worker did not run the job"
            time.sleep(0.1)
        assert queue.get(job_id).result == {"echo": "me"}


def test_uvicorn_serves_the_module_level_app(spawn: Any, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / ".env").write_text(f"OCTOQUEUE_STORE=sqlite:///{tmp_path}/u.db\nAPI_KEYS=admin:dotenv-key\n")
    proc = spawn([sys.executable, "-m", "uvicorn", "octoqueue.api:app", "--host", "127.0.0.1", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    _wait_up(url, proc)
    ready = requests.get(url + "/ready", headers={"X-API-Key": "dotenv-key"}, timeout=5)
    assert ready.json()["store"].endswith("u.db")
    schema = {"schema": {"type": "object"}}
    assert requests.post(url + "/admin/schema", json=schema, timeout=5).status_code == 401
    ok = requests.post(url + "/admin/schema", json=schema, headers={"X-API-Key": "dotenv-key"}, timeout=5)
    assert ok.status_code == 200
    assert json.loads(requests.get(url + "/openapi.json", timeout=5).text)["info"]["title"] == "octoqueue"


def test_serve_freezes_the_startup_objects_and_collects_young_objects_less_often(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Full garbage collections walk the frozen objects no more (they stopped the server 50-140 ms each under load),
    and fewer objects of the requests in flight reach the old generation."""
    import gc

    import uvicorn

    from octoqueue.cli import serve

    frozen_when_serving: list[tuple[int, int]] = []
    monkeypatch.setattr(
        uvicorn.Server,
        "run",
        lambda self, sockets=None: frozen_when_serving.append((gc.get_freeze_count(), gc.get_threshold()[0])),
    )
    thresholds = gc.get_threshold()
    _clean_env(monkeypatch)
    settings = Settings(_env_file=None, store=f"sqlite:///{tmp_path}/q.db", host="127.0.0.1", port=0)  # type: ignore[call-arg]
    try:
        serve.run(settings)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    ((frozen, young_threshold),) = frozen_when_serving
    assert frozen > 10_000
    assert young_threshold == serve.GC_YOUNG_THRESHOLD
