"""A read-only HTML view of the emulated repository at the ``html_url`` links its API answers carry
(``{base}/{owner}/{repo}``, ``.../issues``, ``.../issues/{number}``), so that offline demos can be looked at in a
browser. Not GitHub's pages: a plain listing and each issue with its labels, body and comments, all escaped. It
bypasses the pipeline (no token, no rate limit, no fault), as a browser on github.com would."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from octoqueue.testing.fake_github.pipeline import Backend
from octoqueue.testing.fake_github.routes.meta import unknown_endpoint
from octoqueue.testing.fake_github.state import Issue, RepoState

_STYLE = (
    "body{font:14px/1.5 system-ui,sans-serif;max-width:960px;margin:1rem auto;padding:0 1rem;color:#1f2328}"
    "pre{white-space:pre-wrap;background:#f6f8fa;border:1px solid #d1d9e0;border-radius:6px;padding:.6rem}"
    ".label{display:inline-block;border-radius:1em;padding:0 .6em;margin-right:.3em;font-size:12px;"
    "border:1px solid #d1d9e0}.muted{color:#59636e}td,th{padding:.2rem .6rem;text-align:left}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<p class=muted>octoqueue fake-github: a read-only view, not GitHub</p>{body}</body></html>"
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _repo(request: Request) -> tuple[Backend, RepoState] | None:
    backend: Backend = request.app.state.backend
    state = backend.state
    owner, name = request.path_params["owner"], request.path_params["repo"]
    if (owner.lower(), name.lower()) != (state.owner.lower(), state.name.lower()):
        return None
    return backend, state


def _labels(state: RepoState, issue: Issue) -> str:
    names = [state.labels[i].name for i in issue.label_ids if i in state.labels]
    return "".join(f"<span class=label>{escape(name)}</span>" for name in names)


async def repository(request: Request) -> Response:
    found = _repo(request)
    if found is None:  # not the emulated repository: the API's own 404, in GitHub's JSON
        return await unknown_endpoint(request)  # type: ignore[no-any-return]
    _, state = found
    with state.lock:
        issues = sorted(state.issues.values(), key=lambda issue: -issue.number)
        rows = "".join(
            f"<tr><td><a href='{escape(request.url.path.rstrip('/').removesuffix('/issues'))}/issues/{i.number}'>"
            f"#{i.number}</a></td><td>{escape(i.title)}</td><td>{escape(i.state)}</td><td>{_labels(state, i)}</td>"
            f"<td class=muted>{_when(i.updated_at)}</td></tr>"
            for i in issues
        )
    title = escape(state.full_name)
    table = f"<table><tr><th>#</th><th>title</th><th>state</th><th>labels</th><th>updated</th></tr>{rows}</table>"
    return _page(state.full_name, f"<h1>{title}</h1><p>{len(issues)} issue(s)</p>{table}")


async def issue(request: Request) -> Response:
    found = _repo(request)
    if found is None:
        return await unknown_endpoint(request)  # type: ignore[no-any-return]
    _, state = found
    try:
        number = int(request.path_params["number"])
    except ValueError:
        number = 0
    with state.lock:
        shown = state.issues.get(number)
        if shown is None:
            return _page("Not found", f"<h1>Issue {number} not found</h1>", 404)
        comments = sorted((c for c in state.comments.values() if c.issue_number == number), key=lambda c: c.id)
        parts = [
            f"<h1>{escape(shown.title)} <span class=muted>#{shown.number}</span></h1>",
            f"<p>{escape(shown.state)} · opened by {escape(shown.author)} {_when(shown.created_at)} · "
            f"{_labels(state, shown)}</p>",
            f"<pre>{escape(shown.body or '')}</pre>",
        ]
        for comment in comments:
            parts.append(
                f"<h3 id='issuecomment-{comment.id}'>{escape(comment.author)} "
                f"<span class=muted>{_when(comment.created_at)}</span></h3><pre>{escape(comment.body)}</pre>"
            )
    return _page(f"{shown.title} #{shown.number}", "".join(parts))


routes = [
    Route("/{owner}/{repo}", repository, methods=["GET"]),
    Route("/{owner}/{repo}/issues", repository, methods=["GET"]),
    Route("/{owner}/{repo}/issues/{number}", issue, methods=["GET"]),
    Route("/{owner}/{repo}/pull/{number}", issue, methods=["GET"]),
]
