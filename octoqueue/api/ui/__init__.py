"""The web dashboard of ``octoqueue serve`` at ``/ui`` (see docs/dashboard.md)."""

from octoqueue.api.ui.pages import router

__all__ = ["router"]
