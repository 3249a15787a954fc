"""Issues (``/repos/{o}/{r}/issues``), the labels on an issue, and its events."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from octoqueue.testing.fake_github.clock import parse_iso
from octoqueue.testing.fake_github.errors import invalid_request, validation_failed
from octoqueue.testing.fake_github.pipeline import Ctx, Reply, endpoint
from octoqueue.testing.fake_github.routes.meta import REPO, require_repo

_DOCS = "https://docs.github.com/rest/issues/issues"
_LABEL_DOCS = "https://docs.github.com/rest/issues/labels"
ISSUE = f"{REPO}/issues/{{number:int}}"


def since_param(ctx: Ctx) -> float | None:
    """The ``since`` query parameter (ISO 8601); 422 when malformed."""
    raw = ctx.query("since")
    if raw is None:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise validation_failed("Issue", "since", "invalid") from None


def label_names(value: Any, field: str = "labels") -> list[str]:
    """GitHub takes labels as names or as ``{"name": ...}`` objects."""
    if not isinstance(value, list):
        raise invalid_request(f"For 'properties/{field}', {value!r} is not an array.")
    names = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str):
            raise invalid_request(f"For 'items', {item!r} is not a string.")
        names.append(name)
    return names


def _logins(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_request(f"For 'properties/assignees', {value!r} is not an array of strings.")
    return value


@endpoint(f"{_DOCS}#list-repository-issues")
async def list_issues(ctx: Ctx) -> Reply:
    require_repo(ctx)
    labels = ctx.query("labels")
    found = ctx.backend.tracker.list_issues(
        state=ctx.choice("state", ("open", "closed", "all"), "open"),
        labels=[name.strip() for name in labels.split(",") if name.strip()] if labels else None,
        sort=ctx.choice("sort", ("created", "updated", "comments"), "created"),
        direction=ctx.choice("direction", ("asc", "desc"), "desc"),
        since=since_param(ctx),
        creator=ctx.query("creator"),
        assignee=ctx.query("assignee"),
        view=ctx.backend.replica.view(),
    )
    return ctx.page(found, ctx.render.issue)


@endpoint(f"{_DOCS}#create-an-issue")
async def create_issue(ctx: Ctx) -> Reply:
    require_repo(ctx)
    body = await ctx.json_object()
    if "title" not in body:
        raise invalid_request('"title" wasn\'t supplied.')
    title = body["title"]
    if isinstance(title, int) and not isinstance(title, bool):
        title = str(title)  # GitHub accepts a number as a title
    assignees = _logins(body.get("assignees"))
    if isinstance(body.get("assignee"), str):
        assignees = [body["assignee"], *assignees]
    labels = label_names(body.get("labels") or [])
    if not ctx.backend.faults.settings.push_access:
        labels, assignees = [], []  # "silently dropped" for a user without push access (GitHub's docs)
    issue = ctx.backend.tracker.create_issue(ctx.origin, title, body.get("body"), labels, assignees)
    return Reply(201, ctx.render.issue(issue), {"location": f"{ctx.render.repo_url}/issues/{issue.number}"})


@endpoint(f"{_DOCS}#get-an-issue")
async def get_issue(ctx: Ctx) -> Reply:
    require_repo(ctx)
    issue = ctx.backend.tracker.require_issue(ctx.number(), ctx.backend.replica.view())
    return Reply(data=ctx.render.issue(issue), last_modified=issue.updated_at)


@endpoint(f"{_DOCS}#update-an-issue")
async def update_issue(ctx: Ctx) -> Reply:
    require_repo(ctx)
    body = await ctx.json_object()
    changes: dict[str, Any] = {}
    for key in ("title", "body", "state", "state_reason"):
        if key in body:
            changes[key] = str(body[key]) if key == "title" and isinstance(body[key], int) else body[key]
    if "labels" in body:
        changes["labels"] = label_names(body["labels"] or [])
    if "assignees" in body:
        changes["assignees"] = _logins(body["assignees"])
    elif "assignee" in body:
        changes["assignees"] = [body["assignee"]] if body["assignee"] else []
    if not ctx.backend.faults.settings.push_access:
        changes.pop("labels", None)  # "silently dropped" for a user without push access (GitHub's docs)
        changes.pop("assignees", None)
    tracker = ctx.backend.tracker
    number = ctx.number()
    tracker.require_issue(number)
    if "labels" in changes:
        # Replacing labels reads the issue, then writes: the latency window sits between the two.
        await ctx.pause()
    issue = tracker.update_issue(ctx.origin, number, changes)
    return Reply(data=ctx.render.issue(issue))


# -- labels on an issue ----------------------------------------------------------------------------------
async def _label_body(ctx: Ctx) -> list[str]:
    body = await ctx.json()
    if isinstance(body, dict):
        if "labels" not in body:
            raise invalid_request('"labels" wasn\'t supplied.')
        body = body["labels"]
    return label_names(body)


@endpoint(f"{_LABEL_DOCS}#list-labels-for-an-issue")
async def list_issue_labels(ctx: Ctx) -> Reply:
    require_repo(ctx)
    issue = ctx.backend.tracker.require_issue(ctx.number())
    return ctx.page(ctx.backend.state.issue_labels(issue), ctx.render.label)


@endpoint(f"{_LABEL_DOCS}#add-labels-to-an-issue")
async def add_issue_labels(ctx: Ctx) -> Reply:
    require_repo(ctx)
    names = await _label_body(ctx)
    if not names:
        raise validation_failed("Label", "labels", "missing_field")
    tracker, number = ctx.backend.tracker, ctx.number()
    tracker.require_issue(number)
    await ctx.pause()  # no compare-and-swap: another client may change the labels meanwhile
    labels = tracker.add_labels(ctx.origin, number, names)
    return Reply(data=[ctx.render.label(label) for label in labels])


@endpoint(f"{_LABEL_DOCS}#set-labels-for-an-issue")
async def set_issue_labels(ctx: Ctx) -> Reply:
    require_repo(ctx)
    names = await _label_body(ctx)
    tracker, number = ctx.backend.tracker, ctx.number()
    tracker.require_issue(number)
    await ctx.pause()
    labels = tracker.set_labels(ctx.origin, number, names)
    return Reply(data=[ctx.render.label(label) for label in labels])


@endpoint(f"{_LABEL_DOCS}#remove-all-labels-from-an-issue")
async def clear_issue_labels(ctx: Ctx) -> Reply:
    require_repo(ctx)
    tracker, number = ctx.backend.tracker, ctx.number()
    tracker.require_issue(number)
    await ctx.pause()
    tracker.set_labels(ctx.origin, number, [])
    return Reply(204)


@endpoint(f"{_LABEL_DOCS}#remove-a-label-from-an-issue")
async def remove_issue_label(ctx: Ctx) -> Reply:
    require_repo(ctx)
    tracker, number, name = ctx.backend.tracker, ctx.number(), ctx.param("name")
    # The 404 is decided now; the removal happens after the latency window. Two clients removing the same
    # label concurrently therefore both succeed — exactly the race GitHub has.
    tracker.require_issue_label(number, name)
    await ctx.pause()
    labels = tracker.remove_labels(ctx.origin, number, [name])
    return Reply(data=[ctx.render.label(label) for label in labels])


@endpoint("https://docs.github.com/rest/issues/events#list-issue-events")
async def list_issue_events(ctx: Ctx) -> Reply:
    require_repo(ctx)
    tracker, number = ctx.backend.tracker, ctx.number()
    tracker.require_issue(number)
    return ctx.page(tracker.list_events(number), ctx.render.event)


routes = [
    Route(f"{REPO}/issues", list_issues, methods=["GET"]),
    Route(f"{REPO}/issues", create_issue, methods=["POST"]),
    Route(ISSUE, get_issue, methods=["GET"]),
    Route(ISSUE, update_issue, methods=["PATCH"]),
    Route(f"{ISSUE}/labels", list_issue_labels, methods=["GET"]),
    Route(f"{ISSUE}/labels", add_issue_labels, methods=["POST"]),
    Route(f"{ISSUE}/labels", set_issue_labels, methods=["PUT"]),
    Route(f"{ISSUE}/labels", clear_issue_labels, methods=["DELETE"]),
    Route(f"{ISSUE}/labels/{{name:path}}", remove_issue_label, methods=["DELETE"]),
    Route(f"{ISSUE}/events", list_issue_events, methods=["GET"]),
]
