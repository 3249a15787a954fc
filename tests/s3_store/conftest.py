"""Fixtures for the S3 store's own tests: a fresh bucket on the loopback moto server per test."""

from __future__ import annotations

from typing import Any

import pytest

from octoqueue.stores.s3 import S3Store


@pytest.fixture
def bucket(loopback_s3: Any) -> str:
    return str(loopback_s3.new_bucket())


@pytest.fixture
def s3store(loopback_s3: Any, bucket: str) -> Any:
    store = S3Store(bucket, "q", endpoint_url=loopback_s3.endpoint_url, session=loopback_s3.session())
    yield store
    store.close()


def open_s3(loopback_s3: Any, bucket: str, **options: Any) -> S3Store:
    """Another process's view of the same queue (its own client, caches and clock)."""
    return S3Store(bucket, "q", endpoint_url=loopback_s3.endpoint_url, session=loopback_s3.session(), **options)
