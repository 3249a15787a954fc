"""API keys with roles, checked in constant time.

``API_KEY`` is one key with every role (the original Octoqueue's single key). ``API_KEYS`` lists more:
``producer:key1,worker:key2,admin:key3`` (a role may be ``producer+worker``). Roles:

- ``producer``: create jobs (``/create-job``, ``POST /api/v1/queues/{q}/jobs``);
- ``worker``: claim, heartbeat, complete and fail jobs;
- ``reader``: read listings when reads are not open;
- ``admin``: everything, including the job schema and queue definitions.

With no key configured at all the server is open (a warning is logged at startup): handy on a laptop, never
in production.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from octoqueue.api.settings import Settings
from octoqueue.errors import ConfigurationError

API_KEY_HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key; its roles decide what it may do (see docs/server.md).",
)


class Role(StrEnum):
    PRODUCER = "producer"
    WORKER = "worker"
    READER = "reader"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``name`` is safe to log (never the key); ``fingerprint`` identifies the key."""

    name: str
    roles: frozenset[Role]
    fingerprint: str | None = None

    def can(self, role: Role) -> bool:
        return Role.ADMIN in self.roles or role in self.roles


#: The caller when no key is configured: everything is allowed.
OPEN = Principal("anonymous (no API keys configured)", frozenset(Role))
#: The caller of an open read without a key.
ANONYMOUS = Principal("anonymous", frozenset())


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal


class KeyRing:
    """The configured keys, kept as SHA-256 digests; :meth:`identify` compares against every one."""

    def __init__(self, keys: Iterable[tuple[str, Iterable[Role]]] = ()) -> None:
        merged: dict[str, set[Role]] = {}
        for key, roles in keys:
            if not key:
                raise ConfigurationError("an API key is empty")
            merged.setdefault(key, set()).update(roles)
        self._entries = [
            _Entry(
                _digest(key),
                Principal(
                    name=f"key {i + 1} ({'+'.join(sorted(roles))})",
                    roles=frozenset(roles),
                    fingerprint=hashlib.sha256(key.encode()).hexdigest()[:16],
                ),
            )
            for i, (key, roles) in enumerate(merged.items())
        ]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        keys: list[tuple[str, Iterable[Role]]] = []
        if settings.api_key is not None and settings.api_key.get_secret_value():
            keys.append((settings.api_key.get_secret_value(), {Role.ADMIN}))
        if settings.api_keys is not None:
            keys.extend(parse_api_keys(settings.api_keys.get_secret_value()))
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def identify(self, presented: str | None) -> Principal | None:
        """The principal whose key was presented, or None. Takes the same time whichever key matches."""
        if presented is None:
            return None
        digest = _digest(presented)
        found = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry.principal
        return found


def parse_api_keys(text: str) -> list[tuple[str, set[Role]]]:
    """``producer:key1,worker+reader:key2`` -> ``[(key1, {producer}), (key2, {worker, reader})]``."""
    out: list[tuple[str, set[Role]]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        role_text, sep, key = item.partition(":")
        if not sep or not key.strip():
            raise ConfigurationError("API_KEYS entries must look like role:key (e.g. producer:abc123)")
        roles: set[Role] = set()
        for name in role_text.split("+"):
            try:
                roles.add(Role(name.strip().lower()))
            except ValueError:
                known = ", ".join(r.value for r in Role)
                raise ConfigurationError(f"unknown role {name.strip()!r} in API_KEYS: use {known}") from None
        out.append((key.strip(), roles))
    return out


def _keys(request: Request) -> KeyRing:
    ring: KeyRing = request.app.state.keys
    return ring


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": API_KEY_HEADER})


def _authenticate(ring: KeyRing, key: str | None) -> Principal:
    if key is None or key == "":
        raise _unauthorized(f"Missing API key: send it in the {API_KEY_HEADER} header")
    principal = ring.identify(key)
    if principal is None:
        raise _unauthorized("Invalid API key")
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets the call through only with a key holding ``role`` (401 no/bad key, 403 role)."""

    async def dependency(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
        ring = _keys(request)
        if not ring.enabled:
            return OPEN
        principal = _authenticate(ring, key)
        if not principal.can(role):
            raise HTTPException(403, detail=f"This API key lacks the {role.value} role")
        return principal

    dependency.__name__ = f"require_{role.value}"
    return dependency


async def require_read(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
    """Reads are open unless ``OCTOQUEUE_OPEN_READS=false``; then any valid key may read."""
    ring = _keys(request)
    if not ring.enabled:
        return OPEN
    if _settings(request).open_reads and not key:
        return ANONYMOUS
    return _authenticate(ring, key)


async def identify_caller(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
    """Who is calling, never refusing (for open endpoints that show admins more): everyone when no key is
    configured, the key's holder, else anonymous."""
    ring = _keys(request)
    if not ring.enabled:
        return OPEN
    return ring.identify(key or None) or ANONYMOUS


ProducerKey = Annotated[Principal, Depends(require(Role.PRODUCER))]
WorkerKey = Annotated[Principal, Depends(require(Role.WORKER))]
AdminKey = Annotated[Principal, Depends(require(Role.ADMIN))]
ReaderKey = Annotated[Principal, Depends(require_read)]
Caller = Annotated[Principal, Depends(identify_caller)]

__all__ = [
    "API_KEY_HEADER",
    "AdminKey",
    "Caller",
    "KeyRing",
    "Principal",
    "ProducerKey",
    "ReaderKey",
    "Role",
    "WorkerKey",
    "identify_caller",
    "parse_api_keys",
    "require",
    "require_read",
]
