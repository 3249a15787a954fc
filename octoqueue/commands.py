"""ChatOps command syntax: which comment lines are commands, and how octoqueue writes text that holds none.

A command is ``/requeue``, ``/retry`` or ``/cancel`` at the start of a line (after blanks). octoqueue posts
comments as the store's account, which has write access, and those comments carry text nobody vetted (a job's
error, a worker's note): :func:`defuse` escapes every line that could start a command, so no comment octoqueue
writes can ever be read as one. The backslash is a Markdown escape: GitHub renders the text unchanged.
"""

from __future__ import annotations

import re

COMMANDS = ("requeue", "retry", "cancel")
_COMMAND_RE = re.compile(r"^[ \t]*/(requeue|retry|cancel)\b", re.MULTILINE | re.IGNORECASE)
# Broader than a command on purpose: any slash that opens a line, after any blank, with any line break.
_LINE_SLASH_RE = re.compile(r"(\A|[\r\n\u2028\u2029\x85\x0b\x0c])([^\S\r\n]*)/")


def parse_command(text: str | None) -> str | None:
    """The first ``/requeue``, ``/retry`` or ``/cancel`` at the start of a line, normalised; else None."""
    match = _COMMAND_RE.search(text or "")
    if match is None:
        return None
    word = match.group(1).lower()
    return "requeue" if word == "retry" else word


def defuse(text: str) -> str:
    r"""``text`` with every line that opens with ``/`` escaped (``\/``), so that no line of it is a command."""
    return _LINE_SLASH_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}\\/", text)


__all__ = ["COMMANDS", "defuse", "parse_command"]
