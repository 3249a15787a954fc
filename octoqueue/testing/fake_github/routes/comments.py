"""Issue comments: per issue, per id, and repository-wide."""

from __future__ import annotations

from starlette.routing import Route

from octoqueue.testing.fake_github.errors import invalid_request
from octoqueue.testing.fake_github.pipeline import Ctx, Reply, endpoint
from octoqueue.testing.fake_github.routes.issues import ISSUE, since_param
from octoqueue.testing.fake_github.routes.meta import REPO, require_repo

_DOCS = "https://docs.github.com/rest/issues/comments"
COMMENT = f"{REPO}/issues/comments/{{comment_id:int}}"


async def _body(ctx: Ctx) -> str:
    body = await ctx.json_object()
    if "body" not in body:
        raise invalid_request('"body" wasn\'t supplied.')
    return body["body"]


@endpoint(f"{_DOCS}#list-issue-comments-for-a-repository")
async def list_repo_comments(ctx: Ctx) -> Reply:
    require_repo(ctx)
    sort = ctx.choice("sort", ("created", "updated"), "created")
    direction = ctx.choice("direction", ("asc", "desc"), "asc")
    found = ctx.backend.tracker.list_comments(since=since_param(ctx))
    key = "created_at" if sort == "created" else "updated_at"
    found.sort(key=lambda c: (getattr(c, key), c.id), reverse=direction == "desc")
    return ctx.page(found, ctx.render.comment)


@endpoint(f"{_DOCS}#list-issue-comments")
async def list_comments(ctx: Ctx) -> Reply:
    require_repo(ctx)
    tracker, number = ctx.backend.tracker, ctx.number()
    view = ctx.backend.replica.view()
    tracker.require_issue(number, view)
    return ctx.page(tracker.list_comments(number, since=since_param(ctx), view=view), ctx.render.comment)


@endpoint(f"{_DOCS}#create-an-issue-comment")
async def create_comment(ctx: Ctx) -> Reply:
    require_repo(ctx)
    comment = ctx.backend.tracker.create_comment(ctx.origin, ctx.number(), await _body(ctx))
    data = ctx.render.comment(comment)
    return Reply(201, data, {"location": data["url"]})


@endpoint(f"{_DOCS}#get-an-issue-comment")
async def get_comment(ctx: Ctx) -> Reply:
    require_repo(ctx)
    comment = ctx.backend.tracker.require_comment(ctx.number("comment_id"))
    return Reply(data=ctx.render.comment(comment), last_modified=comment.updated_at)


@endpoint(f"{_DOCS}#update-an-issue-comment")
async def update_comment(ctx: Ctx) -> Reply:
    require_repo(ctx)
    comment = ctx.backend.tracker.update_comment(ctx.origin, ctx.number("comment_id"), await _body(ctx))
    return Reply(data=ctx.render.comment(comment))


@endpoint(f"{_DOCS}#delete-an-issue-comment")
async def delete_comment(ctx: Ctx) -> Reply:
    require_repo(ctx)
    ctx.backend.tracker.delete_comment(ctx.origin, ctx.number("comment_id"))
    return Reply(204)


routes = [
    Route(f"{REPO}/issues/comments", list_repo_comments, methods=["GET"]),
    Route(COMMENT, get_comment, methods=["GET"]),
    Route(COMMENT, update_comment, methods=["PATCH"]),
    Route(COMMENT, delete_comment, methods=["DELETE"]),
    Route(f"{ISSUE}/comments", list_comments, methods=["GET"]),
    Route(f"{ISSUE}/comments", create_comment, methods=["POST"]),
]
