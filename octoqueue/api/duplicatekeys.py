"""Refuse JSON bodies in which an object names a key twice (422, naming the key), for every route at once.

``{"priority": 0, "priority": 4}`` means different things to different parsers (Python keeps the last, others the
first or refuse): a proxy or a signature checker may see another request than the server. The body (already
limited in size by :class:`~octoqueue.api.bodylimit.BodyLimitMiddleware`) is parsed once more here with a hook that
spots repeated keys; bodies that are not JSON, or not valid JSON, are left to the route to refuse. What that parse
gives is left in the scope (:func:`parsed_body`), so a route that takes it need not parse the body again.
"""

from __future__ import annotations

import email.message
import functools
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


#: Where the middleware leaves ``(body, value)``: the body it read and the JSON value parsed from it.
_PARSED = "octoqueue.parsed_body"


@functools.lru_cache(maxsize=64)
def is_json_type(content_type: bytes) -> bool:
    """Whether FastAPI parses a body of this ``Content-Type`` as JSON: ``application/json`` or ``+json``, any
    parameters (parsed as FastAPI does; the answer is kept for the next request with the same header)."""
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would parse this body as JSON: no content type, ``application/json`` or ``+json``."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return is_json_type(value)
    return True


def parsed_body(scope: Scope, body: bytes) -> tuple[bool, Any]:
    """``(True, value)`` when the middleware parsed ``body`` (the bytes the route read) as JSON without repeated
    keys; ``(False, None)`` when it did not parse these bytes (not JSON, or another body)."""
    parsed = scope.get(_PARSED)
    if parsed is None or parsed[0] != body:
        return False, None
    return True, parsed[1]


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
        body = b"".join(chunks)
        try:
            value = json.loads(body, object_pairs_hook=_no_repeats)
        except DuplicateKey as exc:
            await _refuse(send, exc.key)
            return
        except (ValueError, RecursionError):
            pass  # not JSON: the route refuses it as it would have
        else:
            scope[_PARSED] = (body, value)

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


__all__ = ["DuplicateKeyMiddleware", "is_json_type", "parsed_body"]
