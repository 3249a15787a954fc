"""Repository labels (``/repos/{o}/{r}/labels``)."""

from __future__ import annotations

from starlette.routing import Route

from octoqueue.testing.fake_github.errors import invalid_request
from octoqueue.testing.fake_github.pipeline import Ctx, Reply, endpoint
from octoqueue.testing.fake_github.routes.meta import REPO, require_repo

_DOCS = "https://docs.github.com/rest/issues/labels"


@endpoint(f"{_DOCS}#list-labels-for-a-repository")
async def list_labels(ctx: Ctx) -> Reply:
    require_repo(ctx)
    st = ctx.backend.state
    with st.lock:
        labels = sorted(st.labels.values(), key=lambda label: label.name.lower())
    return ctx.page(labels, ctx.render.label)


@endpoint(f"{_DOCS}#create-a-label")
async def create_label(ctx: Ctx) -> Reply:
    require_repo(ctx)
    body = await ctx.json_object()
    if "name" not in body:
        raise invalid_request('"name" wasn\'t supplied.')
    label = ctx.backend.tracker.create_label(body["name"], body.get("color"), body.get("description"))
    return Reply(201, ctx.render.label(label), {"location": ctx.render.label(label)["url"]})


@endpoint(f"{_DOCS}#get-a-label")
async def get_label(ctx: Ctx) -> Reply:
    require_repo(ctx)
    return Reply(data=ctx.render.label(ctx.backend.tracker.require_label(ctx.param("name"))))


@endpoint(f"{_DOCS}#update-a-label")
async def update_label(ctx: Ctx) -> Reply:
    require_repo(ctx)
    body = await ctx.json_object()
    label = ctx.backend.tracker.update_label(ctx.param("name"), body)
    return Reply(data=ctx.render.label(label))


@endpoint(f"{_DOCS}#delete-a-label")
async def delete_label(ctx: Ctx) -> Reply:
    require_repo(ctx)
    ctx.backend.tracker.delete_label(ctx.param("name"))
    return Reply(204)


routes = [
    Route(f"{REPO}/labels", list_labels, methods=["GET"]),
    Route(f"{REPO}/labels", create_label, methods=["POST"]),
    Route(f"{REPO}/labels/{{name:path}}", get_label, methods=["GET"]),
    Route(f"{REPO}/labels/{{name:path}}", update_label, methods=["PATCH"]),
    Route(f"{REPO}/labels/{{name:path}}", delete_label, methods=["DELETE"]),
]
