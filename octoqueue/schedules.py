"""Cron schedules: jobs enqueued on a timetable, each tick exactly once however many schedulers run.

Schedules are built above the store contract, so they work on every store. The definitions live in one setting,
``schedules`` (an object of schedule id -> definition): on GitHub that is the settings issue, which a maintainer
can read and edit by hand — setting ``"enabled": false`` there disables a schedule. A tick becomes a job through
an ordinary create with the idempotency key ``cron:<id>:<tick time in UTC>``, which every store makes atomic: two
schedulers that see the same tick make one job. After enqueueing, a scheduler records the tick as the schedule's
``last_run`` (moving it forward only), so a tick is never looked at again.

Missed ticks (no scheduler ran, e.g. during an outage) fire once, not once per missed window: only the newest due
tick fires, plus the ``catchup`` newest missed ticks before it when a schedule asks for them. Ticks are computed on
the store's clock, in the schedule's time zone (so ``0 9 * * *`` in ``Europe/Berlin`` follows daylight saving).
Cron expressions are parsed by croniter (5 fields, an optional 6th for seconds, and ``@daily``-style names).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from octoqueue.errors import InvalidJobData, OctoqueueError, ScheduleNotFound
from octoqueue.states import Priority

if TYPE_CHECKING:
    from octoqueue.job import Job
    from octoqueue.queue import Queue

log = logging.getLogger(__name__)

#: The setting that holds every schedule of a store.
SETTING_KEY = "schedules"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Most ticks a schedule may fire in one pass (the newest due tick and up to this many missed ones before it).
MAX_CATCHUP = 100


class Schedule(BaseModel):
    """A recurring job: what to enqueue, on which timetable, and when it last fired."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    cron: str
    data: Any = None
    title: str | None = None
    type: str | None = None
    labels: tuple[str, ...] = ()
    priority: int = Field(default=Priority.NORMAL, ge=0, le=4)
    max_attempts: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    timezone: str = "UTC"
    enabled: bool = True
    #: How many missed ticks before the newest due one also fire after an outage (0: only the newest).
    catchup: int = Field(default=0, ge=0, le=MAX_CATCHUP)
    created_at: datetime
    updated_at: datetime
    #: The newest tick that fired, and the job it made.
    last_run: datetime | None = None
    last_job_id: int | None = None

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError("a schedule id is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        value = " ".join(value.split())
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (5 fields, e.g. '*/15 * * * *', or '@daily')")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')") from None
        return value

    @field_validator("created_at", "updated_at", "last_run")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a time zone")
        return value

    @model_validator(mode="after")
    def _fires(self) -> Schedule:
        # croniter accepts dates no calendar has ('0 0 31 2 *') and years gone by: such a schedule never fires.
        if self.next_run(self.created_at) is None:
            raise ValueError(f"cron: {self.cron!r} never fires: no date after {self.created_at:%Y-%m-%d} matches it")
        return self

    # -- the timetable ------------------------------------------------------------------------------------------
    def _ticks(self, start: datetime, *, backwards: bool) -> Iterator[datetime]:
        """The ticks after ``start`` (before it, ``backwards``; both strict), in UTC, until the timetable ends.

        A wall time that daylight saving's end repeats fires once, at its first occurrence, as cron does; except
        for an expression that fires every hour anyway (hour field ``*``), whose repeated hour is a new hour."""
        zone = ZoneInfo(self.timezone)
        every_hour = croniter(self.cron).expanded[1] == ["*"]
        walk = croniter(self.cron, start.astimezone(zone))
        while True:
            try:
                tick = walk.get_prev(datetime) if backwards else walk.get_next(datetime)
            except CroniterBadDateError:  # no further date matches (a year field that has run out)
                return
            if every_hour or not _repeated_wall_time(tick, zone):
                yield _utc(tick)

    def due(self, now: datetime) -> list[datetime]:
        """The ticks to fire at ``now``, oldest first: due ticks after ``last_run`` (else after creation), at most
        ``1 + catchup`` of them, the newest ones."""
        after = self.last_run or self.created_at
        ticks: list[datetime] = []
        # Walk back from just after now: croniter's get_prev is strict, and a tick equal to now is due.
        for tick in self._ticks(now + timedelta(microseconds=1), backwards=True):
            if tick <= after or len(ticks) > self.catchup:
                break
            ticks.append(tick)
        return ticks[::-1]

    def next_run(self, now: datetime) -> datetime | None:
        """The first tick after ``now``; None when the timetable has ended (its year field has run out)."""
        return next(self._ticks(now, backwards=False), None)

    def idempotency_key(self, tick: datetime) -> str:
        return f"cron:{self.id}:{_utc(tick).isoformat()}"


