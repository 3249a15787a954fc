"""The emulator's own control API (not GitHub's): read and switch injected faults from another process.

``GET /_fake/faults`` answers the settings in force; ``PATCH /_fake/faults`` with a JSON object of
:class:`~octoqueue.testing.fake_github.faults.FaultSettings` fields changes those named (422 naming the
problem, and nothing changed, on an unknown field or a bad value). It bypasses the pipeline: no token, no
rate limit, no fault.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from octoqueue.testing.fake_github.pipeline import Backend


async def faults(request: Request) -> JSONResponse:
    backend: Backend = request.app.state.backend
    settings = backend.faults.settings
    if request.method == "PATCH":
        try:
            changes = json.loads(await request.body() or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("the body must be a JSON object of fault settings")
            settings.update(changes)
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, status_code=422)
    return JSONResponse(asdict(settings))


routes = [Route("/_fake/faults", faults, methods=["GET", "PATCH"])]
