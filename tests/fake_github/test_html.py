"""The emulator's html_url links open a read-only, escaped HTML view of the repository and its issues."""

from __future__ import annotations

import httpx

from octoqueue.testing.fake_github import FakeGitHub


def test_html_urls_of_issues_and_comments_open_in_a_browser() -> None:
    with FakeGitHub(repo="octo/jobs", token="t") as fake, fake.serve() as base:
        number = fake.create_issue("<b>fetch</b> page", '```json\n{"a": "<script>x</script>"}\n```')
        fake.comment(number, "done: <img src=x onerror=alert(1)>")
        issue = httpx.get(f"{base}/repos/octo/jobs/issues/{number}", headers={"Authorization": "token t"}).json()
        page = httpx.get(issue["html_url"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "&lt;b&gt;fetch&lt;/b&gt; page" in page.text and "<script>" not in page.text
        assert "&lt;img src=x" in page.text and "default-src 'none'" in page.headers["content-security-policy"]
        listing = httpx.get(issue["repository_url"].replace("/repos/", "/"))
        assert listing.status_code == 200 and f"/octo/jobs/issues/{number}" in listing.text
        missing = httpx.get(f"{base}/octo/jobs/issues/999")
        assert missing.status_code == 404
        foreign = httpx.get(f"{base}/someone/else/issues/1")
        assert foreign.status_code == 404 and foreign.json()["message"] == "Not Found"
