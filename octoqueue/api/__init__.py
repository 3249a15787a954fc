"""octoqueue's HTTP server (FastAPI).

``uvicorn octoqueue.api:app`` serves the application configured by the environment and the working folder's
``.env``; :func:`create_app` builds one from explicit :class:`Settings` (and, for tests, an existing Queue).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from octoqueue.api.server import create_app
from octoqueue.api.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    app: FastAPI


def __getattr__(name: str) -> Any:
    # Built on first use, so importing the package (or create_app) does not read the environment.
    if name == "app":
        from octoqueue.api.settings import load_env_file

        load_env_file()  # GH_TOKEN and GITHUB_API_URL, for the store; Settings reads .env itself
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(f"module 'octoqueue.api' has no attribute {name!r}")


__all__ = ["Settings", "app", "create_app"]
