"""The PostgreSQL store (``postgresql://``), on psycopg 3 and psycopg_pool: ``pip install 'octoqueue[postgres]'``."""

from __future__ import annotations

from octoqueue.stores.postgres.store import PURGE_BATCH, PostgresStore, migrate_url, parse_url

__all__ = ["PURGE_BATCH", "PostgresStore", "migrate_url", "parse_url"]
