"""Refuse JSON bodies in which an object names a key twice (422, naming the key), for every route at once.

``{"priority": 0, "priority": 4}`` means different things to different parsers (Python keeps the last, others the
first or refuse): a proxy or a signature checker may see another request than the server. The body (already
limited in size by :class:`~octoqueue.api.bodylimit.BodyLimitMiddleware`) is parsed once more here with a hook that
spots repeated keys; bodies that are not JSON, or not valid JSON, are left to the route to refuse.
"""

from __future__ import annotations

import email.message
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def repeated_key(body: bytes) -> str | None:
    """The first key some object of the JSON ``body`` repeats; None when none does (or it is not JSON)."""
    try:
        json.loads(body, object_pairs_hook=_no_repeats)
    except DuplicateKey as exc:
        return exc.key
    except (ValueError, RecursionError):
        return None
    return None


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would parse this body as JSON: no content type, ``application/json`` or ``+json``."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            message = email.message.Message()
            message["content-type"] = value.decode("latin-1")
            subtype = message.get_content_subtype()
            return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))
    return True


class DuplicateKeyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        key = repeated_key(b"".join(chunks))
        if key is not None:
            await _refuse(send, key)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, key: str) -> None:
    key = key if len(key) <= 100 else key[:100] + "..."
    problem = {
        "type": "json_invalid",
        "loc": ["body"],
        "msg": f"Duplicate key {key!r} in a JSON object: give each key once",
        "input": {},
        "ctx": {"key": key},
    }
    body = json.dumps({"detail": [problem]}, ensure_ascii=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["DuplicateKeyMiddleware", "repeated_key"]
