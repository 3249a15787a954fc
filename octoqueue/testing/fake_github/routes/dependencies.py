"""Issue dependencies (``/repos/{o}/{r}/issues/{n}/dependencies/...``): what an issue is blocked by and blocks.

As GitHub documents them: the lists answer 200 with issues (paginated); adding takes ``{"issue_id": <the blocking
issue's database id>}`` and answers 201 with the blocking issue; removing answers 200 with it. An unknown issue
is a 404, a missing or malformed ``issue_id`` a 422, as are an issue blocking itself and a dependency that exists.
"""

from __future__ import annotations

from starlette.routing import Route

from octoqueue.testing.fake_github.errors import not_found, validation_failed
from octoqueue.testing.fake_github.pipeline import Ctx, Reply, endpoint
from octoqueue.testing.fake_github.routes.issues import ISSUE
from octoqueue.testing.fake_github.routes.meta import require_repo
from octoqueue.testing.fake_github.state import Issue

_DOCS = "https://docs.github.com/rest/issues/issue-dependencies"


def _by_database_id(ctx: Ctx, issue_id: int) -> Issue:
    state = ctx.backend.state
    with state.lock:
        found = next((issue for issue in state.issues.values() if issue.id == issue_id), None)
    if found is None:
        raise not_found()
    return found


def _issues(ctx: Ctx, numbers: list[int]) -> list[Issue]:
    state = ctx.backend.state
    with state.lock:
        return [state.issues[n] for n in numbers if n in state.issues]


@endpoint(f"{_DOCS}#list-dependencies-an-issue-is-blocked-by")
async def list_blocked_by(ctx: Ctx) -> Reply:
    require_repo(ctx)
    number = ctx.backend.tracker.require_issue(ctx.number()).number
    with ctx.backend.state.lock:
        parents = list(ctx.backend.state.blocked_by.get(number, []))
    return ctx.page(_issues(ctx, parents), ctx.render.issue)


@endpoint(f"{_DOCS}#list-dependencies-an-issue-is-blocking")
async def list_blocking(ctx: Ctx) -> Reply:
    require_repo(ctx)
    number = ctx.backend.tracker.require_issue(ctx.number()).number
    with ctx.backend.state.lock:
        children = ctx.backend.state.blocking(number)
    return ctx.page(_issues(ctx, children), ctx.render.issue)


@endpoint(f"{_DOCS}#add-a-dependency-an-issue-is-blocked-by")
async def add_blocked_by(ctx: Ctx) -> Reply:
    require_repo(ctx)
    issue = ctx.backend.tracker.require_issue(ctx.number())
    body = await ctx.json_object()
    issue_id = body.get("issue_id")
    if not isinstance(issue_id, int) or isinstance(issue_id, bool):
        raise validation_failed("IssueDependency", "issue_id", "missing_field" if issue_id is None else "invalid")
    blocking = _by_database_id(ctx, issue_id)
    state = ctx.backend.state
    with state.lock:
        parents = state.blocked_by.setdefault(issue.number, [])
        if blocking.number == issue.number:
            raise validation_failed("IssueDependency", "issue_id", "invalid", "An issue cannot block itself")
        if blocking.number in parents:
            raise validation_failed("IssueDependency", "issue_id", "already_exists", "Dependency already exists")
        parents.append(blocking.number)
    return Reply(201, ctx.render.issue(blocking))


@endpoint(f"{_DOCS}#remove-dependency-an-issue-is-blocked-by")
async def remove_blocked_by(ctx: Ctx) -> Reply:
    require_repo(ctx)
    issue = ctx.backend.tracker.require_issue(ctx.number())
    blocking = _by_database_id(ctx, ctx.number("issue_id"))
    state = ctx.backend.state
    with state.lock:
        parents = state.blocked_by.get(issue.number, [])
        if blocking.number not in parents:
            raise not_found()
        parents.remove(blocking.number)
    return Reply(data=ctx.render.issue(blocking))


routes = [
    Route(f"{ISSUE}/dependencies/blocked_by", list_blocked_by, methods=["GET"]),
    Route(f"{ISSUE}/dependencies/blocked_by", add_blocked_by, methods=["POST"]),
    Route(f"{ISSUE}/dependencies/blocked_by/{{issue_id:int}}", remove_blocked_by, methods=["DELETE"]),
    Route(f"{ISSUE}/dependencies/blocking", list_blocking, methods=["GET"]),
]
