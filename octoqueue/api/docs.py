"""``/docs``: Swagger UI served from the installed ``swagger-ui-bundle-v2`` package, so the page works offline
(FastAPI's default loads its script and style from a CDN, and is blank without one). ``/redoc`` is not served:
no package ships ReDoc's assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

#: Where the Swagger UI files are served.
ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/docs/oauth2-redirect`` with local assets (create the app with ``docs_url=None``)."""
    from swagger_ui_bundle import swagger_ui_path

    folder = Path(swagger_ui_path)
    files = {path.name: path for path in folder.iterdir() if path.is_file()}  # by name: no path reaches elsewhere
    redirect = "/docs/oauth2-redirect"

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        path = files.get(name)
        if path is None:
            raise HTTPException(404, "no such file")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title=f"{app.title} — API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=redirect,
        )

    @app.get(redirect, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


__all__ = ["ASSETS", "install_docs"]
