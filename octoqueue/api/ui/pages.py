"""The dashboard's pages at ``/ui``: overview, job list, job detail, actions, login, live updates.

Server-rendered with Jinja2 (autoescaping on: titles, data, comments and errors come from strangers), one small
script for live updates over server-sent events, assets served from the package, and a Content-Security-Policy
that allows nothing else. Reading follows the API's rule (open unless ``OCTOQUEUE_OPEN_READS=false``, then any
logged-in key); actions need a logged-in admin key (or no key configured at all) and a CSRF token.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from octoqueue.api.context import Runtime
from octoqueue.api.ratelimit import RateLimiter, client_identity
from octoqueue.api.ui.history import CountHistory, sparkline
from octoqueue.api.ui.sessions import (
    LOGIN_FAILURE_WINDOW,
    LOGIN_FAILURES,
    SESSION_COOKIE,
    Sessions,
    Viewer,
    set_csrf_cookie,
    set_session_cookie,
    viewer,
)
from octoqueue.errors import JobNotFound, OctoqueueError
from octoqueue.job import Job
from octoqueue.pauses import Pauses
from octoqueue.states import FINISHED, JobState, queue_label

HERE = Path(__file__).parent
STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
FLASH_COOKIE = "oq_flash"
STALE_FORM = "The form is stale or came from another site (CSRF token missing or wrong)."
PAGE_SIZE = 50
#: Pages of the store a text or type filter looks through before it answers with what it found.
SCAN_PAGES = 10

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), auto_reload=False
)
router = APIRouter(prefix="/ui", include_in_schema=False)


class Dashboard:
    """What the pages share: the runtime, the login sessions and the sampled counts."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.sessions = Sessions()
        self.failed_logins = RateLimiter(LOGIN_FAILURES, LOGIN_FAILURE_WINDOW)
        # Counts at most every 2 s, and no oftener than ten times a waiter's poll of the store: on GitHub (2 s polls)
        # that is every 20 s, so live viewers cost the rate limit a few hundred requests an hour, not thousands.
        every = max(2.0, 10 * runtime.queue.store.wait_poll_interval)
        self.history = CountHistory(runtime.queue.counts, every=every)


def _dashboard(request: Request) -> Dashboard:
    runtime: Runtime | None = request.app.state.runtime
    if runtime is None:
        raise OctoqueueError("the server is starting or stopping")
    board: Dashboard | None = getattr(request.app.state, "dashboard", None)
    if board is None or board.runtime is not runtime:
        board = request.app.state.dashboard = Dashboard(runtime)
    return board


Board = Annotated[Dashboard, Depends(_dashboard)]


def _viewer(request: Request, board: Dashboard) -> Viewer:
    return viewer(request, request.app.state.keys, board.sessions, board.runtime.settings.open_reads)


