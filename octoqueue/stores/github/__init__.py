"""``github://owner/repo``: the GitHub store, jobs as issues (see :mod:`octoqueue.stores.github.store`).

Modules: ``store`` (:class:`GitHubStore`, the Store contract), ``client`` (HTTP, pacing, retries, GitHub's clock),
``issues`` (issue ↔ job mapping and ref names, pure functions), ``refs`` (exclusive moves out of git refs),
``claims``, ``listing`` (lists, counts, purges), ``posts`` (retry-safe POSTs of issues and comments), ``settings``
(the settings issue), ``people`` (logins and permissions for ChatOps), ``dropped`` (labels GitHub dropped).
"""

from octoqueue.stores.github.client import RateLimit
from octoqueue.stores.github.store import GitHubStore

__all__ = ["GitHubStore", "RateLimit"]
