"""octoqueue for asyncio: :class:`AsyncQueue` and :class:`AsyncWorker`, over an :class:`AsyncStore`.

See docs/asyncio.md. Needs the ``greenlet`` package (``pip install 'octoqueue[aio]'``).
"""

from octoqueue.aio.queue import AsyncQueue
from octoqueue.aio.store import AsyncStore, BridgedStore, ThreadedStore, open_async_store
from octoqueue.aio.worker import AsyncWorker

__all__ = ["AsyncQueue", "AsyncStore", "AsyncWorker", "BridgedStore", "ThreadedStore", "open_async_store"]
