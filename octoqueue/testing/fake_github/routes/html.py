"""A read-only HTML view of the emulated repository's issues, where the API's ``html_url`` links point
(``/{owner}/{repo}/issues`` and ``/{owner}/{repo}/issues/{number}``), so that offline demos can be looked at in a
browser. Not GitHub's pages: a plain list and a plain issue with its labels and comments. It bypasses the pipeline
(no token, no rate limit, no fault), like the control API."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from octoqueue.testing.fake_github.pipeline import Backend
from octoqueue.testing.fake_github.state import Issue

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    ".label{border-radius:1em;padding:0 .5em;margin-right:.3em;font-size:.85em;border:1px solid #8884}"
    "pre{background:#f6f8fa;padding:.8em;overflow:auto;white-space:pre-wrap}.meta{color:#57606a}"
    "li{margin:.3em 0}"
)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _not_found(detail: str = "") -> HTMLResponse:
    response = _page("Not Found", f"<h1>Not Found</h1>{detail}")
    response.status_code = 404
    return response


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _repo(request: Request) -> tuple[Backend, str] | None:
    backend: Backend = request.app.state.backend
    state = backend.tracker.state
    asked = f"{request.path_params['owner']}/{request.path_params['repo']}"
    return (backend, state.full_name) if asked.lower() == state.full_name.lower() else None


def _labels(backend: Backend, issue: Issue) -> str:
    with backend.tracker.state.lock:
        labels = list(backend.tracker.state.issue_labels(issue))
    return "".join(
        f'<span class="label" style="background:#{escape(label.color)}33">{escape(label.name)}</span>'
        for label in labels
    )


async def issue_list(request: Request) -> HTMLResponse:
    found = _repo(request)
    if found is None:
        return _not_found()
    backend, name = found
    state = request.query_params.get("state", "all")
    issues = backend.tracker.list_issues(state=state if state in ("open", "closed", "all") else "all")
    rows = "".join(
        f'<li><a href="/{escape(name)}/issues/{issue.number}">#{issue.number} {escape(issue.title)}</a> '
        f'{_labels(backend, issue)}<span class="meta">{issue.state}, updated {_when(issue.updated_at)}</span></li>'
        for issue in issues
        if not issue.is_pull_request
    )
    body = f"<h1>{escape(name)}: issues</h1><p class=meta>{len(issues)} shown (state={escape(state)})</p>"
    return _page(f"Issues · {name}", body + (f"<ul>{rows}</ul>" if rows else "<p>No issues.</p>"))


async def issue_page(request: Request) -> HTMLResponse:
    found = _repo(request)
    number = request.path_params["number"]
    if found is None:
        return _not_found()
    backend, name = found
    with backend.tracker.state.lock:
        issue = backend.tracker.state.issues.get(number)
    if issue is None:
        return _not_found(f"<p>{escape(name)} has no issue #{number}.</p>")
    comments = "".join(
        f'<h3 id="issuecomment-{c.id}" class="meta">{escape(c.author)} commented {_when(c.created_at)}</h3>'
        f"<pre>{escape(c.body)}</pre>"
        for c in backend.tracker.list_comments(number)
    )
    body = (
        f'<p><a href="/{escape(name)}/issues">{escape(name)}</a></p>'
        f"<h1>{escape(issue.title)} #{issue.number}</h1>"
        f'<p>{_labels(backend, issue)}<span class="meta">{issue.state} · opened by {escape(issue.author)} '
        f"{_when(issue.created_at)} · updated {_when(issue.updated_at)}</span></p>"
        f"<pre>{escape(issue.body or '')}</pre><h2>Comments ({issue.comments})</h2>{comments or '<p>None.</p>'}"
    )
    return _page(f"{issue.title} · {name}#{issue.number}", body)


routes = [
    Route("/{owner}/{repo}/issues", issue_list, methods=["GET"]),
    Route("/{owner}/{repo}/issues/{number:int}", issue_page, methods=["GET"]),
]
