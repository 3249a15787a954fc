"""``make bench``'s PostgreSQL suite runs every system (octoqueue, procrastinate, PGQueuer) and each runs every job
exactly once — here with 100 jobs, so that a broken harness or peer API shows before a long benchmark run."""

from __future__ import annotations

import pytest

from bench.postgres_peers import report

pytestmark = pytest.mark.timeout(240)


def test_every_system_runs_every_job_exactly_once(capsys: pytest.CaptureFixture[str]) -> None:
    payload, ok = report(100, 2, 20)
    assert payload["skipped"] == {}  # the peers are in the dev extra: none may be missing
    assert ok and set(payload["medians"]) == {"octoqueue-pg", "procrastinate", "pgqueuer"}
    assert all(result["exactly_once"] for result in payload["medians"].values())
    assert "octoqueue-pg" in capsys.readouterr().out
