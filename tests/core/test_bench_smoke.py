"""The benchmark harness is honest: every system it times really ran every job exactly once.

Small and quick (200 jobs, 2 workers per system); the figures themselves are not checked here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `bench` lives at the repository root, next to `octoqueue`

from bench import __main__ as cli  # noqa: E402
from bench.sqlite_peers import PEERS, SYSTEMS, RunResult  # noqa: E402

JOBS = 200
WORKERS = 2


@pytest.mark.timeout(120)
@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_each_system_runs_every_job_exactly_once(system: str, tmp_path: Path) -> None:
    result = SYSTEMS[system](JOBS, WORKERS, base_dir=str(tmp_path))
    assert isinstance(result, RunResult)
    assert (result.jobs, result.workers) == (JOBS, WORKERS)
    # the handlers' own record: every job number once, none twice, none missing
    assert result.ran == JOBS, result
    assert result.distinct == JOBS, result
    assert result.duplicates == 0 and result.missing == 0, result
    # the database agrees: every job finished, after one attempt (Huey: nothing left in its queue)
    assert result.store_ok, result.store_detail
    assert result.exactly_once
    assert result.enqueue_seconds > 0 and result.drain_seconds > 0
    assert result.settings.get("journal_mode") == "WAL"
    # temporary databases are cleaned up
    assert list(tmp_path.iterdir()) == []


def test_octoqueue_keeps_its_durability_default(tmp_path: Path) -> None:
    """The headline row runs octoqueue's normal setting, the FULL row really fsyncs like the peers."""
    assert SYSTEMS["octoqueue"](20, 1, base_dir=str(tmp_path)).settings["synchronous"] == "NORMAL"
    assert SYSTEMS["octoqueue-full"](20, 1, base_dir=str(tmp_path)).settings["synchronous"] == "FULL"
    for peer in PEERS:
        assert SYSTEMS[peer](20, 1, base_dir=str(tmp_path)).settings["synchronous"] == "FULL"


@pytest.mark.timeout(120)
def test_cli_prints_the_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = cli.main(
        [
            "--suite",
            "sqlite",
            "--jobs",
            "50",
            "--workers",
            "2",
            "--repeat",
            "1",
            "--only",
            "octoqueue,octoqueue-full,gigq,huey",
            "--json",
            str(out),
            "--dir",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "enqueue jobs/s" in printed and "drain jobs/s" in printed
    assert "octoqueue (NORMAL) vs the faster peer" in printed and "octoqueue-full (FULL) vs the faster peer" in printed
    assert "CPU µs per job" in printed
    payload = json.loads(out.read_text())
    assert set(payload["summary"]) == {"octoqueue", "octoqueue-full", "gigq", "huey"}
    cpu = payload["cpu_us_per_job"]
    assert set(cpu) == {"NORMAL", "FULL"} and all(v > 0 for row in cpu.values() for v in row.values())
    for name, entry in payload["summary"].items():
        assert entry["exactly_once"], name
        assert entry["enqueue_rate"] > 0 and entry["drain_rate"] > 0
    assert payload["summary"]["octoqueue"]["drain_peer"] in PEERS
    assert len(payload["rounds"]["huey"]) == 1


def test_cli_rejects_unknown_systems() -> None:
    with pytest.raises(SystemExit):
        cli.parse_args(["--only", "octoqueue,celery"])
