"""The dashboard in a real browser: Debian's chromium driven by Playwright. Log in, filter, open a job, requeue a
failed job and cancel a pending one, and watch the counts change live, checking the store each time."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require

from .conftest import KEYS, LiveServer

CHROMIUM = os.environ.get("OCTOQUEUE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(importlib.util.find_spec("playwright") is not None, "Playwright (pip install playwright)")
    require(os.path.exists(CHROMIUM), "Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield opened
    context.close()
    assert errors == [], errors  # no script errors, no CSP violations


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _log_in(page: Any, server: LiveServer, role: str) -> None:
    page.goto(server("/ui/login"))
    page.fill("input[name=key]", KEYS[role])
    page.click("button[type=submit]")
    page.wait_for_url(server("/ui"))


def test_filter_open_requeue_and_cancel(server: LiveServer, page: Any) -> None:
    queue = server.queue
    failed = queue.enqueue({"report": "weekly"}, title="weekly report", additional_labels=["reports"])
    queue.fail(failed, error="the printer is on fire")
    pending = queue.enqueue({"report": "daily"}, title="daily report")
    _log_in(page, server, "admin")

    page.click("text=Jobs")
    page.select_option("select[name=state]", "failed")
    page.click("button:has-text('Filter')")
    rows = page.locator("table.jobs tbody tr")
    assert rows.count() == 1 and "weekly report" in rows.first.inner_text()

    page.click("table.jobs >> text=weekly report")
    assert "the printer is on fire" in page.inner_text("main")
    assert '"report": "weekly"' in page.inner_text("pre.json")
    page.click("button:has-text('Retry')")
    page.wait_for_selector(f"text=Job {failed} is pending now.")
    assert queue.get(failed).status == "pending"

    page.goto(server(f"/ui/jobs/{pending}"))
    page.click("button:has-text('Cancel')")
    page.wait_for_selector(f"text=Job {pending} is cancelled now.")
    assert queue.get(pending).status == "cancelled"


def test_a_reader_sees_no_buttons_and_the_counts_update_live(server: LiveServer, page: Any) -> None:
    _log_in(page, server, "reader")
    assert page.locator("[data-count=pending]").inner_text() == "0"
    job = server.queue.enqueue({"a": 1})
    expect(page.locator("[data-count=pending]")).to_have_text("1")  # pushed by the event stream, no reload
    page.goto(server(f"/ui/jobs/{job}"))
    assert page.locator("button:has-text('Cancel')").count() == 0
    server.queue.complete(job)
    expect(page.locator("[data-job-state]")).to_have_text("completed")


def test_hostile_text_stays_text(server: LiveServer, page: Any) -> None:
    job = server.queue.enqueue({"x": "<img src=x onerror=window.pwned=1>"}, title="<script>window.pwned=1</script>")
    server.queue.create_comment(job, "<img src=y onerror=window.pwned=2>")
    page.goto(server(f"/ui/jobs/{job}"))
    assert page.evaluate("window.pwned") is None
    assert "<script>window.pwned=1</script>" in page.inner_text("h1")
