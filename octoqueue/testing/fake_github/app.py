"""The ASGI application: Starlette, the routing table, and the backend the handlers share."""

from __future__ import annotations

from starlette.applications import Starlette

from octoqueue.testing.fake_github.pipeline import Backend
from octoqueue.testing.fake_github.routes import ROUTES


def build_app(backend: Backend) -> Starlette:
    """An ASGI app serving ``backend``; usable in-process (httpx ASGI transports) and under uvicorn."""
    app = Starlette(routes=ROUTES)
    app.state.backend = backend
    return app
