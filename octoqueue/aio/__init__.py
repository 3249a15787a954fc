"""octoqueue for asyncio: :class:`AsyncQueue` and :class:`AsyncWorker`, over an :class:`AsyncStore`.

See docs/asyncio.md. Needs the ``greenlet`` package (``pip install 'octoqueue[aio]'``).
"""

from octoqueue.aio.queue import AsyncQueue
from octoqueue.aio.store import AsyncStore, BridgedStore, ThreadedStore, open_async_store

__all__ = ["AsyncQueue", "AsyncStore", "BridgedStore", "ThreadedStore", "open_async_store"]
