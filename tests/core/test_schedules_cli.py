"""`octoqueue schedule ...` and `work --scheduler` as a user runs them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .test_cli import oq


def test_define_list_show_trigger_and_delete(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    added = oq(
        "schedule",
        "add",
        "nightly",
        "0 3 * * *",
        "--data",
        '{"a": 1}',
        "--timezone",
        "Europe/Berlin",
        "--label",
        "reports",
        store=db,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("nightly ") and "Europe/Berlin" in added.stdout and "last never" in added.stdout
    listed = oq("schedule", "list", "--json", store=db)
    (entry,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (entry["id"], entry["data"], entry["labels"]) == ("nightly", {"a": 1}, ["reports"])
    shown = json.loads(oq("schedule", "show", "nightly", store=db).stdout)
    assert shown["next_run"].endswith(("T01:00:00+00:00", "T02:00:00+00:00"))  # 03:00 in Berlin
    job_id = int(oq("schedule", "trigger", "nightly", store=db).stdout)
    assert json.loads(oq("show", str(job_id), store=db).stdout)["data"] == {"a": 1}
    assert "disabled" in oq("schedule", "disable", "nightly", store=db).stdout
    assert oq("schedule", "delete", "nightly", store=db).returncode == 0
    gone = oq("schedule", "show", "nightly", store=db)
    assert (gone.returncode, gone.stderr.strip()) == (1, "Error: schedule 'nightly' does not exist")


def test_a_bad_cron_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = oq("schedule", "add", "x", "every day", store=tmp_path / "cli.db")
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "Error: schedule 'x': cron: 'every day' is not a cron expression (5 fields, e.g. '*/15 * * * *', or '@daily')"
    )


def test_work_once_with_the_scheduler_fires_then_runs_the_due_job(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    oq("schedule", "add", "tick", "* * * * * *", "--data", '{"text": "a b c"}', store=db)
    time.sleep(1.1)  # a seconds-cron tick passes
    worked = oq("work", "--once", "--scheduler", "--handler", "examples.handlers:word_count", store=db)
    assert worked.returncode == 0, worked.stderr
    assert "processed 1 in " in worked.stderr and "jobs/s): 1 completed" in worked.stderr


def test_a_cron_with_no_such_date_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    """B2: `schedule add` refused '0 0 30 2 *' only after saving it, and `schedule list` failed from then on."""
    db = tmp_path / "cli.db"
    refused = oq("schedule", "add", "feb30", "0 0 30 2 *", store=db)
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: schedule 'feb30': cron: '0 0 30 2 *' never fires: no date after ")
    listed = oq("schedule", "list", store=db)
    assert (listed.returncode, listed.stdout) == (0, "")
