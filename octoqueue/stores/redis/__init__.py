"""The Redis store (``redis://host:port/db?prefix=oq``); needs the ``octoqueue[redis]`` extra (redis-py)."""

from __future__ import annotations

try:
    from octoqueue.stores.redis.store import RedisStore
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installation
    if exc.name != "redis":
        raise
    from octoqueue.errors import ConfigurationError

    raise ConfigurationError("the Redis store needs redis-py: pip install 'octoqueue[redis]'") from exc

__all__ = ["RedisStore"]
