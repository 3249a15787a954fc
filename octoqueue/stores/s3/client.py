"""The S3 requests the store makes, each a conditional write or a plain read, counted by operation.

A thin layer over a boto3 client: it turns S3's answers into what the store reasons with (``Precondition`` for a
412, None for a 404), retries S3's 409 ``ConditionalRequestConflict`` (two conditional writes to one key in
flight: nothing was written, try again), feeds every response's ``Date`` to the :class:`ServerClock`, and counts
requests so their cost per job can be measured (S3 bills per request).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from octoqueue.errors import ConfigurationError, StoreUnavailable
from octoqueue.stores.s3.clock import ServerClock

#: How often a write that S3 answered 409 (a concurrent conditional write to the key) is tried again.
CONFLICT_RETRIES = 8


class Precondition(Exception):
    """412: the object's ETag is not the one the write expected (or it exists, for a create)."""


@dataclass(frozen=True)
class Stored:
    """One object as read: its bytes, the ETag a compare-and-swap must name, and when it was written."""

    body: bytes
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class Listed:
    key: str
    etag: str
    last_modified: datetime


class S3Client:
    """Conditional object operations on one bucket. Thread-safe (boto3 clients are)."""

    def __init__(self, client: Any, bucket: str, prefix: str, clock: ServerClock) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self.clock = clock
        self.requests: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    # -- the requests -----------------------------------------------------------------------------------------
    def get(self, key: str) -> Stored | None:
        """The object, or None when there is none."""
        response = self._call("GET", self._client.get_object, Bucket=self.bucket, Key=self.prefix + key)
        if response is None:
            return None
        return Stored(body=response["Body"].read(), etag=response["ETag"], last_modified=response["LastModified"])

    def create(self, key: str, body: bytes) -> str:
        """Write a new object (``If-None-Match: *``); raise :class:`Precondition` when the key exists."""
        return self._put(key, body, IfNoneMatch="*")

    def swap(self, key: str, body: bytes, etag: str) -> str:
        """Replace the object only if it still has ``etag`` (``If-Match``); raise :class:`Precondition` if not."""
        return self._put(key, body, IfMatch=etag)

    def put(self, key: str, body: bytes) -> str:
        """Write unconditionally: only for index markers (their keys say all; their bodies are nonces)."""
        return self._put(key, body)

    def delete(self, key: str, etag: str | None = None) -> bool:
        """Delete the object (only if it still has ``etag`` when given); False when it was not there."""
        extra = {"IfMatch": etag} if etag is not None else {}
        return (
            self._call("DELETE", self._client.delete_object, Bucket=self.bucket, Key=self.prefix + key, **extra)
            is not None
        )

    def list_objects(self, prefix: str, *, start_after: str = "") -> Iterator[Listed]:
        """Every key under ``prefix`` after ``start_after``, in key order (a LIST request per 1,000 keys)."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
            if token:
                kwargs["ContinuationToken"] = token
            elif start_after:
                kwargs["StartAfter"] = self.prefix + start_after
            response = self._call("LIST", self._client.list_objects_v2, **kwargs)
            assert response is not None
            for item in response.get("Contents", ()):
                yield Listed(key=item["Key"][len(self.prefix) :], etag=item["ETag"], last_modified=item["LastModified"])
            if not response.get("IsTruncated"):
                return
            token = response["NextContinuationToken"]

    def check_bucket(self) -> None:
        """Fail with a clear error when the bucket is missing or out of reach (and read the server's clock)."""
        try:
            found = self._call("HEAD", self._client.head_bucket, Bucket=self.bucket)
        except Precondition:  # pragma: no cover - HEAD has no precondition
            found = None
        if found is None:
            raise ConfigurationError(f"S3 bucket {self.bucket!r} does not exist (create it first)")

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _put(self, key: str, body: bytes, **conditions: str) -> str:
        response = self._call(
            "PUT", self._client.put_object, Bucket=self.bucket, Key=self.prefix + key, Body=body, **conditions
        )
        if response is None:  # If-Match on a key that is gone
            raise Precondition(key)
        return str(response["ETag"])

    def _call(self, kind: str, operation: Callable[..., Any], **kwargs: Any) -> Any:
        """One request (again after a 409); None for a 404; :class:`Precondition` for a 412."""
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(CONFLICT_RETRIES + 1):
            with self._count_lock:
                self.requests[kind] += 1
            sent = time.monotonic()
            try:
                response = operation(**kwargs)
            except ClientError as exc:
                self._observe(exc.response, sent)
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                code = exc.response.get("Error", {}).get("Code", "")
                if status == 412 or code == "PreconditionFailed":
                    raise Precondition(kwargs.get("Key", "")) from None
                if status == 404 or code in {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}:
                    if code == "NoSuchBucket" and kind != "HEAD":
                        raise ConfigurationError(f"S3 bucket {self.bucket!r} does not exist") from None
                    return None
                if status == 409 and attempt < CONFLICT_RETRIES:
                    time.sleep(random.uniform(0, 0.01 * 2**attempt))
                    continue
                if status in {401, 403}:
                    raise ConfigurationError(f"S3 refused {kind} on bucket {self.bucket!r}: {code}") from None
                raise StoreUnavailable(f"S3 {kind} {kwargs.get('Key', '')!r} failed: {code} ({status})") from None
            except BotoCoreError as exc:
                raise StoreUnavailable(f"S3 is out of reach: {exc}") from None
            self._observe(response, sent)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _observe(self, response: dict[str, Any], sent: float) -> None:
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        self.clock.observe(headers.get("date"), sent, time.monotonic())
