"""Stores, chosen by URL. Concrete modules are imported only when their scheme is asked for."""

from __future__ import annotations

import importlib
import os
from urllib.parse import urlsplit

from octoqueue.errors import ConfigurationError
from octoqueue.stores.base import Store

DEFAULT_STORE_URL = "sqlite:///octoqueue.db"

#: scheme -> "module:factory"; the factory takes the URL and keyword options.
SCHEMES: dict[str, str] = {
    "memory": "octoqueue.stores.memory:MemoryStore.from_url",
    "sqlite": "octoqueue.stores.sqlite:SQLiteStore.from_url",
    "github": "octoqueue.stores.github:GitHubStore.from_url",
    "s3": "octoqueue.stores.s3:S3Store.from_url",
}


def open_store(url: str | None = None, **options: object) -> Store:
    """Open the store named by ``url`` (else env ``OCTOQUEUE_STORE``, else the embedded SQLite default)."""
    url = url or os.environ.get("OCTOQUEUE_STORE") or DEFAULT_STORE_URL
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:  # e.g. an unclosed "[" (urlsplit reads it as an IPv6 address)
        raise ConfigurationError(f"store URL {url!r} cannot be read: {exc}") from None
    target = SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigurationError(f"unknown store URL {url!r}: use one of {known}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    factory: object = module
    for part in attr.split("."):
        factory = getattr(factory, part)
    store = factory(url, **options)  # type: ignore[operator]
    assert isinstance(store, Store)
    return store


__all__ = ["DEFAULT_STORE_URL", "SCHEMES", "Store", "open_store"]
