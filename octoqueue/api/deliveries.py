"""Remembering webhook deliveries, so a redelivered one (same ``X-GitHub-Delivery``) is not acted on twice.

Every delivery id is kept in a bounded in-memory set. Deliveries that make the server act (requeue, cancel,
comment) are also recorded in the store's ``webhook_deliveries`` setting — the last :data:`PERSISTED` of them —
so a replay is refused after a restart and by other server processes sharing the store. Deliveries that need
no action (most of them: every label change the queue itself makes) stay in memory only, to spare the store.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from octoqueue.stores import Store

SETTING = "webhook_deliveries"
PERSISTED = 500
IN_MEMORY = 10_000


class DeliveryLog:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, delivery: str, *, persist: bool) -> bool:
        """Record ``delivery``; True when it was not seen before (False: a duplicate, do not act)."""
        with self._lock:
            if delivery in self._seen:
                return False
            if persist:
                stored = self.store.get_setting(SETTING)
                recent = [d for d in stored if isinstance(d, str)] if isinstance(stored, list) else []
                if delivery in recent:
                    self._remember(delivery)
                    return False
                recent.append(delivery)
                self.store.set_setting(SETTING, recent[-PERSISTED:])
            self._remember(delivery)
            return True

    def _remember(self, delivery: str) -> None:
        self._seen[delivery] = None
        while len(self._seen) > IN_MEMORY:
            self._seen.popitem(last=False)


__all__ = ["DeliveryLog"]
