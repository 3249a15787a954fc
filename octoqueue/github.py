"""``GithubQueue``: the original Octoqueue's class name, a :class:`~octoqueue.queue.Queue` over GitHub issues.

Both constructor forms of the original work::

    GithubQueue(repo="owner/repo", token=None)          # the real v0.1.0 signature; token falls back to GH_TOKEN
    GithubQueue(owner="owner", repo="repo", token="…")  # the form in the seed README
"""

from __future__ import annotations

import inspect
from typing import Any

from octoqueue.queue import Queue
from octoqueue.stores.github import GitHubStore
from octoqueue.stores.github.client import RateLimit

#: Keyword options that belong to Queue (the rest configure the store).
_QUEUE_OPTIONS = frozenset(
    name
    for name, param in inspect.signature(Queue.__init__).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY
)


class GithubQueue(Queue):
    """A queue whose jobs are issues of ``repo``.

    ``base_url`` (GitHub Enterprise, the emulator) and ``transport`` (an httpx transport) go to the store, as do
    the other keyword options of :class:`~octoqueue.stores.github.GitHubStore` (``prefix``, ``app_id``, pacing,
    ...); keyword options of :class:`Queue` (``retry``, ``max_attempts``, ``lease``, ``worker_name``, ...) go to
    the queue.
    """

    store: GitHubStore

    def __init__(
        self,
        repo: str | None = None,
        token: str | None = None,
        *,
        owner: str | None = None,
        base_url: str | None = None,
        transport: Any = None,
        **options: Any,
    ) -> None:
        queue_options = {k: options.pop(k) for k in list(options) if k in _QUEUE_OPTIONS}
        store = GitHubStore(repo, owner=owner, token=token, base_url=base_url, transport=transport, **options)
        Queue.__init__(self, store, **queue_options)

    @property
    def repo(self) -> str:
        """``owner/name`` of the queue's repository."""
        return f"{self.store.owner}/{self.store.repo}"

    @property
    def rate_limit(self) -> RateLimit:
        """GitHub's primary rate-limit counters from the latest response."""
        return self.store.rate_limit


__all__ = ["GithubQueue"]
