"""The dashboard over HTTP: who may see and act, CSRF, escaping, headers, assets, live updates."""

from __future__ import annotations

import json
import re

import pytest
import requests

from .conftest import KEYS, LiveServer


def _session(server: LiveServer, key: str | None = None) -> requests.Session:
    """A browser: cookies kept; logged in with ``key`` when given."""
    browser = requests.Session()
    page = browser.get(server("/ui/login"))
    if key is not None:
        token = _csrf(page.text)
        answer = browser.post(server("/ui/login"), data={"csrf": token, "key": key, "next": "/ui"})
        assert answer.status_code == 200 and answer.url.endswith("/ui")
    return browser


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_pages_are_escaped_and_locked_down(server: LiveServer) -> None:
    job = server.queue.enqueue({"html": "<img src=x onerror=alert(1)>"}, title="<script>alert(2)</script>")
    server.queue.create_comment(job, "<iframe src=//evil></iframe>")
    for path in ("/ui", "/ui/jobs", f"/ui/jobs/{job}"):
        page = requests.get(server(path), timeout=10)
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<iframe" not in page.text
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in requests.get(server("/ui/jobs"), timeout=10).text


def test_reads_follow_the_api_rule(make_server: object) -> None:
    closed: LiveServer = make_server(open_reads=False)  # type: ignore[operator]
    answer = requests.get(closed("/ui/jobs"), timeout=10, allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next=%2Fui%2Fjobs")
    assert requests.get(closed("/ui/events"), timeout=10).status_code == 401
    reader = _session(closed, KEYS["reader"])
    assert reader.get(closed("/ui/jobs")).status_code == 200


def test_actions_need_an_admin_session_and_the_csrf_token(server: LiveServer) -> None:
    job = server.queue.enqueue({"a": 1})
    anonymous = _session(server)
    page = anonymous.get(server(f"/ui/jobs/{job}"))
    assert "Cancel" not in page.text  # no buttons for who cannot use them
    token = anonymous.cookies["oq_csrf"]  # a valid token: only the role is missing
    assert anonymous.post(server(f"/ui/jobs/{job}/cancel"), data={"csrf": token}).status_code == 403
    reader = _session(server, KEYS["reader"])
    token = _csrf(reader.get(server(f"/ui/jobs/{job}")).text)
    assert reader.post(server(f"/ui/jobs/{job}/cancel"), data={"csrf": token}).status_code == 403

    admin = _session(server, KEYS["admin"])
    page = admin.get(server(f"/ui/jobs/{job}"))
    assert "Cancel" in page.text
    assert admin.post(server(f"/ui/jobs/{job}/cancel"), data={}).status_code == 403  # no token
    assert admin.post(server(f"/ui/jobs/{job}/cancel"), data={"csrf": "forged"}).status_code == 403
    # another site's form: the browser sends no SameSite=Strict cookie, and the page could not read the token
    foreign = requests.post(server(f"/ui/jobs/{job}/cancel"), data={"csrf": _csrf(page.text)}, timeout=10)
    assert foreign.status_code == 403
    assert server.queue.get(job).status == "pending"

    done = admin.post(server(f"/ui/jobs/{job}/cancel"), data={"csrf": _csrf(page.text)})
    assert done.status_code == 200 and f"Job {job} is cancelled now." in done.text
    assert server.queue.get(job).status == "cancelled"
    assert f"Job {job} is cancelled now." not in admin.get(server(f"/ui/jobs/{job}")).text  # the flash is shown once


def test_login_with_a_wrong_key_and_no_open_redirect(server: LiveServer) -> None:
    browser = requests.Session()
    token = _csrf(browser.get(server("/ui/login")).text)
    wrong = browser.post(server("/ui/login"), data={"csrf": token, "key": "nope"})
    assert wrong.status_code == 401 and "That key is not one of this server" in wrong.text
    away = browser.post(
        server("/ui/login"),
        data={"csrf": token, "key": KEYS["admin"], "next": "//evil.example/"},
        allow_redirects=False,
    )
    assert away.status_code == 303 and away.headers["location"] == "/ui"
    cookie = next(c for c in browser.cookies if c.name == "oq_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/ui"


@pytest.mark.parametrize("name", ["../settings.py", "ui.css/../../x", "..%2Fpages.py", "missing.js"])
def test_only_the_dashboard_s_own_assets_are_served(server: LiveServer, name: str) -> None:
    assert requests.get(server(f"/ui/static/{name}"), timeout=10).status_code == 404
    assert requests.get(server("/ui/static/ui.js"), timeout=10).headers["content-type"].startswith("text/javascript")


def test_live_updates_stream_the_counts(server: LiveServer) -> None:
    server.queue.enqueue({"a": 1})
    with requests.get(server("/ui/events"), stream=True, timeout=10) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines(decode_unicode=True)
        data = next(line for line in lines if line.startswith("data: "))
    assert '"pending": 1' in data
    assert json.loads(data.removeprefix("data: "))["paused"] == {"queue": False, "since": None, "labels": {}}


def test_the_overview_and_the_stream_show_a_pause(server: LiveServer) -> None:
    server.queue.pause(label="images")
    page = requests.get(server("/ui"), timeout=10).text
    assert "paused: label images" in page
    with requests.get(server("/ui/events"), stream=True, timeout=10) as events:
        data = next(line for line in events.iter_lines(decode_unicode=True) if line.startswith("data: "))
    assert json.loads(data.removeprefix("data: "))["paused"]["labels"].keys() == {"images"}


def test_one_key_s_logins_cannot_log_another_key_out() -> None:
    """B8: 10,050 logins with the reader key evicted the admin's session (the cap dropped the oldest first)."""
    from octoqueue.api.auth import Principal, Role
    from octoqueue.api.ui.sessions import MAX_SESSIONS_PER_KEY, Sessions

    sessions = Sessions()
    admin = Principal("admin", frozenset({Role.ADMIN}), fingerprint="a")
    reader = Principal("reader", frozenset({Role.READER}), fingerprint="r")
    kept = sessions.open(admin)
    readers = [sessions.open(reader) for _ in range(10_050)]
    assert sessions.find(kept) is admin
    assert sessions.find(readers[-1]) is reader
    assert sessions.find(readers[-MAX_SESSIONS_PER_KEY - 1]) is None  # the reader key's own oldest went


def test_failed_logins_are_limited_per_client(server: LiveServer) -> None:
    """B8: /ui/login let one client guess keys without limit."""
    from octoqueue.api.ui.sessions import LOGIN_FAILURES

    browser = requests.Session()
    token = _csrf(browser.get(server("/ui/login")).text)
    for _ in range(LOGIN_FAILURES):
        assert browser.post(server("/ui/login"), data={"csrf": token, "key": "guess"}).status_code == 401
    blocked = browser.post(server("/ui/login"), data={"csrf": token, "key": KEYS["admin"]}, allow_redirects=False)
    assert (blocked.status_code, blocked.headers["Retry-After"]) == (429, "300")


def test_a_planted_csrf_cookie_does_not_pass_with_an_admin_session(server: LiveServer) -> None:
    """B9: the token was any value equal to the oq_csrf cookie, so a cookie planted beside the admin's session
    (a sibling subdomain can set one) made a matching form pass. It is bound to the session now."""
    job = server.queue.enqueue({"a": 1})
    admin = _session(server, KEYS["admin"])
    session = admin.cookies["oq_session"]
    planted = requests.post(
        server(f"/ui/jobs/{job}/cancel"),
        data={"csrf": "attacker"},
        cookies={"oq_session": session, "oq_csrf": "attacker"},
        allow_redirects=False,
        timeout=10,
    )
    assert planted.status_code == 403
    assert server.queue.get(job).status == "pending"
    other = _session(server, KEYS["admin"])  # another session's token does not fit this one
    stolen = _csrf(other.get(server(f"/ui/jobs/{job}")).text)
    assert admin.post(server(f"/ui/jobs/{job}/cancel"), data={"csrf": stolen}).status_code == 403
