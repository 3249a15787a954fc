"""``/docs`` works without the internet: every script, style and icon it loads is served by the server itself."""

from __future__ import annotations

import re

from .conftest import LiveServer


def test_docs_load_nothing_from_elsewhere(server: LiveServer) -> None:
    page = server.get("/docs")
    assert page.status_code == 200
    loaded = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(
        r"""url:\s*['"]([^'"]+)['"]""", page.text
    )
    assert loaded, page.text
    assert not [url for url in loaded if "//" in url], loaded  # no absolute URL: no CDN
    for url in loaded:
        assert server.get(url).status_code == 200, url
    script = server.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"] and len(script.content) > 100_000
    assert server.get("/docs/oauth2-redirect").status_code == 200
    assert server.get("/docs/assets/..%2F..%2F__init__.py").status_code == 404
    assert server.get("/docs/assets/index.j2x").status_code == 404


def test_redoc_is_not_served_half_working(server: LiveServer) -> None:
    assert server.get("/redoc").status_code == 404
