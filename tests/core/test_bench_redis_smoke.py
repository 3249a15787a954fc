"""The Redis suite of the benchmark is honest: every system it times really ran every job exactly once, on the real
Redis (127.0.0.1:6379), in keys of its own that it deletes. Small and quick; the figures are not checked here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `bench` lives at the repository root, next to `octoqueue`

from bench import __main__ as cli  # noqa: E402
from bench.redis_peers import PEERS, SYSTEMS  # noqa: E402

JOBS = 40
WORKERS = 2


@pytest.mark.timeout(180)
@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_each_redis_system_runs_every_job_exactly_once(system: str) -> None:
    result = SYSTEMS[system](JOBS, WORKERS)
    assert (result.jobs, result.workers) == (JOBS, WORKERS)
    assert result.ran == JOBS and result.distinct == JOBS, result
    assert result.duplicates == 0 and result.missing == 0, result
    assert result.store_ok, result.store_detail
    assert result.exactly_once
    assert result.settings["journal_mode"].startswith("aof=")


@pytest.mark.timeout(180)
def test_cli_redis_suite_prints_the_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = cli.main(
        [
            "--suite",
            "redis",
            "--jobs",
            str(JOBS),
            "--workers",
            str(WORKERS),
            "--repeat",
            "1",
            "--only",
            "octoqueue-redis,huey-redis,dramatiq-redis",
            "--json",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "appendonly" in printed and "octoqueue-redis vs the faster peer" in printed
    payload = json.loads(out.read_text())["redis"]
    assert set(payload["summary"]) == {"octoqueue-redis", "huey-redis", "dramatiq-redis"}
    assert payload["summary"]["octoqueue-redis"]["drain_peer"] in PEERS
    assert all(entry["exactly_once"] for entry in payload["summary"].values())


def test_cli_redis_suite_without_redis_says_so_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--suite", "redis", "--jobs", "5", "--repeat", "1", "--redis-url", "redis://127.0.0.1:1/0"])
    assert code == 1
    assert "cannot reach redis://127.0.0.1:1/0" in capsys.readouterr().out
