"""``POST /webhooks/github``: GitHub's deliveries, verified before they are read.

The ``X-Hub-Signature-256`` HMAC is checked over the raw body before it is parsed; without a configured secret
every delivery is refused (503), never trusted. A delivery id seen before is answered ``duplicate`` and not
acted on. The reply comes at once (202 ``accepted``); the action runs after it, so a slow store never makes
GitHub's 10-second timeout. Who may act, and from which repository: :mod:`octoqueue.api.chatops_access`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from octoqueue.api.context import Runtime, RuntimeDep
from octoqueue.api.issue_commands import Command, Ignored, execute, plan
from octoqueue.api.models import errors

log = logging.getLogger("octoqueue.api.webhooks")

router = APIRouter(tags=["webhooks"])


class WebhookReply(BaseModel):
    status: Literal["pong", "ignored", "duplicate", "accepted"]
    delivery: str | None = None
    action: str | None = None
    job_id: int | None = None
    reason: str | None = None


def signature(secret: str, body: bytes) -> str:
    """``sha256=`` + the hex HMAC-SHA256 of ``body``: what GitHub sends in ``X-Hub-Signature-256``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode("ascii", "replace"))


def _admit(runtime: Runtime, decision: Command, payload: dict[str, Any]) -> Command | Ignored:
    """The command, if it comes from the jobs' repository and from someone who may ask it (may ask GitHub)."""
    wrong = runtime.access.wrong_repository(payload)
    if wrong is not None:
        return Ignored(wrong)
    if decision.needs_write:
        refused = runtime.access.refusal(decision.user, decision.association, payload)
        if refused is not None:
            return Ignored(refused)
    return decision


def _run(runtime: Runtime, command: Command, event: str) -> None:
    outcome = execute(runtime.queue, command)
    runtime.metrics.webhooks.labels(event, outcome).inc()
    log.info("webhook: %s job %d for @%s: %s", command.kind, command.job_id, command.actor, outcome)


@router.post(
    "/webhooks/github",
    response_model=WebhookReply,
    responses={
        202: {"model": WebhookReply, "description": "Accepted; the action runs after the reply."},
        **errors(400, 401, 413, 503),
    },
)
async def github_webhook(
    request: Request,
    background: BackgroundTasks,
    runtime: RuntimeDep,
    x_github_event: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header(max_length=100)] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> Any:
    """Receive a GitHub webhook (events ``issues``, ``issue_comment``, ``ping``), signed with the secret in
    ``GITHUB_WEBHOOK_SECRET``."""
    secret = runtime.settings.webhook_secret
    if secret is None or not secret.get_secret_value():
        runtime.metrics.webhooks.labels(x_github_event or "unknown", "no-secret").inc()
        raise HTTPException(503, detail="Webhooks are disabled: GITHUB_WEBHOOK_SECRET is not configured")
    raw = await request.body()
    if not verify(secret.get_secret_value(), raw, x_hub_signature_256):
        runtime.metrics.webhooks.labels(x_github_event or "unknown", "bad-signature").inc()
        detail = "Missing X-Hub-Signature-256" if not x_hub_signature_256 else "Invalid signature"
        raise HTTPException(401, detail=detail)
    if not x_github_event or not x_github_delivery:
        raise HTTPException(400, detail="Missing X-GitHub-Event or X-GitHub-Delivery")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep to parse
        raise HTTPException(400, detail="The delivery body is not JSON") from None
    if not isinstance(payload, dict):
        raise HTTPException(400, detail="The delivery body is not a JSON object")
    event, delivery = x_github_event, x_github_delivery
    if event == "ping":
        runtime.metrics.webhooks.labels(event, "pong").inc()
        return WebhookReply(status="pong", delivery=delivery)

    decision = plan(event, payload, runtime.queue.store.labels)
    if isinstance(decision, Command):
        decision = await run_in_threadpool(_admit, runtime, decision, payload)
    persist = isinstance(decision, Command)
    first = await run_in_threadpool(runtime.deliveries.first_time, delivery, persist=persist)
    if not first:
        runtime.metrics.webhooks.labels(event, "duplicate").inc()
        return WebhookReply(status="duplicate", delivery=delivery)
    if isinstance(decision, Ignored):
        runtime.metrics.webhooks.labels(event, "ignored").inc()
        return WebhookReply(status="ignored", delivery=delivery, reason=decision.reason)
    background.add_task(_run, runtime, decision, event)
    reply = WebhookReply(status="accepted", delivery=delivery, action=decision.kind, job_id=decision.job_id)
    return JSONResponse(reply.model_dump(), status_code=202, background=background)


__all__ = ["WebhookReply", "router", "signature", "verify"]
