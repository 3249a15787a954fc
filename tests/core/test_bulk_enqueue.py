"""``octoqueue enqueue -``: JSON lines on stdin, a job a line, all checked before any is made."""

from __future__ import annotations

import json
from pathlib import Path

from octoqueue.cli.bulk import PROGRESS_FROM
from octoqueue.queue import Queue

from .test_cli import oq


def _lines(values: list[object]) -> str:
    return "".join(json.dumps(value) + "\n" for value in values)


def test_each_line_is_a_job_with_the_options_given(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    result = oq(
        "enqueue", "-", "--label", "bulk", "--type", "t", store=db, input=_lines([{"n": n} for n in range(5)]) + "\n"
    )
    assert result.returncode == 0, result.stderr
    ids = [int(line) for line in result.stdout.split()]
    assert len(ids) == 5
    with Queue(f"sqlite:///{db}") as queue:
        jobs = [queue.get(i) for i in ids]
    assert [job.data for job in jobs] == [{"n": n} for n in range(5)]
    assert all(job.labels == ("bulk",) and job.type == "t" for job in jobs)


def test_one_document_over_several_lines_is_still_one_job(tmp_path: Path) -> None:
    result = oq("enqueue", "-", store=tmp_path / "d.db", input=json.dumps({"a": [1, 2]}, indent=2))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 1


def test_a_bad_line_is_named_and_nothing_is_enqueued(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    result = oq("enqueue", "-", store=db, input='{"ok": 1}\n{"ok": 2}\n{broken\n')
    assert result.returncode == 1
    assert "line 3 is not valid JSON" in result.stderr and "no job was enqueued" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    too_big = oq("enqueue", "-", store=db, input='{"ok": 1}\n' + json.dumps({"x": "y" * 70_000}) + "\n")
    assert too_big.returncode == 1 and "line 2:" in too_big.stderr
    assert oq("list", store=db).stdout.strip() == ""


def test_one_idempotency_key_for_many_lines_is_refused(tmp_path: Path) -> None:
    result = oq("enqueue", "-", "--idempotency-key", "k", store=tmp_path / "k.db", input='{"a": 1}\n{"a": 2}\n')
    assert result.returncode == 1 and "stdin holds 2" in result.stderr


def test_a_terminal_sees_a_progress_bar_for_large_inputs(tmp_path: Path) -> None:
    big = oq(
        "enqueue",
        "-",
        store=tmp_path / "p.db",
        input=_lines([{"n": n} for n in range(PROGRESS_FROM)]),
        env={"TTY_COMPATIBLE": "1", "COLUMNS": "100"},
    )
    assert big.returncode == 0, big.stderr
    assert "enqueueing" in big.stderr and f"{PROGRESS_FROM}/{PROGRESS_FROM}" in big.stderr
    small = oq("enqueue", "-", store=tmp_path / "s.db", input=_lines([{"n": 1}] * 3), env={"TTY_COMPATIBLE": "1"})
    assert small.returncode == 0 and "enqueueing" not in small.stderr
    piped = oq("enqueue", "-", store=tmp_path / "q.db", input=_lines([{"n": n} for n in range(PROGRESS_FROM)]))
    assert piped.stderr == "" and len(piped.stdout.split()) == PROGRESS_FROM