def _page(request: Request, board: Dashboard, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    who = _viewer(request, board)
    token = board.sessions.csrf_token(request)
    flashed = request.cookies.get(FLASH_COOKIE)
    if flashed and "message" not in context:
        context["message"] = flashed[:500]
    html = templates.get_template(template).render(
        viewer=who, csrf=token, keys_enabled=request.app.state.keys.enabled, live_url="/ui/events", **context
    )
    response = HTMLResponse(html, status_code=status)
    _secure(response)
    set_csrf_cookie(request, response, token)
    if flashed:
        response.delete_cookie(FLASH_COOKIE, path="/ui")
    return response


def _flash(response: Response, message: str) -> Response:
    """Show ``message`` on the next page (a cookie, not the URL: no link can put words in the dashboard's mouth)."""
    response.set_cookie(FLASH_COOKIE, message[:500], max_age=60, path="/ui", httponly=True, samesite="strict")
    return response


def _secure(response: Response) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/ui/login?" + urlencode({"next": target}), status_code=303)


def _safe_next(target: str | None) -> str:
    """Only a path of this dashboard: never another site (an open redirect)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui"


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _paused_text(pauses: Pauses) -> str:
    """What is paused, for people ('' when nothing is)."""
    parts = ["the whole queue"] if pauses.queue is not None else []
    parts += [f"label {name}" for name in sorted(pauses.labels)]
    return ", ".join(parts)


def _when(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M %Z") if moment else None


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


# -- pages ----------------------------------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
async def overview(request: Request, board: Board) -> Response:
    who = _viewer(request, board)
    if not who.can_read:
        return _to_login(request)
    queue = board.runtime.queue

    def gather() -> dict[str, Any]:
        sample = board.history.latest()
        oldest = queue.store.list_jobs(states=[JobState.PENDING], limit=1).jobs
        try:
            schedules = board.runtime.schedules()
        except OctoqueueError:
            schedules = []
        return {
            "sample": sample,
            "oldest": oldest[0] if oldest else None,
            "schedules": schedules,
            "paused": _paused_text(queue.pauses.current()),
        }

    found = await run_in_threadpool(gather)
    now = queue.store.now()
    counts = [(state.value, found["sample"].counts.get(state, 0)) for state in JobState]
    charts = [
        {
            "state": state.value,
            "points": sparkline(board.history.series(state)),
            "now": found["sample"].counts.get(state, 0),
        }
        for state in (JobState.PENDING, JobState.PROCESSING, JobState.COMPLETED, JobState.FAILED)
    ]
    schedules = [
        {
            "id": s.id,
            "cron": s.cron,
            "timezone": s.timezone,
            "next": _when(s.next_run(now) if s.enabled else None),
            "last": _when(s.last_run),
        }
        for s in found["schedules"]
    ]
    oldest = found["oldest"]
    return _page(
        request,
        board,
        "overview.html",
        page="overview",
        counts=counts,
        charts=charts,
        schedules=schedules,
        paused=found["paused"],
        oldest=oldest,
        oldest_age=_ago(oldest.created_at, now) if oldest else None,
        can_act=who.can_act,
        rates={
            "completed": _rate(board.history.per_minute(JobState.COMPLETED)),
            "failed": _rate(board.history.per_minute(JobState.FAILED)),
        },
        store_url=queue.store.url if who.can_act else None,
    )


def _matches(job: Job, kind: str | None, text: str | None) -> bool:
    if kind and job.type != kind:
        return False
    if text:
        needle = text.casefold()
        haystack = job.title + "\n" + json.dumps(job.data, ensure_ascii=False, default=str)
        return needle in haystack.casefold()
    return True


@router.get("/jobs", response_class=HTMLResponse)
async def jobs(
    request: Request,
    board: Board,
    state: Annotated[str | None, Query(max_length=20)] = None,
    label: Annotated[str | None, Query(max_length=50)] = None,
    queue: Annotated[str | None, Query(max_length=50)] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    who = _viewer(request, board)
    if not who.can_read:
        return _to_login(request)
    store = board.runtime.queue.store
    states = [JobState(state)] if state in {s.value for s in JobState} else None
    labels = [name for name in (label, queue_label(queue) if queue else None) if name]

    def scan() -> tuple[list[Job], str | None]:
        found: list[Job] = []
        at = cursor
        for _ in range(SCAN_PAGES if (type or q) else 1):
            page = store.list_jobs(states=states, labels=labels, cursor=at, limit=PAGE_SIZE)
            found.extend(job for job in page.jobs if _matches(job, type, q))
            at = page.cursor
            if at is None or len(found) >= PAGE_SIZE:
                break
        return found, at

    try:
        found, next_cursor = await run_in_threadpool(scan)
    except (OctoqueueError, ValueError) as exc:  # a stale or forged cursor, a label the store refuses
        return _page(
            request,
            board,
            "jobs.html",
            status=400,
            page="jobs",
            jobs=[],
            states=[s.value for s in JobState],
            filters={},
            message=f"Cannot list: {exc}",
            scanned_all=True,
            next_url=None,
        )
    filters = {"state": state, "label": label, "queue": queue, "type": type, "q": q}
    next_url = None
    if next_cursor:
        next_url = "/ui/jobs?" + urlencode({**{k: v for k, v in filters.items() if v}, "cursor": next_cursor})
    context: dict[str, Any] = {"jobs": found, "next_url": next_url, "scanned_all": next_cursor is None}
    if request.headers.get("X-Partial") == "table":
        response = HTMLResponse(templates.get_template("_table.html").render(**context))
        _secure(response)
        return response
    return _page(
        request, board, "jobs.html", page="jobs", states=[s.value for s in JobState], filters=filters, **context
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(request: Request, board: Board, job_id: Annotated[int, PathParam(ge=1, le=2**53)]) -> Response:
    who = _viewer(request, board)
    if not who.can_read:
        return _to_login(request)
    queue = board.runtime.queue
    try:
        job = await run_in_threadpool(queue.get, job_id)
    except JobNotFound as exc:
        return _page(request, board, "base.html", status=404, page="jobs", message=str(exc))
    if request.headers.get("X-Partial") == "state":
        return PlainTextResponse(job.status or "no status label")
    comments = await run_in_threadpool(queue.comments, job_id)
    timeline: list[dict[str, Any]] = [
        {"at": job.created_at, "who": "created", "text": f"{job.title} (max {job.max_attempts} attempts)"}
    ]
    timeline += [{"at": c.created_at, "who": c.author or "comment", "text": c.body} for c in comments]
    timeline.sort(key=lambda event: event["at"])
    timeline.append(
        {"at": job.updated_at, "who": "state now", "text": f"{job.status or 'no status'}, attempt {job.attempt}"}
    )
    used = f"{job.attempt} ({job.attempts_used} of {job.max_attempts} used)"
    record = [
        ("state", job.status or "-"),
        ("open", job.open),
        ("type", job.type or "-"),
        ("priority", job.priority),
        ("labels", ", ".join(job.labels) or "-"),
        ("attempt", used),
        ("run at", job.run_at or "-"),
        ("worker", job.worker or "-"),
        ("lease until", job.lease_expires_at or "-"),
        ("timeout", job.timeout or "-"),
        ("idempotency key", job.idempotency_key or "-"),
        ("created", job.created_at),
        ("updated", job.updated_at),
    ]
    url = job.url if job.url and job.url.startswith(("https://", "http://")) else None
    return _page(
        request,
        board,
        "job.html",
        page="jobs",
        job=job,
        data=_pretty(job.data),
        result=_pretty(job.result),
        record=record,
        timeline=timeline,
        issue_url=url,
        can_act=who.can_act,
    )


# -- actions --------------------------------------------------------------------------------------------------------
async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    return {key: values[-1] for key, values in parsed.items()}


def _refused(request: Request, why: str, status: int = 403) -> Response:
    response = PlainTextResponse(why, status_code=status)
    _secure(response)
    return response


async def _checked(request: Request, board: Dashboard) -> dict[str, str] | Response:
    """The submitted form when the viewer may act and the CSRF token holds; else the refusal."""
    form = await _form(request)
    if not board.sessions.csrf_ok(request, form.get("csrf")):
        return _refused(request, STALE_FORM)
    if not _viewer(request, board).can_act:
        return _refused(request, "Log in with an admin key to change jobs.")
    return form


@router.post("/jobs/{job_id}/{action}")
async def act(
    request: Request,
    board: Board,
    job_id: Annotated[int, PathParam(ge=1, le=2**53)],
    action: Annotated[str, PathParam(pattern="^(requeue|cancel)$")],
) -> Response:
    form = await _checked(request, board)
    if isinstance(form, Response):
        return form
    queue = board.runtime.queue
    how = queue.requeue if action == "requeue" else queue.cancel
    try:
        job = await run_in_threadpool(how, job_id, f"{action.capitalize()}d from the dashboard")
        message = f"Job {job.id} is {job.status} now."
    except OctoqueueError as exc:
        message = f"Could not {action} job {job_id}: {exc}"
    return _flash(RedirectResponse(f"/ui/jobs/{job_id}", status_code=303), message)


@router.post("/clear")
async def clear(request: Request, board: Board) -> Response:
    form = await _checked(request, board)
    if isinstance(form, Response):
        return form
    try:
        days = float(form.get("days", "7"))
        if not 0 <= days <= 3650:
            raise ValueError
    except ValueError:
        return _refused(request, "days must be a number from 0 to 3650", status=400)
    removed = await run_in_threadpool(board.runtime.queue.clear, days * 86400, FINISHED)
    return _flash(RedirectResponse("/ui", status_code=303), f"Deleted {removed} finished job(s).")


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, board: Board, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    return _page(request, board, "login.html", page="login", next=_safe_next(next))


@router.post("/login")
async def login(request: Request, board: Board) -> Response:
    form = await _form(request)
    if not board.sessions.csrf_ok(request, form.get("csrf")):
        return _refused(request, STALE_FORM)
    client = client_identity(request, request.app.state.keys, None)  # the IP: failures are counted per client
    blocked = board.failed_logins.check(client)
    if not blocked.allowed:
        refused = _refused(request, "Too many failed logins from here; try again in a few minutes.", status=429)
        refused.headers["Retry-After"] = str(max(1, math.ceil(blocked.retry_after)))
        return refused
    principal = request.app.state.keys.identify(form.get("key") or None)
    if principal is None:
        board.failed_logins.hit(client)
        return _page(
            request,
            board,
            "login.html",
            status=401,
            page="login",
            next=_safe_next(form.get("next")),
            message="That key is not one of this server's.",
        )
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    set_session_cookie(request, response, board.sessions.open(principal))
    return response


@router.post("/logout")
async def logout(request: Request, board: Board) -> Response:
    form = await _form(request)
    if not board.sessions.csrf_ok(request, form.get("csrf")):
        return _refused(request, STALE_FORM)
    board.sessions.close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/ui", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


# -- live updates and assets -------------------------------------------------------------------------------------
@router.get("/events")
async def events(request: Request, board: Board) -> Response:
    """Server-sent events: the counts per state every interval of the shared count history (2 s; 20 s on GitHub)."""
    if not _viewer(request, board).can_read:
        return _refused(request, "Log in to watch the queue.", status=401)

    async def stream() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        while not await request.is_disconnected():
            try:
                sample = await run_in_threadpool(board.history.latest)
                pauses = await run_in_threadpool(board.runtime.queue.pauses.current)  # cached: a read per 5 s
            except OctoqueueError:
                await asyncio.sleep(board.history.every)
                continue
            payload = {
                "counts": {state.value: sample.counts.get(state, 0) for state in JobState},
                "paused": pauses.as_dict(),
                "rates": {s.value: _rate(board.history.per_minute(s)) for s in (JobState.COMPLETED, JobState.FAILED)},
                "at": time.time(),
            }
            yield f"event: counts\ndata: {json.dumps(payload)}\n\n"
            await asyncio.sleep(board.history.every)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/static/{name}")
async def static(name: Annotated[str, PathParam(max_length=40)]) -> Response:
    media = STATIC.get(name)
    if media is None:  # only the files named above: no path ever reaches the file system from a request
        return PlainTextResponse("Not found", status_code=404)
    response = Response((HERE / "static" / name).read_bytes(), media_type=media)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
