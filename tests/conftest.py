"""Shared test settings. Server-backed tests fail (not skip) in CI when their server is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, what: str) -> None:
    """Skip locally, fail in CI, when a server a test needs is not there."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session")
def loopback_s3() -> Iterator[Any]:
    """moto's S3 server on a free loopback port, one per test session (tests use their own bucket or prefix)."""
    from octoqueue.testing.s3_server import LoopbackS3

    server = LoopbackS3()
    try:
        yield server
    finally:
        server.close()
