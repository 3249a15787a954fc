"""The emulator's html_url links lead somewhere: a read-only HTML view of its issues, for offline demos."""

from __future__ import annotations

import requests

from octoqueue.queue import Queue
from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import FakeGitHub


def test_html_urls_show_the_issue_its_labels_and_comments() -> None:
    with FakeGitHub(repo="demo/jobs", token="t") as gh, gh.serve() as url:
        with Queue(GitHubStore("demo/jobs", token="t", base_url=url)) as queue:
            job = queue.enqueue_job({"text": "<b>hi</b>"}, title="greet & wave", additional_labels=["demo"])
            queue.complete(job.id, result={"ok": True})
            job = queue.get(job.id)
        assert job.url is not None and job.url.startswith(url)
        page = requests.get(job.url, timeout=10)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "greet &amp; wave #1" in page.text and "&lt;b&gt;hi&lt;/b&gt;" in page.text
        assert ">completed</span>" in page.text and ">demo</span>" in page.text
        assert "**Result** (attempt 0)" in page.text and "closed" in page.text  # completed unclaimed: attempt 0
        listing = requests.get(f"{url}/demo/jobs/issues", timeout=10)
        assert listing.status_code == 200 and 'href="/demo/jobs/issues/1"' in listing.text
        assert requests.get(f"{url}/demo/jobs/issues/99", timeout=10).status_code == 404
        assert requests.get(f"{url}/other/repo/issues/1", timeout=10).status_code == 404
        api = requests.get(f"{url}/repos/demo/jobs/issues/1", headers={"Authorization": "token t"}, timeout=10)
        assert api.headers["content-type"].startswith("application/json")  # the API is untouched
