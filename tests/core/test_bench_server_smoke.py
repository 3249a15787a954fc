"""The server benchmark (``python -m bench --suite server``, bench/server.py) end to end with tiny parameters: both
servers start as their own processes, answer under load, and hand every enqueued job to exactly one claimer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import server

pytestmark = pytest.mark.timeout(120)


def test_server_bench_runs_and_every_job_is_claimed_once(tmp_path: Path) -> None:
    options = server.Options(
        seconds=1.5, warmup=0.3, connections=4, samples=20, claimers=2, interval=0.005, repeat=1, base_dir=str(tmp_path)
    )
    results = server.run(options)
    summary = server.summarize(results)

    assert set(summary) == {"octoqueue", "ceiling"}
    for target, s in summary.items():
        (round_,) = results[target]
        latency = round_.latency
        assert latency.exactly_once, (target, latency)
        assert latency.samples == 20
        assert latency.submitted == 20 + 5  # the warm-up jobs are checked too
        assert latency.claimed == latency.submitted
        assert s["exactly_once"]
        assert s["requests_per_s"] > 0, target
        assert s["errors"] == 0, (target, round_.throughput.statuses)
        assert s["request_p50_ms"] > 0
        assert s["request_p99_ms"] >= s["request_p50_ms"]
        # From the submit's response the claim may even win the race (a negative sample); from its request, never.
        assert math.isfinite(s["claim_p50_ms"])
        assert s["claim_p99_ms"] > 0
        assert s["claim_from_send_p50_ms"] > 0
        assert s["submit_p50_ms"] > 0
        if s["cpu_us_per_request"] is not None:  # None where /proc is not readable
            assert s["cpu_us_per_request"] > 0
    assert summary["octoqueue"]["endpoint"] == "/create-job"
    assert summary["octoqueue"]["requests_per_s_vs_ceiling"] > 0
    text = server.table(summary)
    assert "octoqueue" in text and "ceiling" in text and "NO" not in text


def test_server_cpu_reports_each_layer(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import server_cpu

    assert server_cpu.main(["--requests", "64", "--concurrency", "4", "--profile", "5"]) == 0
    out = capsys.readouterr().out
    for row in (
        "ceiling POST /noop",
        "octoqueue POST /create-job",
        "the store's part left out",
        "the store's part alone",
    ):
        line = next(line for line in out.splitlines() if row in line)
        assert float(line.split()[-2]) > 0, line
    assert "tottime" in out
