"""The real PostgreSQL server the tests use (127.0.0.1:5432, database ``test``), and a fresh schema per test.

Tests fail, never skip, when the server is unreachable: a store that was not tested is not known to work.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest

from octoqueue.stores.postgres import PostgresStore

#: The server the tests use; OCTOQUEUE_TEST_POSTGRES names another.
SERVER = os.environ.get("OCTOQUEUE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def store_url(schema: str) -> str:
    return f"{SERVER}?schema={schema}"


def new_schema(request: pytest.FixtureRequest) -> str:
    """A schema name no other test uses, dropped (with everything in it) when the test ends."""
    schema = f"oq_test_{uuid.uuid4().hex[:12]}"
    try:
        psycopg.connect(SERVER, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"the PostgreSQL test server {SERVER} is unreachable: {exc}")

    def drop() -> None:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    request.addfinalizer(drop)
    return schema


def fresh_schema(request: pytest.FixtureRequest, **options: object) -> PostgresStore:
    """A store on a new, empty schema of the test server; the schema is dropped after the test."""
    return PostgresStore.from_url(store_url(new_schema(request)), **options)
