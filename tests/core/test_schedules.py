"""Cron schedules: each tick fires once however many schedulers run, missed windows fire once, time zones hold."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from octoqueue import Queue
from octoqueue.errors import InvalidJobData, InvalidLabel
from octoqueue.schedules import SETTING_KEY, ScheduleNotFound, Scheduler
from octoqueue.states import JobState
from octoqueue.stores.memory import MemoryStore
from octoqueue.stores.sqlite import SQLiteStore

START = datetime(2026, 1, 5, 10, 2, tzinfo=UTC)


class ClockedMemory(MemoryStore):
    """A memory store whose clock the test moves."""

    def __init__(self) -> None:
        super().__init__()
        self.moment = START

    def now(self) -> datetime:
        return self.moment


class ClockedSQLite(SQLiteStore):
    moment = START

    def now(self) -> datetime:
        return type(self).moment


@pytest.fixture
def store() -> ClockedMemory:
    return ClockedMemory()


@pytest.fixture
def queue(store: ClockedMemory) -> Queue:
    return Queue(store)


def at(store: Any, **delta: float) -> None:
    store.moment = START + timedelta(**delta)


def test_a_tick_fires_once_at_its_time_with_the_schedule_s_job(store: ClockedMemory, queue: Queue) -> None:
    schedule = queue.create_schedule(
        "report", {"kind": "daily"}, "*/5 * * * *", type="report", labels=["reports"], priority="high"
    )
    assert schedule.next_run(store.now()) == START.replace(minute=5)
    at(store, minutes=2, seconds=59)
    assert queue.run_schedules() == []
    at(store, minutes=3)
    (job,) = queue.run_schedules()
    assert (job.data, job.type, job.labels, job.priority) == ({"kind": "daily"}, "report", ("reports",), 1)
    assert job.idempotency_key == "cron:report:2026-01-05T10:05:00+00:00"
    assert job.title == "report 2026-01-05T10:05:00+00:00"
    assert queue.run_schedules() == []  # the tick is recorded: a second pass fires nothing
    after = queue.get_schedule("report")
    assert (after.last_run, after.last_job_id) == (START.replace(minute=5), job.id)
    at(store, minutes=8)
    assert [j.title for j in queue.run_schedules()] == ["report 2026-01-05T10:10:00+00:00"]


def test_a_scheduler_that_missed_the_record_still_makes_no_second_job(store: ClockedMemory, queue: Queue) -> None:
    queue.create_schedule("tick", None, "* * * * *")
    at(store, minutes=1)
    before = store.get_setting(SETTING_KEY)  # what a second scheduler read before the first recorded the tick
    (first,) = queue.run_schedules()
    store.set_setting(SETTING_KEY, before)
    (again,) = queue.run_schedules()
    assert again.id == first.id
    assert store.count()[JobState.PENDING] == 1


def test_many_schedulers_at_once_make_one_job_per_tick(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    ClockedSQLite.moment = START
    Queue(ClockedSQLite(path)).create_schedule("tick", None, "* * * * *", catchup=5)
    ClockedSQLite.moment = START + timedelta(minutes=3)  # ticks 10:03, 10:04, 10:05 are due
    queues = [Queue(ClockedSQLite(path)) for _ in range(8)]
    gate = threading.Barrier(len(queues))
    made: list[list[int]] = [[] for _ in queues]

    def run(i: int) -> None:
        gate.wait()
        made[i] = [job.id for job in queues[i].run_schedules()]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(queues))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jobs = list(queues[0].store.iter_jobs())
    assert sorted(job.idempotency_key or "" for job in jobs) == [
        "cron:tick:2026-01-05T10:03:00+00:00",
        "cron:tick:2026-01-05T10:04:00+00:00",
        "cron:tick:2026-01-05T10:05:00+00:00",
    ]
    assert all(ids == [] or sorted(ids) == sorted(job.id for job in jobs) for ids in made)
    assert queues[0].get_schedule("tick").last_run == START.replace(minute=5)


def test_missed_windows_fire_once_or_as_many_as_catchup_asks(store: ClockedMemory, queue: Queue) -> None:
    queue.create_schedule("once", None, "*/5 * * * *")
    queue.create_schedule("some", None, "*/5 * * * *", catchup=2)
    at(store, hours=2)  # 24 windows passed with no scheduler running
    fired = queue.run_schedules()
    assert [job.title for job in fired] == [
        "once 2026-01-05T12:00:00+00:00",
        "some 2026-01-05T11:50:00+00:00",
        "some 2026-01-05T11:55:00+00:00",
        "some 2026-01-05T12:00:00+00:00",
    ]
    assert queue.run_schedules() == []


def test_ticks_follow_the_schedule_s_time_zone_through_daylight_saving(store: ClockedMemory, queue: Queue) -> None:
    store.moment = datetime(2026, 3, 27, 12, tzinfo=UTC)
    queue.create_schedule("berlin", None, "0 9 * * *", timezone="Europe/Berlin")
    store.moment = datetime(2026, 3, 28, 7, 59, tzinfo=UTC)  # 08:59 in winter time: not yet
    assert queue.run_schedules() == []
    store.moment = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    assert [j.idempotency_key for j in queue.run_schedules()] == ["cron:berlin:2026-03-28T08:00:00+00:00"]
    store.moment = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # summer time began that night: 09:00 is 07:00 UTC
    assert [j.idempotency_key for j in queue.run_schedules()] == ["cron:berlin:2026-03-29T07:00:00+00:00"]


def test_a_daily_tick_fires_once_when_daylight_saving_repeats_its_hour(store: ClockedMemory, queue: Queue) -> None:
    """B6: 02:30 happens twice in Berlin on 2027-10-31 (00:30Z and 01:30Z); cron fires it once, the first time."""
    store.moment = datetime(2027, 10, 30, 12, tzinfo=UTC)
    daily = queue.create_schedule("berlin", None, "30 2 * * *", timezone="Europe/Berlin", catchup=5)
    # An expression that fires every hour fires in the repeated hour too: it is another hour.
    hourly = queue.create_schedule("hourly", None, "30 * * * *", timezone="Europe/Berlin", catchup=5)
    assert len(hourly.due(datetime(2027, 10, 31, 2, tzinfo=UTC))) == 6
    assert daily.due(datetime(2027, 10, 31, 2, tzinfo=UTC)) == [datetime(2027, 10, 31, 0, 30, tzinfo=UTC)]
    assert daily.next_run(datetime(2027, 10, 31, 0, 40, tzinfo=UTC)) == datetime(2027, 11, 1, 1, 30, tzinfo=UTC)
    store.moment = datetime(2027, 10, 31, 2, tzinfo=UTC)
    queue.disable_schedule("hourly")
    assert [j.idempotency_key for j in queue.run_schedules()] == ["cron:berlin:2027-10-31T00:30:00+00:00"]


def test_a_stored_schedule_that_can_never_fire_is_skipped_and_the_others_keep_firing(
    store: ClockedMemory, queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    """B2: an impossible date stored before it was refused (or by hand) neither stops the scheduler nor fails
    reads; a year field that has run out ends the timetable."""
    queue.create_schedule("good", None, "* * * * *")
    queue.create_schedule("ends", None, "0 11 5 1 * 0 2026")  # 11:00 today, then never again
    raw = store.get_setting(SETTING_KEY)
    raw["feb31"] = {"cron": "0 0 31 2 *", "created_at": START.isoformat(), "updated_at": START.isoformat()}
    store.set_setting(SETTING_KEY, raw)
    assert [s.id for s in queue.list_schedules()] == ["ends", "good"]
    assert "schedule 'feb31' is not valid and is skipped" in caplog.text
    at(store, hours=1)
    scheduler = Scheduler(queue.schedules)
    assert sorted(j.title.split()[0] for j in scheduler.run_once()) == ["ends", "good"]
    assert queue.get_schedule("ends").next_run(store.now()) is None
    at(store, hours=2)
    assert [j.title.split()[0] for j in scheduler.run_once()] == ["good"]
    assert queue.schedules.seconds_until_due(store.now(), longest=600) == 60.0  # 'ends' is no longer waited for


def test_disabled_schedules_do_not_fire_and_enabling_skips_what_was_missed(store: ClockedMemory, queue: Queue) -> None:
    queue.create_schedule("tick", None, "*/5 * * * *")
    queue.disable_schedule("tick")
    at(store, minutes=30)
    assert queue.run_schedules() == []
    assert queue.enable_schedule("tick").enabled
    assert queue.run_schedules() == []  # the windows missed while disabled stay missed
    at(store, minutes=33)
    assert [j.title for j in queue.run_schedules()] == ["tick 2026-01-05T10:35:00+00:00"]


def test_a_hand_edited_settings_document_is_obeyed_and_a_broken_entry_is_skipped(
    store: ClockedMemory, queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    queue.create_schedule("a", None, "* * * * *")
    queue.create_schedule("b", None, "* * * * *")
    raw = store.get_setting(SETTING_KEY)
    raw["a"]["enabled"] = False  # what a maintainer does on GitHub, in the settings issue
    raw["broken"] = {"cron": "every tuesday", "created_at": START.isoformat(), "updated_at": START.isoformat()}
    store.set_setting(SETTING_KEY, raw)
    at(store, minutes=1)
    assert [j.title for j in queue.run_schedules()] == ["b 2026-01-05T10:03:00+00:00"]
    assert "schedule 'broken' is not valid and is skipped" in caplog.text
    assert [s.id for s in queue.list_schedules()] == ["a", "b"]


@pytest.mark.parametrize(
    ("args", "options", "error", "message"),
    [
        (("x", None, "every tuesday"), {}, InvalidJobData, "is not a cron expression"),
        (("x", None, "61 * * * *"), {}, InvalidJobData, "is not a cron expression"),
        (("x", None, "@daily"), {"timezone": "Mars/Olympus"}, InvalidJobData, "unknown time zone"),
        (("../x", None, "@daily"), {}, InvalidJobData, "a schedule id is"),
        (("x", None, "@daily"), {"labels": ["Pending"]}, InvalidLabel, "reserved"),
        (("x", None, "@daily"), {"catchup": 1000}, InvalidJobData, "catchup"),
        (("x", {1, 2}, "@daily"), {}, InvalidJobData, "JSON"),
        (("x", None, "0 0 31 2 *"), {}, InvalidJobData, "never fires"),
        (("x", None, "0 0 30 2 *"), {}, InvalidJobData, "never fires"),
        (("x", None, "0 0 31 4,6,9,11 *"), {}, InvalidJobData, "never fires"),
        (("x", None, "0 0 1 1 * 0 1970"), {}, InvalidJobData, "never fires"),
    ],
)
def test_bad_definitions_get_a_clear_error_and_store_nothing(
    queue: Queue, args: tuple[Any, ...], options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        queue.create_schedule(*args, **options)
    assert queue.list_schedules() == []


def test_trigger_redefine_and_delete(store: ClockedMemory, queue: Queue) -> None:
    queue.create_schedule("tick", {"v": 1}, "*/5 * * * *")
    at(store, minutes=3)
    queue.run_schedules()
    job = queue.trigger_schedule("tick")
    assert (job.data, job.idempotency_key) == ({"v": 1}, None)
    redefined = queue.create_schedule("tick", {"v": 2}, "*/10 * * * *")
    assert (redefined.created_at, redefined.last_run) == (START, START.replace(minute=5))
    queue.delete_schedule("tick")
    for call in (queue.get_schedule, queue.delete_schedule, queue.trigger_schedule, queue.disable_schedule):
        with pytest.raises(ScheduleNotFound, match="schedule 'tick' does not exist"):
            call("tick")


def test_the_scheduler_thread_fires_ticks_on_the_real_clock(tmp_path: Path) -> None:
    queue = Queue(SQLiteStore(tmp_path / "jobs.db"))
    queue.create_schedule("every-second", None, "* * * * * *")  # croniter's sixth field: seconds
    scheduler = Scheduler(queue.schedules, longest_sleep=0.5).start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while queue.counts().get(JobState.PENDING, 0) < 2 and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    finally:
        scheduler.stop()
    keys = [job.idempotency_key for job in queue.store.iter_jobs()]
    assert len(keys) >= 2 and len(set(keys)) == len(keys)


def test_two_concurrent_schedulers_over_100_ticks_make_exactly_100_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    ClockedSQLite.moment = START
    Queue(ClockedSQLite(path)).create_schedule("tick", None, "* * * * *")
    schedulers = [Queue(ClockedSQLite(path)) for _ in range(2)]
    for minute in range(1, 101):
        ClockedSQLite.moment = START + timedelta(minutes=minute)
        gate = threading.Barrier(2)

        def run(queue: Queue, gate: threading.Barrier = gate) -> None:
            gate.wait()
            queue.run_schedules()

        threads = [threading.Thread(target=run, args=(queue,)) for queue in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    keys = [job.idempotency_key for job in schedulers[0].store.iter_jobs()]
    assert len(keys) == 100 == len(set(keys))
    assert schedulers[0].get_schedule("tick").last_run == START.replace(second=0) + timedelta(minutes=100)


def test_an_unexpected_error_in_a_pass_is_logged_and_the_scheduler_goes_on(
    queue: Queue, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B2: the scheduler thread caught only OctoqueueError; anything else ended it while /health stayed green."""
    scheduler = Scheduler(queue.schedules, longest_sleep=7.0)

    def broken(**_: Any) -> list[Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(scheduler.schedules, "run_due", broken)
    assert scheduler._pass() == ([], 7.0)
    assert "scheduler pass failed; trying again in 7.0 s" in caplog.text
