"""Root, rate limit, the authenticated user, the repository, a user's permission on it, repository_dispatch, and
the 404 fallback."""

from __future__ import annotations

from starlette.routing import Route

from octoqueue.testing.fake_github.errors import GitHubError, invalid_request, not_found
from octoqueue.testing.fake_github.payloads import rate_limit_overview
from octoqueue.testing.fake_github.pipeline import Ctx, Reply, endpoint

REPO = "/repos/{owner}/{repo}"
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def require_repo(ctx: Ctx) -> None:
    """404 unless the path names the emulated repository (owner and name are case-insensitive)."""
    st = ctx.backend.state
    if (ctx.param("owner").lower(), ctx.param("repo").lower()) != (st.owner.lower(), st.name.lower()):
        raise not_found()


@endpoint("https://docs.github.com/rest/meta/meta#github-api-root")
async def root(ctx: Ctx) -> Reply:
    return Reply(data=ctx.render.root())


@endpoint(
    "https://docs.github.com/rest/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user", counted=False
)
async def rate_limit(ctx: Ctx) -> Reply:
    core = ctx.backend.limits.core()
    return Reply(data=rate_limit_overview(core, ctx.backend.state.clock.now()))


@endpoint("https://docs.github.com/rest/users/users#get-the-authenticated-user")
async def authenticated_user(ctx: Ctx) -> Reply:
    if ctx.login is None:
        raise GitHubError(401, "Requires authentication")
    return Reply(data=ctx.render.private_user(ctx.login))


@endpoint("https://docs.github.com/rest/repos/repos#get-a-repository")
async def repository(ctx: Ctx) -> Reply:
    require_repo(ctx)
    return Reply(data=ctx.render.repository(), last_modified=ctx.backend.state.pushed_at)


@endpoint("https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user")
async def collaborator_permission(ctx: Ctx) -> Reply:
    require_repo(ctx)
    if ctx.login is None:
        raise GitHubError(401, "Requires authentication")
    if ctx.backend.state.role(ctx.login) not in ("write", "maintain", "admin"):
        raise GitHubError(403, "Must have push access to view repository collaborators.")
    return Reply(data=ctx.render.permission(ctx.param("username")))


@endpoint("https://docs.github.com/rest/repos/repos#create-a-repository-dispatch-event")
async def dispatch(ctx: Ctx) -> Reply:
    require_repo(ctx)
    body = await ctx.json_object()
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise invalid_request('"event_type" wasn\'t supplied.')
    if len(event_type) > 100:
        raise invalid_request("For 'properties/event_type', the value is longer than 100 characters.")
    client_payload = body.get("client_payload", {})
    if not isinstance(client_payload, dict):
        raise invalid_request(f"For 'properties/client_payload', {client_payload!r} is not an object.")
    if len(client_payload) > 10:
        raise invalid_request("For 'properties/client_payload', no more than 10 properties are allowed.")
    st = ctx.backend.state
    with st.lock:
        st.dispatches.append({"event_type": event_type, "client_payload": client_payload, "sender": ctx.login})
    return Reply(204)


@endpoint("https://docs.github.com/rest")
async def unknown_endpoint(ctx: Ctx) -> Reply:
    raise not_found()


routes = [
    Route("/", root, methods=["GET"]),
    Route("/rate_limit", rate_limit, methods=["GET"]),
    Route("/user", authenticated_user, methods=["GET"]),
    Route(REPO, repository, methods=["GET"]),
    Route(f"{REPO}/dispatches", dispatch, methods=["POST"]),
    Route(f"{REPO}/collaborators/{{username}}/permission", collaborator_permission, methods=["GET"]),
]
fallback = [Route("/{path:path}", unknown_endpoint, methods=_ALL_METHODS)]
