"""The admin's JSON Schema for job data, kept in the store so it survives restarts and every process sees it.

Reads are cached for ``ttl`` seconds (a store read per job would cost a GitHub request each); another process's
change shows within that time.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator

from octoqueue.api import linear_regex, schemaguard
from octoqueue.stores import Store

linear_regex.install()

SETTING = "job_schema"


class InvalidSchema(ValueError):
    """The document is not a usable JSON Schema."""


class SchemaMismatch(ValueError):
    """The job data does not match the schema."""


class CachedSetting:
    """One store setting, read through a short cache. One read at a time goes to the store: callers that miss
    together wait for it and share its answer, so a burst of requests costs one store read (one GitHub request)."""

    def __init__(self, store: Store, key: str, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.key = key
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        self._value: Any = None
        self._fetched: float | None = None

    def _fresh(self) -> tuple[bool, Any]:
        with self._lock:
            return self._fetched is not None and self._clock() - self._fetched < self.ttl, self._value

    def get(self) -> Any:
        fresh, value = self._fresh()
        if fresh:
            return value
        with self._reading:
            fresh, value = self._fresh()
            if fresh:  # another caller read it while this one waited
                return value
            value = self.store.get_setting(self.key)
            with self._lock:
                self._value, self._fetched = value, self._clock()
            return value

    def forget(self) -> None:
        """Read the store on the next :meth:`get` (this process changed the setting another way)."""
        with self._lock:
            self._fetched = None

    def set(self, value: Any) -> None:
        self.store.set_setting(self.key, value)
        with self._lock:
            self._value, self._fetched = value, self._clock()

    def update(self, update: Callable[[Any], Any]) -> Any:
        """The store's atomic :meth:`~octoqueue.stores.base.Store.update_setting` of this setting; caches the result."""
        value = self.store.update_setting(self.key, update)
        with self._lock:
            self._value, self._fetched = value, self._clock()
        return value


class JobSchema:
    """Get, set and apply the job-data schema."""

    def __init__(self, store: Store, ttl: float = 1.0) -> None:
        self._setting = CachedSetting(store, SETTING, ttl)

    def get(self) -> dict[str, Any] | None:
        value = self._setting.get()
        return value if isinstance(value, dict) else None

    def set(self, schema: dict[str, Any] | None) -> None:
        """Store ``schema`` (None removes it) after checking it is a valid JSON Schema."""
        if schema is not None:
            check(schema)
        self._setting.set(schema)

    def validate(self, data: Any) -> None:
        """Raise :class:`SchemaMismatch` (with the most relevant error) when ``data`` does not match."""
        validate(self.get(), data)


def validate(schema: dict[str, Any] | None, data: Any) -> None:
    """Raise :class:`SchemaMismatch` (with the most relevant error) when ``data`` does not match ``schema``
    (None: anything matches)."""
    if schema is None:
        return
    validator = _validator(json.dumps(schema, sort_keys=True, default=str))
    try:
        error = best_match(validator.iter_errors(data))
    except Exception as exc:  # e.g. an unresolvable $ref: the schema, not the job, is at fault
        raise SchemaMismatch(f"The job schema could not be applied: {exc}") from exc
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        at = f" (at /{where})" if where else ""
        raise SchemaMismatch(f"Job data does not match required schema: {error.message}{at}")


@functools.lru_cache(maxsize=64)
def _validator(canonical: str) -> Validator:
    """The compiled validator of a schema (given as canonical JSON), kept for the next job."""
    schema = json.loads(canonical)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=linear_regex.format_checker(cls.FORMAT_CHECKER))


def check(schema: dict[str, Any]) -> None:
    """Raise :class:`InvalidSchema` unless ``schema`` is a valid JSON Schema that needs nothing remote and cannot
    stall validation (see :mod:`schemaguard`)."""
    try:
        cls = jsonschema.validators.validator_for(schema)
        metaschema = jsonschema.validators.validator_for(cls.META_SCHEMA, default=cls)
        cls.check_schema(schema, format_checker=linear_regex.format_checker(metaschema.FORMAT_CHECKER))
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        at = f" (at /{where})" if where else ""
        raise InvalidSchema(f"Invalid JSON Schema: {exc.message}{at}") from None
    except Exception as exc:  # unknown $schema dialects, absurd nesting, ...
        raise InvalidSchema(f"Invalid JSON Schema: {exc}") from None
    remote = sorted(_remote_refs(schema))
    if remote:
        raise InvalidSchema(f"Invalid JSON Schema: only local $ref ('#/...') are supported, not {remote[0]!r}")
    try:
        schemaguard.check(schema)
    except schemaguard.UnsafeSchema as exc:
        raise InvalidSchema(str(exc)) from None


def _remote_refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("$ref", "$dynamicRef") and isinstance(value, str) and not value.startswith("#"):
                    found.add(value)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


__all__ = ["SETTING", "CachedSetting", "InvalidSchema", "JobSchema", "SchemaMismatch", "check", "validate"]
