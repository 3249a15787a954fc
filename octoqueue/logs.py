"""One logging configuration for every octoqueue process: the CLI's commands, the server and uvicorn's own loggers.

Lines go to stderr, as text (``time LEVEL logger: message``) or, with ``json``, one JSON object per line
(``time``, ``level``, ``logger``, ``message``, ``exception`` when there is one, and any ``extra=`` fields).
HTTP client libraries log every request at INFO; here those lines are DEBUG, shown only with ``--log-level debug``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: uvicorn's level below DEBUG.
TRACE = 5
#: Loggers whose per-request INFO lines are demoted to DEBUG.
CHATTY_LOGGERS = ("httpx", "httpcore")
#: uvicorn's loggers: their handlers go, so that their lines take the root's one format.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_STANDARD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_FIELDS and not name.startswith("_"):
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _DemoteToDebug(logging.Filter):
    """INFO records become DEBUG records, kept only when DEBUG is shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno = logging.DEBUG
            record.levelname = logging.getLevelName(logging.DEBUG)
        return logging.getLogger().isEnabledFor(record.levelno)


class _OctoqueueHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs (and replaces when called again)."""


_DEMOTE = _DemoteToDebug()


def level_number(level: str) -> int:
    """``info`` -> logging.INFO; ``trace`` (uvicorn's) -> 5."""
    name = level.strip().lower()
    if name not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    return TRACE if name == "trace" else int(logging.getLevelName(name.upper()))


def configure_logging(level: str = "info", fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Send every logger's records at ``level`` and above to ``stream`` (stderr) in ``fmt`` (text or json)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = _OctoqueueHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OctoqueueHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_number(level))
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    for name in CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if _DEMOTE not in logger.filters:
            logger.addFilter(_DEMOTE)


__all__ = ["LOG_FORMATS", "LOG_LEVELS", "JsonFormatter", "configure_logging", "level_number"]
