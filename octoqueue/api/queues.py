"""Named queues for the Starq-compatible worker API, defined in the store's settings.

A queue ``q`` is the set of jobs carrying the extra label ``queue:q``; its definition (retries, claim timeout,
de-duplication) is one entry of the ``queues`` setting, so every server process on the store shares it.
Creating and deleting queues is a read-modify-write of that setting, serialised within a process; two processes
defining queues in the same instant may lose one definition (queues are defined rarely, by an admin).
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from octoqueue.api.jobschema import CachedSetting
from octoqueue.states import queue_label
from octoqueue.stores import Store

SETTING = "queues"

#: Queue names become labels (``queue:<name>``, at most 50 characters on GitHub).
QueueName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$", min_length=1, max_length=44)]


class QueueConfig(BaseModel):
    name: QueueName
    description: str = Field("", max_length=1000)
    max_retries: int = Field(3, ge=0, le=100, description="Retries after the first attempt fails.")
    claim_timeout: int = Field(300, ge=1, le=7 * 86400, description="Seconds a claim holds a job (the lease).")
    dedupe: bool = Field(False, description="Skip a submitted payload identical to one already in the queue.")
    job_schema: dict[str, Any] | None = Field(
        None, description="The JSON Schema this queue's payloads must match (checked with jobschema.check)."
    )
    created_at: float = Field(default_factory=time.time)


class QueueExists(ValueError):
    pass


class QueueRegistry:
    """The queue definitions, read through a short cache."""

    def __init__(self, store: Store, ttl: float = 1.0) -> None:
        self._setting = CachedSetting(store, SETTING, ttl)
        self._lock = threading.Lock()

    def _all(self, fresh: bool = False) -> dict[str, Any]:
        value = self._setting.store.get_setting(SETTING) if fresh else self._setting.get()
        return value if isinstance(value, dict) else {}

    def list(self) -> list[QueueConfig]:
        return [QueueConfig.model_validate(v) for _, v in sorted(self._all().items())]

    def get(self, name: str) -> QueueConfig | None:
        raw = self._all().get(name)
        return QueueConfig.model_validate(raw) if raw is not None else None

    def create(self, config: QueueConfig) -> QueueConfig:
        with self._lock:
            queues = self._all(fresh=True)
            if config.name in queues:
                raise QueueExists(config.name)
            queues[config.name] = config.model_dump(mode="json")
            self._setting.set(queues)
        return config

    def delete(self, name: str) -> bool:
        with self._lock:
            queues = self._all(fresh=True)
            if queues.pop(name, None) is None:
                return False
            self._setting.set(queues)
        return True


__all__ = ["QueueConfig", "QueueExists", "QueueName", "QueueRegistry", "queue_label"]
