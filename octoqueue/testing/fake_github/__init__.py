"""A stateful, in-memory emulator of GitHub's REST API for one repository (issues, labels, comments,
events, git refs, repository_dispatch, rate limits, webhooks), as an ASGI app.

    from octoqueue.testing.fake_github import FakeGitHub

    with FakeGitHub(repo="owner/name", token="t0k3n") as gh:
        with httpx.Client(transport=gh.transport(), base_url=IN_PROCESS_URL) as client: ...
        with gh.serve() as base_url: ...   # real HTTP, uvicorn in a thread

Helpers raise :class:`GitHubError` (with ``status`` and ``body()``) where the API would answer an error.

See docs/fake-github.md.
"""

from octoqueue.testing.fake_github.errors import GitHubError
from octoqueue.testing.fake_github.fake import HUMAN, IN_PROCESS_URL, FakeGitHub
from octoqueue.testing.fake_github.state import INITIAL_COMMIT_SHA
from octoqueue.testing.fake_github.webhooks import Delivery, sign

__all__ = ["HUMAN", "INITIAL_COMMIT_SHA", "IN_PROCESS_URL", "Delivery", "FakeGitHub", "GitHubError", "sign"]