class Schedules:
    """The schedules of one queue: define, change, trigger and fire them.

    ``Queue`` exposes these as ``create_schedule``, ``list_schedules``, ... (oq's names).
    """

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.store = queue.store

    # -- reading ------------------------------------------------------------------------------------------------
    def _all(self, raw: Any = None, *, read: bool = True) -> dict[str, Schedule]:
        if read:
            raw = self.store.get_setting(SETTING_KEY)
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise InvalidJobData(f"the {SETTING_KEY!r} setting is not an object of schedules")
        found: dict[str, Schedule] = {}
        for key, value in raw.items():
            try:
                found[key] = Schedule.model_validate({**value, "id": key} if isinstance(value, dict) else value)
            except ValidationError as exc:  # a hand edit gone wrong: skip it, loudly, and keep the others running
                log.error("schedule %r is not valid and is skipped: %s", key, _first_error(exc))
        return found

    def all(self) -> list[Schedule]:
        """Every (valid) schedule, by id."""
        return self.parse(self.store.get_setting(SETTING_KEY))

    def parse(self, raw: Any) -> list[Schedule]:
        """The valid schedules of a ``schedules`` setting's value (as read from the store), by id."""
        return [schedule for _, schedule in sorted(self._all(raw, read=False).items())]

    def get(self, schedule_id: str) -> Schedule:
        return find(self.all(), schedule_id)

    # -- writing ------------------------------------------------------------------------------------------------
    def _update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        def apply(current: Any) -> Any:
            raw = dict(current) if isinstance(current, dict) else {}
            return change(raw) or None

        self.store.update_setting(SETTING_KEY, apply)

    def create(
        self,
        schedule_id: str,
        data: Any,
        cron: str,
        *,
        title: str | None = None,
        type: str | None = None,
        labels: Iterable[str] = (),
        priority: int | str = Priority.NORMAL,
        max_attempts: int | None = None,
        timeout: float | None = None,
        timezone: str = "UTC",
        catchup: int = 0,
        enabled: bool = True,
    ) -> Schedule:
        """Define (or redefine) a schedule; it first fires at the first tick after now. Redefining keeps its
        ``last_run``, so no tick fires twice."""
        labels = tuple(labels)
        for label in labels:
            self.store.labels.check_extra(label)
        from octoqueue.queue import check_data_size

        check_data_size(data)
        sealer = getattr(self.store, "sealer", None)  # an encrypted queue (octoqueue.sealing) seals it in settings
        if sealer is not None:
            data = sealer.seal(data)
        now = self.store.now()
        try:
            schedule = Schedule(
                id=schedule_id,
                cron=cron,
                data=data,
                title=title,
                type=type,
                labels=labels,
                priority=Priority.parse(priority),
                max_attempts=max_attempts,
                timeout=timeout,
                timezone=timezone,
                catchup=catchup,
                enabled=enabled,
                created_at=now,
                updated_at=now,
            )
        except ValidationError as exc:
            raise InvalidJobData(f"schedule {schedule_id!r}: {_first_error(exc)}") from None
        made: list[Schedule] = []

        def change(raw: dict[str, Any]) -> dict[str, Any]:
            made.clear()
            old = self._all(raw, read=False).get(schedule_id)
            new = schedule
            if old is not None:
                new = schedule.model_copy(
                    update={"created_at": old.created_at, "last_run": old.last_run, "last_job_id": old.last_job_id}
                )
            made.append(new)
            raw[schedule_id] = _stored(new)
            return raw

        self._update(change)
        return made[0]

    def _edit(self, schedule_id: str, edit: Callable[[Schedule, datetime], dict[str, Any]]) -> Schedule:
        made: list[Schedule] = []

        def change(raw: dict[str, Any]) -> dict[str, Any]:
            made.clear()
            old = self._all(raw, read=False).get(schedule_id)
            if old is None:
                raise ScheduleNotFound(schedule_id)
            now = self.store.now()
            new = old.model_copy(update={**edit(old, now), "updated_at": now})
            made.append(new)
            raw[schedule_id] = _stored(new)
            return raw

        self._update(change)
        return made[0]

    def enable(self, schedule_id: str) -> Schedule:
        """Let the schedule fire again, from the next tick on (ticks missed while disabled do not fire)."""

        def edit(old: Schedule, now: datetime) -> dict[str, Any]:
            if old.enabled:
                return {}
            return {"enabled": True, "last_run": now if old.last_run is None or now > old.last_run else old.last_run}

        return self._edit(schedule_id, edit)

    def disable(self, schedule_id: str) -> Schedule:
        return self._edit(schedule_id, lambda old, now: {"enabled": False})

    def delete(self, schedule_id: str) -> None:
        def change(raw: dict[str, Any]) -> dict[str, Any]:
            if raw.pop(schedule_id, None) is None:
                raise ScheduleNotFound(schedule_id)
            return raw

        self._update(change)

    # -- firing -------------------------------------------------------------------------------------------------
    def _enqueue(self, schedule: Schedule, tick: datetime | None, key: str | None) -> Job:
        when = (tick or self.store.now()).isoformat(timespec="seconds")
        return self.queue.enqueue_job(
            schedule.data,
            schedule.title or f"{schedule.id} {when}",
            schedule.labels,
            priority=schedule.priority,
            max_attempts=schedule.max_attempts,
            type=schedule.type,
            idempotency_key=key,
            timeout=schedule.timeout,
        )

    def trigger(self, schedule_id: str) -> Job:
        """Enqueue the schedule's job now, outside its timetable (enabled or not); the timetable is unchanged."""
        return self._enqueue(self.get(schedule_id), None, None)

    def run_due(self, now: datetime | None = None, schedules: list[Schedule] | None = None) -> list[Job]:
        """Fire every due tick of every enabled schedule (``schedules``: as :meth:`all` just read them); return the
        jobs (a tick another scheduler fired first returns that same job). Safe from any number of processes."""
        now = now or self.store.now()
        fired: list[Job] = []
        for schedule in self.all() if schedules is None else schedules:
            if not schedule.enabled:
                continue
            ticks = schedule.due(now)
            if not ticks:
                continue
            jobs = []
            for tick in ticks:
                try:
                    jobs.append(self._enqueue(schedule, tick, schedule.idempotency_key(tick)))
                except (InvalidJobData, ValueError) as exc:  # e.g. a label made reserved by a hand edit
                    log.error("schedule %r cannot enqueue its %s tick: %s", schedule.id, tick.isoformat(), exc)
            fired.extend(jobs)
            self._record(schedule.id, ticks[-1], jobs[-1].id if jobs else None)
        return fired

    def _record(self, schedule_id: str, tick: datetime, job_id: int | None) -> None:
        def change(raw: dict[str, Any]) -> dict[str, Any]:
            old = self._all(raw, read=False).get(schedule_id)
            if old is None or (old.last_run is not None and old.last_run >= tick):
                return raw  # deleted meanwhile, or another scheduler recorded this tick (or a later one)
            raw[schedule_id] = _stored(old.model_copy(update={"last_run": tick, "last_job_id": job_id}))
            return raw

        self._update(change)

    def seconds_until_due(
        self, now: datetime | None = None, *, longest: float = 30.0, schedules: list[Schedule] | None = None
    ) -> float:
        """How long a scheduler may sleep before a tick is due (at most ``longest``, so hand edits are seen)."""
        now = now or self.store.now()
        found = self.all() if schedules is None else schedules
        upcoming = [tick for tick in (s.next_run(now) for s in found if s.enabled) if tick is not None]
        if not upcoming:
            return longest
        return max(0.0, min(longest, (min(upcoming) - now).total_seconds()))


