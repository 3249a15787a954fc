"""The issue body: the original Octoqueue's fenced JSON block plus octoqueue's hidden metadata.

::

    ```json
    {"data": "example"}
    ```

    <!-- octoqueue:meta {"attempt":1,"max_attempts":3} -->

The metadata sits in an HTML comment, which GitHub does not render, at the end of the body, so a person editing the
issue sees only the data. Bodies written by the original Octoqueue (no metadata) parse as attempt 0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from octoqueue.errors import InvalidJobData, JobTooLarge

#: GitHub rejects issue bodies and comments longer than this (422 "body is too long").
MAX_BODY_CHARS = 65_536

_META_RE = re.compile(r"<!--\s*octoqueue:meta\s*(\{.*?\})\s*-->", re.DOTALL)
_OPEN_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*(json|JSON)?[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class ParsedBody:
    data: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def render(data: Any, meta: dict[str, Any]) -> str:
    """The issue body for ``data`` and ``meta``; raises :class:`JobTooLarge` past GitHub's limit."""
    try:
        text = json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidJobData(f"job data is not JSON-serialisable: {exc}") from exc
    fence = "```"
    while fence in text:  # a string value with a line of backticks cannot close the block early
        fence += "`"
    meta_text = json.dumps(meta, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    meta_text = meta_text.replace("--", "-\\u002d")  # "-->" would end the HTML comment
    body = f"{fence}json\n{text}\n{fence}\n\n<!-- octoqueue:meta {meta_text} -->\n"
    if len(body) > MAX_BODY_CHARS:
        raise JobTooLarge(
            f"the job body is {len(body):,} characters; GitHub issue bodies hold at most {MAX_BODY_CHARS:,}"
        )
    return body


def parse(body: str | None) -> ParsedBody:
    """Read data and metadata from an issue body. Never raises: a broken body comes back with ``error`` set."""
    text = body or ""
    meta: dict[str, Any] = {}
    matches = list(_META_RE.finditer(text))
    if matches:
        last = matches[-1]
        try:
            loaded = json.loads(last.group(1))
            if isinstance(loaded, dict):
                meta = loaded
        except (ValueError, RecursionError):  # bad JSON, an integer too long to convert, nesting too deep
            meta = {}
        text = text[: last.start()] + text[last.end() :]
    payload = _fenced_payload(text)
    if payload is None:
        payload = text.strip()
        if not payload:
            return ParsedBody(None, meta, "the issue body holds no job data (expected a ```json block)")
    try:
        return ParsedBody(json.loads(payload), meta, None)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError, as is a too-long integer
        return ParsedBody(None, meta, f"the job data in the issue body is not valid JSON: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _fenced_payload(text: str) -> str | None:
    opening = _OPEN_FENCE_RE.search(text)
    if opening is None:
        return None
    fence = opening.group(1)
    rest = text[opening.end() :]
    closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
    ends = list(closing.finditer(rest))
    if not ends:
        return rest
    # The last closing fence: JSON cannot hold a bare line of backticks outside a string, and strings
    # cannot span lines, so everything up to the last fence belongs to the payload.
    return rest[: ends[-1].start()]
