"""The GitHub-store benchmark runs and its headline figures hold: octoqueue measured on the emulator, the original
Octoqueue computed from REFERENCE §1 (small backlogs only, to stay quick)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `bench` lives at the repository root, next to `octoqueue`

from bench import github as bench_github  # noqa: E402


@pytest.mark.timeout(60)
def test_github_bench_small_backlogs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "github.json"
    assert bench_github.main(["--backlogs", "1,10", "--json", str(out)]) == 0
    payload = json.loads(out.read_text(encoding="utf-8"))["github"]
    rows = {(r["backlog"], r["result"]): r for r in payload["rows"]}
    assert set(rows) == {(1, False), (10, False), (1, True), (10, True)}
    assert all(r["exactly_once"] for r in rows.values())
    one = rows[(1, False)]
    assert one["requests_per_job"] <= 5 and one["writes_per_job"] <= 4
    assert one["setup_requests"] > 0  # set-up is counted apart, not in the per-job figures
    assert one["original_requests_per_job"] == 9 and one["original_writes_per_job"] == 7
    # A result adds one comment, nothing more.
    assert rows[(1, True)]["writes"] == one["writes"] + 1
    assert "computed from REFERENCE" in capsys.readouterr().out


def test_original_formula() -> None:
    assert bench_github.original_requests(1) == 9
    assert bench_github.original_requests(30) == 30 * 9
    assert bench_github.original_requests(31) == 31 * 9 + 1  # the 31st pending job costs a second page
    assert bench_github.original_requests(300) == 300 + 30 * sum(range(1, 11)) + 7 * 300
    assert bench_github.original_writes(10) == 70
    limits = bench_github.jobs_per_minute(7)
    assert limits["per_minute_limit"] == pytest.approx(80 / 7)
    assert limits["sustained"] == pytest.approx(500 / 7 / 60)
