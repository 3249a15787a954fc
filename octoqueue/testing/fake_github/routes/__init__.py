"""The emulated REST endpoints, one module per concern; :data:`ROUTES` is the app's routing table."""

from __future__ import annotations

from starlette.routing import BaseRoute

from octoqueue.testing.fake_github.routes import comments, control, dependencies, git, html, issues, labels, meta

#: Order matters: literal segments (``issues/comments``) before parameters (``issues/{number}``), and the
#: catch-all 404 last.
ROUTES: list[BaseRoute] = [
    *control.routes,
    *meta.routes,
    *comments.routes,
    *labels.routes,
    *dependencies.routes,
    *issues.routes,
    *git.routes,
    *html.routes,
    *meta.fallback,
]
