"""Schedules on GitHub: kept in the settings issue, where a maintainer reads them and can disable one by hand."""

from __future__ import annotations

import json
import re

from octoqueue import Queue
from octoqueue.schedules import SETTING_KEY
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import MakeStore


def test_a_maintainer_disables_a_schedule_in_the_settings_issue(fake: FakeGitHub, make_store: MakeStore) -> None:
    queue = Queue(make_store())
    queue.create_schedule("nightly", {"report": True}, "0 3 * * *", labels=["reports"])
    number = queue.store._settings.known_number()  # type: ignore[attr-defined]
    assert number is not None
    issue = fake.get_issue(number)
    block = re.search(r"```json\n(.*?)\n```", issue["body"], re.S)
    assert block is not None
    values = json.loads(block.group(1))
    assert values["schedules"]["nightly"]["cron"] == "0 3 * * *"  # readable on GitHub as it is
    values["schedules"]["nightly"]["enabled"] = False
    edited = issue["body"].replace(block.group(1), json.dumps(values, indent=2))
    fake.edit_issue(number, body=edited, actor="maintainer")

    fresh = Queue(make_store())  # another process reads the settings as the maintainer left them
    assert fresh.get_schedule("nightly").enabled is False


def test_two_schedulers_on_two_stores_make_one_job_per_tick(fake: FakeGitHub, make_store: MakeStore) -> None:
    first, second = Queue(make_store()), Queue(make_store())
    schedule = first.create_schedule("tick", None, "* * * * *")
    before = second.store.get_setting(SETTING_KEY)  # what the second read before the first recorded its tick
    tick_time = schedule.next_run(schedule.created_at)
    (made,) = first.schedules.run_due(tick_time)
    second.store.set_setting(SETTING_KEY, before)
    (again,) = second.schedules.run_due(tick_time)
    assert again.id == made.id
    assert [job.id for job in first.store.iter_jobs()] == [made.id]
