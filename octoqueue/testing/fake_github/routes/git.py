"""Git references (``/repos/{o}/{r}/git/...``)."""

from __future__ import annotations

from starlette.routing import Route

from octoqueue.testing.fake_github.errors import GitHubError, invalid_request, not_found
from octoqueue.testing.fake_github.pipeline import Ctx, Reply, endpoint
from octoqueue.testing.fake_github.routes.meta import REPO, require_repo

_DOCS = "https://docs.github.com/rest/git/refs"


@endpoint(f"{_DOCS}#create-a-reference")
async def create_ref(ctx: Ctx) -> Reply:
    require_repo(ctx)
    body = await ctx.json_object()
    for key in ("ref", "sha"):
        if not isinstance(body.get(key), str):
            raise invalid_request(f'"{key}" wasn\'t supplied.')
    ref = body["ref"]
    failure = ctx.backend.faults.ref_failure()
    if failure == "before":
        raise GitHubError(422, "Reference update failed")
    sha = ctx.backend.refs.create(ref, body["sha"])
    if failure == "after":
        raise GitHubError(422, "Reference update failed")  # transient, yet the ref was made
    data = ctx.render.git_ref(ref, sha)
    return Reply(201, data, {"location": data["url"]})


@endpoint(f"{_DOCS}#get-a-reference")
async def get_ref(ctx: Ctx) -> Reply:
    require_repo(ctx)
    short = ctx.param("ref")
    return Reply(data=ctx.render.git_ref(f"refs/{short}", ctx.backend.refs.get(short)))


@endpoint(f"{_DOCS}#list-matching-references")
async def matching_refs(ctx: Ctx) -> Reply:
    require_repo(ctx)
    found = ctx.backend.refs.matching(ctx.param("ref"))
    return Reply(data=[ctx.render.git_ref(ref, sha) for ref, sha in found])


@endpoint(f"{_DOCS}#get-a-reference")
async def legacy_refs(ctx: Ctx) -> Reply:
    """``GET .../git/refs[/{prefix}]``, the older listing: one object on an exact match, else a list."""
    require_repo(ctx)
    prefix = ctx.request.path_params.get("ref", "")
    found = ctx.backend.refs.matching(prefix)
    exact = [(ref, sha) for ref, sha in found if ref == f"refs/{prefix}"]
    if exact:
        return Reply(data=ctx.render.git_ref(*exact[0]))
    if not found and prefix:
        raise not_found()
    return Reply(data=[ctx.render.git_ref(ref, sha) for ref, sha in found])


@endpoint(f"{_DOCS}#update-a-reference")
async def update_ref(ctx: Ctx) -> Reply:
    require_repo(ctx)
    body = await ctx.json_object()
    if "sha" not in body:
        raise invalid_request('"sha" wasn\'t supplied.')
    short = ctx.param("ref")
    sha = ctx.backend.refs.update(short, body["sha"], bool(body.get("force", False)))
    return Reply(data=ctx.render.git_ref(f"refs/{short}", sha))


@endpoint(f"{_DOCS}#delete-a-reference")
async def delete_ref(ctx: Ctx) -> Reply:
    require_repo(ctx)
    ctx.backend.refs.delete(ctx.param("ref"))
    return Reply(204)


routes = [
    Route(f"{REPO}/git/refs", create_ref, methods=["POST"]),
    Route(f"{REPO}/git/refs", legacy_refs, methods=["GET"]),
    Route(f"{REPO}/git/ref/{{ref:path}}", get_ref, methods=["GET"]),
    Route(f"{REPO}/git/matching-refs/{{ref:path}}", matching_refs, methods=["GET"]),
    Route(f"{REPO}/git/refs/{{ref:path}}", legacy_refs, methods=["GET"]),
    Route(f"{REPO}/git/refs/{{ref:path}}", update_ref, methods=["PATCH"]),
    Route(f"{REPO}/git/refs/{{ref:path}}", delete_ref, methods=["DELETE"]),
]
