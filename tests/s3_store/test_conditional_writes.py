"""The server the S3 tests run on honours conditional writes as S3 does: checked first, so the rest can trust it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _status(exc: ClientError) -> int:
    return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


def test_put_if_none_match_refuses_an_existing_key(loopback_s3: Any, bucket: str) -> None:
    s3 = loopback_s3.client()
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert _status(refused.value) == 412
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"


def test_put_if_match_refuses_a_stale_etag(loopback_s3: Any, bucket: str) -> None:
    s3 = loopback_s3.client()
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=first)["ETag"]
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="k", Body=b"v3", IfMatch=first)
    assert _status(refused.value) == 412
    assert s3.get_object(Bucket=bucket, Key="k")["ETag"] == second
    with pytest.raises(ClientError) as gone:
        s3.delete_object(Bucket=bucket, Key="k", IfMatch=first)
    assert _status(gone.value) == 412


def test_racing_swaps_of_one_version_have_one_winner(loopback_s3: Any, bucket: str) -> None:
    s3 = loopback_s3.client()
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v0")["ETag"]
    won: list[int] = []
    lost: list[int] = []
    barrier = threading.Barrier(8)

    def swap(i: int) -> None:
        barrier.wait()
        try:
            s3.put_object(Bucket=bucket, Key="k", Body=f"v{i}".encode(), IfMatch=etag)
            won.append(i)
        except ClientError as exc:
            lost.append(_status(exc))

    threads = [threading.Thread(target=swap, args=(i,)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and lost == [412] * 7
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == f"v{won[0]}".encode()
