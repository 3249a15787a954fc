"""Stores, chosen by URL. Concrete modules are imported only when their scheme is asked for.

The built-in schemes are in :data:`SCHEMES`. A store from another package adds its scheme with an entry point in
the group :data:`ENTRY_POINT_GROUP`, named by the scheme, naming its factory (see docs/design.md, "Writing a store")::

    [project.entry-points."octoqueue.stores"]
    foo = "octoqueue_foo:FooStore.from_url"

A built-in scheme cannot be replaced that way: its entry point is ignored.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from urllib.parse import urlsplit

from octoqueue.errors import ConfigurationError
from octoqueue.stores.base import Store

DEFAULT_STORE_URL = "sqlite:///octoqueue.db"

#: scheme -> "module:factory"; the factory takes the URL and keyword options.
SCHEMES: dict[str, str] = {
    "memory": "octoqueue.stores.memory:MemoryStore.from_url",
    "sqlite": "octoqueue.stores.sqlite:SQLiteStore.from_url",
    "github": "octoqueue.stores.github:GitHubStore.from_url",
    "postgresql": "octoqueue.stores.postgres:PostgresStore.from_url",
    "postgres": "octoqueue.stores.postgres:PostgresStore.from_url",
    "redis": "octoqueue.stores.redis:RedisStore.from_url",
    "rediss": "octoqueue.stores.redis:RedisStore.from_url",
    "redis+cluster": "octoqueue.stores.redis:RedisStore.from_url",
    "rediss+cluster": "octoqueue.stores.redis:RedisStore.from_url",
    "s3": "octoqueue.stores.s3:S3Store.from_url",
}

#: The entry-point group through which installed packages add store schemes.
ENTRY_POINT_GROUP = "octoqueue.stores"


def installed_stores() -> dict[str, EntryPoint]:
    """The schemes installed packages add (scheme -> entry point), built-in schemes left out."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        scheme = point.name.lower()
        if scheme not in SCHEMES:
            found.setdefault(scheme, point)
    return found


def _factory(scheme: str, url: str) -> Callable[..., object]:
    target = SCHEMES.get(scheme)
    if target is not None:
        module_name, _, attr = target.partition(":")
        factory: object = importlib.import_module(module_name)
        for part in attr.split("."):
            factory = getattr(factory, part)
        assert callable(factory)
        return factory
    installed = installed_stores()
    point = installed.get(scheme)
    if point is None:
        raise _unknown(url, installed)
    package = point.dist.name if point.dist is not None else point.value
    try:
        loaded = point.load()
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"the {scheme}:// store of {package} cannot be loaded ({point.value}): {exc}") from exc
    if not callable(loaded):
        raise ConfigurationError(f"the {scheme}:// store of {package} names {point.value}, which is not callable")
    return loaded


def _unknown(url: str, installed: dict[str, EntryPoint]) -> ConfigurationError:
    known = ", ".join(f"{s}://" for s in [*SCHEMES, *sorted(installed)])
    return ConfigurationError(f"unknown store URL {url!r}: use one of {known}")


def store_scheme(url: str) -> str:
    """The scheme of store URL ``url``, lower case; :class:`ConfigurationError` when no store (built in or
    installed) takes it, or the URL cannot be read."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:  # e.g. an unclosed "[" (urlsplit reads it as an IPv6 address)
        raise ConfigurationError(f"store URL {url!r} cannot be read: {exc}") from None
    if scheme not in SCHEMES:
        installed = installed_stores()
        if scheme not in installed:
            raise _unknown(url, installed)
    return scheme


def open_store(url: str | None = None, **options: object) -> Store:
    """Open the store named by ``url`` (else env ``OCTOQUEUE_STORE``, else the embedded SQLite default).

    ``options`` go to the store's factory (``clock=`` is one every store takes).
    """
    url = url or os.environ.get("OCTOQUEUE_STORE") or DEFAULT_STORE_URL
    scheme = store_scheme(url)
    store = _factory(scheme, url)(url, **options)
    if not isinstance(store, Store):
        raise ConfigurationError(f"the {scheme}:// factory made a {type(store).__name__}, not an octoqueue Store")
    return store


__all__ = [
    "DEFAULT_STORE_URL",
    "ENTRY_POINT_GROUP",
    "SCHEMES",
    "Store",
    "installed_stores",
    "open_store",
    "store_scheme",
]
