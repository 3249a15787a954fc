"""Named queues for the Starq-compatible worker API, defined in the store's settings.

A queue ``q`` is the set of jobs carrying the extra label ``queue:q``; its definition (retries, claim timeout,
de-duplication) is one entry of the ``queues`` setting, so every server process on the store shares it.
Creating and deleting queues is one :meth:`~octoqueue.stores.base.Store.update_setting` of that setting, atomic on
every store: two processes defining queues at once both keep their definitions.
"""

from __future__ import annotations

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


class _NoSuchQueue(LookupError):
    """Raised inside a setting update to leave the setting as it is (nothing to delete)."""


class QueueRegistry:
    """The queue definitions, read through a short cache."""

    def __init__(self, store: Store, ttl: float = 1.0) -> None:
        self._setting = CachedSetting(store, SETTING, ttl)

    def _all(self) -> dict[str, Any]:
        value = self._setting.get()
        return value if isinstance(value, dict) else {}

    def list(self) -> list[QueueConfig]:
        return [QueueConfig.model_validate(v) for _, v in sorted(self._all().items())]

    def get(self, name: str) -> QueueConfig | None:
        raw = self._all().get(name)
        return QueueConfig.model_validate(raw) if raw is not None else None

    def create(self, config: QueueConfig) -> QueueConfig:
        """Define ``config``'s queue; :class:`QueueExists` (and nothing stored) when the name is taken."""
        entry = config.model_dump(mode="json")

        def add(current: Any) -> dict[str, Any]:
            queues = dict(current) if isinstance(current, dict) else {}
            if config.name in queues:
                raise QueueExists(config.name)
            queues[config.name] = entry
            return queues

        self._setting.update(add)
        return config

    def delete(self, name: str) -> bool:
        """Remove the queue's definition; False when there was none."""

        def drop(current: Any) -> dict[str, Any]:
            queues = dict(current) if isinstance(current, dict) else {}
            if queues.pop(name, None) is None:
                raise _NoSuchQueue(name)
            return queues

        try:
            self._setting.update(drop)
        except _NoSuchQueue:
            return False
        return True


__all__ = ["QueueConfig", "QueueExists", "QueueName", "QueueRegistry", "queue_label"]
