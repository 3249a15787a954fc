"""Regular expressions of job schemas run on RE2, whose time is linear in the text, never on Python's ``re``.

Python's ``re`` backtracks: ``^(a+)+$`` takes seconds on 28 characters, so one schema ``pattern`` (or
``patternProperties`` key, or a ``format: regex`` value) could stall the server. jsonschema calls ``re.search``
for those keywords; :func:`install` points those calls at RE2 (the ``google-re2`` package). Patterns RE2 cannot
run (backreferences, lookaround) are refused when a schema is set (:func:`compile_pattern` raises
:class:`UnsafePattern`).
"""

from __future__ import annotations

import functools
import re
import types
from typing import Any

import re2
from jsonschema import FormatChecker

#: Memory RE2 may use for one pattern: a pattern needing more (``(a{500}){500}``) is refused, not run slowly.
MAX_PATTERN_MEMORY = 8 << 20


class UnsafePattern(ValueError):
    """A pattern that RE2 cannot run in linear time (or cannot parse)."""


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled by RE2; :class:`UnsafePattern` when RE2 refuses it."""
    options = re2.Options()
    options.max_mem = MAX_PATTERN_MEMORY
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise UnsafePattern(f"{pattern!r} is not a pattern octoqueue can run in linear time (RE2: {exc})") from None


def search(pattern: str, string: str, flags: int = 0) -> Any:
    """``re.search`` on RE2 (jsonschema passes no flags)."""
    return compile_pattern(pattern).search(string)


def _is_regex(instance: object) -> bool:
    return not isinstance(instance, str) or compile_pattern(instance) is not None


def format_checker(base: FormatChecker) -> FormatChecker:
    """``base`` with ``format: regex`` checked by RE2 (a value RE2 cannot compile is not a usable regex)."""
    checker = FormatChecker(formats=())
    checker.checkers = {**base.checkers, "regex": (_is_regex, UnsafePattern)}
    return checker


def _re_with_re2_search() -> types.ModuleType:
    shim = types.ModuleType("octoqueue_re2")
    shim.__dict__.update({name: getattr(re, name) for name in re.__all__})
    shim.search = search  # type: ignore[attr-defined]
    return shim


def install() -> None:
    """Make jsonschema's keywords (``pattern``, ``patternProperties``, ``additionalProperties``,
    ``unevaluatedProperties``, the legacy drafts') search with RE2. Idempotent; affects the whole process."""
    from jsonschema import _keywords, _legacy_keywords, _utils

    shim = _re_with_re2_search()
    for module in (_keywords, _legacy_keywords, _utils):
        if getattr(module, "re", None) is not shim and getattr(module.re, "__name__", "") != shim.__name__:
            module.re = shim  # type: ignore[attr-defined]


__all__ = ["MAX_PATTERN_MEMORY", "UnsafePattern", "compile_pattern", "format_checker", "install", "search"]
