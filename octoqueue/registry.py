"""Live workers: each worker keeps a record (host, jobs in hand, last seen) under the ``workers`` setting of its store,
so ``octoqueue info`` shows idle workers too.

A worker rewrites its record every :data:`REGISTER_EVERY` seconds — one ``update_setting`` call, which on a GitHub
store is a read and a write of the settings issue — and removes it when it stops cleanly. A record not rewritten for
:data:`LIVE_FOR` seconds is a worker gone without a word (killed, host lost): readers do not show it, and the next
writer drops it, so the setting holds only live workers. Times are the store's clock (:meth:`Store.now`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from octoqueue.stores.base import Store

#: The setting the records live under.
WORKERS_SETTING = "workers"
#: Seconds between a worker's rewrites of its record.
REGISTER_EVERY = 30.0
#: Seconds a record counts as live after its last rewrite (four missed rewrites).
LIVE_FOR = 120.0


@dataclass(frozen=True)
class WorkerRecord:
    """What a worker last wrote about itself."""

    name: str
    host: str
    job_ids: tuple[int, ...]
    seen: datetime


def register(store: Store, name: str, host: str, job_ids: Collection[int]) -> None:
    """Write (or rewrite) this worker's record, stamped with the store's clock, dropping records no longer live."""
    now = store.now()
    record = {"host": host, "jobs": sorted(job_ids), "seen": now.isoformat()}

    def update(current: Any) -> dict[str, Any]:
        kept = {other: rec for other, rec in _records(current).items() if _is_live(rec, now)}
        return {**kept, name: record}

    store.update_setting(WORKERS_SETTING, update)


def unregister(store: Store, name: str) -> None:
    """Remove this worker's record (a clean stop); the setting goes when no record is left."""

    def update(current: Any) -> dict[str, Any] | None:
        kept = {other: rec for other, rec in _records(current).items() if other != name}
        return kept or None

    store.update_setting(WORKERS_SETTING, update)


def live_workers(value: Any, now: datetime) -> list[WorkerRecord]:
    """The records in a ``workers`` setting value rewritten within :data:`LIVE_FOR` seconds of ``now``, by name.
    Records that are not what :func:`register` writes are left out."""
    live = []
    for name, rec in _records(value).items():
        if not _is_live(rec, now):
            continue
        jobs = rec.get("jobs")
        if not isinstance(rec.get("host"), str) or not isinstance(jobs, list):
            continue
        live.append(WorkerRecord(name, rec["host"], tuple(j for j in jobs if isinstance(j, int)), _seen(rec)))
    return sorted(live, key=lambda r: r.name)


def _records(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        return {}
    return {name: rec for name, rec in value.items() if isinstance(rec, dict)}


def _seen(rec: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(rec["seen"])


def _is_live(rec: dict[str, Any], now: datetime) -> bool:
    try:
        seen = _seen(rec)
    except (KeyError, TypeError, ValueError):
        return False
    return now - seen <= timedelta(seconds=LIVE_FOR)


__all__ = ["LIVE_FOR", "REGISTER_EVERY", "WORKERS_SETTING", "WorkerRecord", "live_workers", "register", "unregister"]
