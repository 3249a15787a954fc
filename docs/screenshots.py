"""Regenerate the dashboard screenshots in docs/img (``make screenshots``): a demo queue on the in-memory store,
served by the real app, photographed by Debian's chromium through Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from octoqueue import Queue
from octoqueue.api import create_app
from octoqueue.api.settings import Settings

OUT = Path(__file__).parent / "img"


def main() -> None:
    queue = Queue("memory://", max_attempts=3)
    for n in range(1, 41):
        queue.enqueue(
            {"url": f"https://example.com/page/{n}"}, title=f"fetch page {n}", type="fetch", additional_labels=["crawl"]
        )
    queue.create_schedule("nightly-report", {"report": "daily"}, "0 3 * * *", timezone="Europe/Berlin")
    settings = Settings(api_keys="admin:demo-admin-key", webhook_secret=None, store="memory://")
    app = create_app(settings, queue)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"

    def work() -> None:  # a worker draining the queue while the charts fill
        while (job := queue.claim()) is not None:
            time.sleep(0.25)
            if job.id % 7 == 0:
                queue.fail(job, error="HTTP 503 from example.com")
            else:
                queue.complete(job, result={"status": 200, "bytes": 5120 + job.id})

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        page.goto(f"{base}/ui/login")
        page.fill("input[name=key]", "demo-admin-key")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/ui")
        worker = threading.Thread(target=work)
        worker.start()
        for _ in range(6):  # let the overview sample the counts while jobs move
            time.sleep(2.1)
            page.reload()
        page.screenshot(path=str(OUT / "dashboard-overview.png"), full_page=True)
        worker.join()
        page.goto(f"{base}/ui/jobs/7")
        page.screenshot(path=str(OUT / "dashboard-job.png"), full_page=True)
        browser.close()
    server.should_exit = True
    print(f"wrote {OUT / 'dashboard-overview.png'} and {OUT / 'dashboard-job.png'}")


if __name__ == "__main__":
    main()