class Scheduler:
    """Runs :meth:`Schedules.run_due` in a loop (a thread of ``octoqueue work``/``serve``, or ``schedule run``)."""

    def __init__(self, schedules: Schedules, *, longest_sleep: float = 30.0) -> None:
        self.schedules = schedules
        self.longest_sleep = longest_sleep
        self.stopping = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[Job]:
        return self._pass()[0]

    def _pass(self) -> tuple[list[Job], float]:
        """Fire what is due; return the jobs and how long to sleep. The schedules are read once a pass."""
        try:
            found = self.schedules.all()
            jobs = self.schedules.run_due(schedules=found)
            wait = self.schedules.seconds_until_due(longest=self.longest_sleep, schedules=found)
        except OctoqueueError as exc:  # the store is down or rate limited: try again on the next pass
            log.warning("scheduler pass failed: %s", exc)
            return [], self.longest_sleep
        except Exception:  # a bug must not end the thread silently while /health stays green
            log.exception("scheduler pass failed; trying again in %s s", self.longest_sleep)
            return [], self.longest_sleep
        for job in jobs:
            log.info("schedule fired: job %s (%s)", job.id, job.title)
        return jobs, wait

    def run(self) -> None:
        """Fire due ticks until :meth:`stop`."""
        while not self.stopping.is_set():
            wait = self._pass()[1]
            # Wake a little after the tick, so the store's clock (not ours) has surely passed it.
            self._wakeup.wait(wait + 0.05)
            self._wakeup.clear()

    def wake(self) -> None:
        """Look at the schedules again now (one was defined or enabled in this process)."""
        self._wakeup.set()

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self.run, name="octoqueue-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self.stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)


def find(schedules: Iterable[Schedule], schedule_id: str) -> Schedule:
    """The schedule ``schedule_id`` among ``schedules``; :class:`ScheduleNotFound` when it is not there."""
    for schedule in schedules:
        if schedule.id == schedule_id:
            return schedule
    raise ScheduleNotFound(schedule_id)


def _repeated_wall_time(tick: datetime, zone: ZoneInfo) -> bool:
    """Whether ``tick`` is the second occurrence of its wall time (the hour daylight saving's end repeats)."""
    first = tick.replace(tzinfo=None).replace(tzinfo=zone, fold=0)
    return first.astimezone(UTC) != tick.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _stored(schedule: Schedule) -> dict[str, Any]:
    """A schedule as kept in the setting: its id is the key."""
    return schedule.model_dump(mode="json", exclude={"id"})


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
