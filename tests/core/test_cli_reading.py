"""Reading commands as a user meets them: they never create a store, they say where they look, lists have a
header, every reading command has --json, and shell completion works through the lazily loaded commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_cli import oq


@pytest.mark.parametrize("args", [("list",), ("status", "1"), ("show", "1"), ("info",), ("clear",), ("cancel", "1")])
def test_a_missing_sqlite_file_is_named_not_created(args: tuple[str, ...], tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere" / "octoqueue.db"
    (tmp_path / "elsewhere").mkdir()
    result = oq(*args, store=missing)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"Error: no queue at {missing} (store sqlite:///{missing}): give --store or OCTOQUEUE_STORE"
    )
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_list_has_a_header_and_says_when_nothing_matches(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    oq("enqueue", '{"a": 1}', "--title", "first", store=db)
    shown = oq("list", store=db)
    header, line = shown.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "P", "CREATED", "(UTC)", "TITLE", "[LABELS]"]
    assert line.split()[:3] == ["1", "pending", "p2"] and line.index("first") == header.index("TITLE")
    nothing = oq("list", "--status", "failed", store=db)
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert nothing.stderr.strip() == f"no jobs match in sqlite:///{db}"


def test_list_newest_first_shows_the_newest_jobs_first(tmp_path: Path) -> None:
    db = tmp_path / "n.db"
    oq("enqueue", "-", store=db, input="".join(json.dumps({"n": n}) + "\n" for n in range(5)))
    oq("enqueue", "{}", "--label", "odd", store=db)
    newest = oq("list", "--newest-first", "--limit", "3", store=db)
    assert newest.returncode == 0, newest.stderr
    assert [line.split()[0] for line in newest.stdout.splitlines()[1:]] == ["6", "5", "4"]
    assert "(more" not in newest.stdout
    as_json = oq("list", "--newest-first", "--json", "--label", "odd", store=db).stdout.splitlines()
    assert [json.loads(line)["id"] for line in as_json] == [6]
    assert [line.split()[0] for line in oq("list", "--limit", "2", store=db).stdout.splitlines()[1:3]] == ["1", "2"]
    mixed = oq("list", "--newest-first", "--cursor", "x", store=db)
    assert mixed.returncode == 1
    assert mixed.stderr.strip().startswith("Error: --cursor continues an oldest-first listing; --newest-first takes")
    assert "--newest-first" in oq("list", "--help", store=db).stdout


def test_status_and_clear_speak_json_and_clear_says_what_it_did(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    job_id = oq("enqueue", "{}", store=db).stdout.strip()
    assert json.loads(oq("status", job_id, "--json", store=db).stdout) == {"id": int(job_id), "status": "pending"}
    oq("cancel", job_id, store=db)
    said = oq("clear", "--older-than", "-1", "--status", "cancelled", store=db).stdout.strip()
    assert said == "cleared 1 cancelled job(s) last changed over -1 s ago"
    assert json.loads(oq("clear", "--older-than", "-1", "--json", store=db).stdout) == {
        "cleared": 0,
        "states": ["completed", "failed", "cancelled"],
        "older_than": -1.0,
    }


def test_shell_completion_offers_the_commands(tmp_path: Path) -> None:
    script = oq(env={"_OCTOQUEUE_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "_octoqueue_completion" in script.stdout
    offered = oq(env={"_OCTOQUEUE_COMPLETE": "bash_complete", "COMP_WORDS": "octoqueue in", "COMP_CWORD": "1"})
    assert offered.stdout.split() == ["plain,info"]
    options = oq(env={"_OCTOQUEUE_COMPLETE": "bash_complete", "COMP_WORDS": "octoqueue info --wa", "COMP_CWORD": "2"})
    assert options.stdout.split() == ["plain,--watch"]
