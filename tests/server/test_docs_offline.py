"""``/docs`` works without the internet: every script, style and icon it loads is served by the server itself."""

from __future__ import annotations

import re
from typing import Any

from . import test_dashboard_browser
from .conftest import LiveServer, headers

browser = test_dashboard_browser.browser  # the fixture: Debian's chromium through Playwright


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


def test_every_operation_has_a_written_summary(server: LiveServer) -> None:
    document = server.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            summary = operation.get("summary", "")
            generated = operation["operationId"].split("_")
            assert summary and summary.split() != [word.title() for word in generated[: len(summary.split())]], (
                method,
                path,
                summary,
            )
            assert "``" not in summary


def test_the_documented_create_job_examples_are_accepted(server: LiveServer) -> None:
    document = server.get("/openapi.json").json()
    examples = document["components"]["schemas"]["CreateJobRequest"]["examples"]
    assert examples
    for example in examples:
        response = server.post("/create-job", json=example, headers=headers("producer"))
        assert response.status_code == 201, (example, response.text)


def test_no_schema_shows_as_never_in_a_real_browser(server: LiveServer, browser: Any) -> None:
    page = browser.new_page()
    try:
        page.goto(server("/docs"))
        page.wait_for_selector("section.models", timeout=30_000)
        shown = page.inner_text("section.models")
    finally:
        page.close()
    assert "CreateJobRequest" in shown and "JobSubmission" in shown
    types = dict(re.findall(r"^(\w+)Expand all(\w+)$", shown, re.M))
    assert types["CreateJobRequest"] == types["JobSubmission"] == "object", types
    assert "never" not in types.values(), types
