"""Issue 13 on the command line: octoqueue pause/resume (and info showing it), history, work --limit."""

from __future__ import annotations

import json
from pathlib import Path

from octoqueue.queue import Queue

from .test_cli import oq


def test_pause_shows_in_info_and_resume_clears_it(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    oq("enqueue", '{"n": 1}', "--label", "images", store=db)
    paused = oq("pause", "--label", "images", store=db)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("label images is paused (since ")
    shown = oq("info", store=db).stdout
    assert "Paused (claims stopped, enqueues taken): label images (since " in shown
    worked = oq("work", "--once", "--command", "cat", "--log-level", "warning", store=db)
    assert worked.returncode == 0 and "processed 0" in worked.stderr  # the only job carries the paused label
    resumed = oq("resume", "--label", "images", "--json", store=db)
    assert json.loads(resumed.stdout) == {"queue": False, "since": None, "labels": {}}
    assert json.loads(oq("info", "--json", store=db).stdout)["paused"]["labels"] == {}


def test_history_and_work_with_a_type_limit(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with Queue(f"sqlite:///{db}") as queue:
        ids = [queue.enqueue({"n": n}, type="email" if n % 2 else "report") for n in range(4)]
    worked = oq("work", "--once", "--command", "cat", "--concurrency", "3", "--limit", "email=1", store=db)
    assert worked.returncode == 0 and "4 completed" in worked.stderr, worked.stderr
    shown = oq("history", str(ids[0]), store=db)
    assert shown.returncode == 0 and shown.stdout.startswith("attempt 1 · worker "), shown.stdout
    assert shown.stdout.rstrip().endswith("completed")
    (attempt,) = json.loads(oq("history", str(ids[0]), "--json", store=db).stdout)
    assert attempt["outcome"] == "completed" and attempt["duration"] is not None
    bad = oq("work", "--once", "--command", "cat", "--limit", "email", store=db)
    assert bad.returncode == 1 and "TYPE=N" in bad.stderr
    missing = oq("history", "999", store=db)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: ")
