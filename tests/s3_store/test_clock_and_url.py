"""The server clock read from ``Date`` headers, and opening the store from its URL."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from octoqueue.errors import ConfigurationError
from octoqueue.job import NewJob
from octoqueue.stores import open_store
from octoqueue.stores.s3 import S3Store
from octoqueue.stores.s3.clock import ServerClock
from octoqueue.testing.s3_server import TEST_CREDENTIALS


class Monotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(int(ts), UTC), usegmt=True)


def test_server_clock_narrows_to_the_server_time_from_whole_second_dates() -> None:
    mono = Monotonic()
    clock = ServerClock(monotonic=mono, wall=lambda: mono.t + 3600)  # this host's wall clock is an hour off
    server_offset = 5_000_000.37  # server time = monotonic + this; its Date headers drop the fraction
    for step in range(40):  # a response every 0.13 s, each taking 0.01 s
        sent = mono.t
        mono.t += 0.01
        clock.observe(_date(sent + 0.005 + server_offset), sent, mono.t)
        mono.t += 0.12 + step * 0.0001
    truth = datetime.fromtimestamp(mono.t + server_offset, UTC)
    assert clock.uncertainty() < timedelta(seconds=0.05)
    assert abs(clock.now() - truth) <= 2 * clock.uncertainty()  # within the bounds, an hour from the host's clock


def test_a_host_in_step_with_the_server_reads_its_own_clock_which_never_jumps() -> None:
    mono = Monotonic()
    server_offset = 7_000_000.6
    clock = ServerClock(monotonic=mono, wall=lambda: mono.t + server_offset + 0.004)  # 4 ms off (NTP)
    readings = []
    for _ in range(30):
        sent = mono.t
        mono.t += 0.01
        clock.observe(_date(sent + 0.005 + server_offset), sent, mono.t)
        readings.append(clock.now().timestamp() - mono.t)
        mono.t += 0.07
    assert max(readings) - min(readings) < 1e-3  # the narrowing bounds never moved the reading
    assert abs(readings[-1] - server_offset - 0.004) < 1e-3


def test_server_clock_never_runs_backwards_and_follows_a_reset_server() -> None:
    mono = Monotonic()
    clock = ServerClock(monotonic=mono, wall=lambda: 0.0)
    clock.observe(_date(2_000_000_000), mono.t, mono.t)
    first = clock.now()
    clock.observe(_date(2_000_000_000), mono.t, mono.t + 0.001)  # narrows towards the lower end
    assert clock.now() >= first
    clock.observe(_date(2_000_003_600), mono.t, mono.t)  # the server's clock was set an hour on
    assert clock.now() - first > timedelta(minutes=59)


def test_store_clock_is_the_servers(s3store: S3Store) -> None:
    assert s3store.s3.clock.synced
    assert abs((s3store.now() - datetime.now(UTC)).total_seconds()) < 2  # moto's Date is this host's clock


def test_open_store_from_url_with_standard_credentials(
    loopback_s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    store = open_store(loopback_s3.url(bucket, "team/jobs"))
    assert isinstance(store, S3Store)
    job = store.create(NewJob(data={"x": 1}, title="t"))
    keys = [o["Key"] for o in loopback_s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"team/jobs/jobs/{job.id:012d}.json" in keys
    assert store.url.startswith(f"s3://{bucket}/team/jobs?endpoint_url=")


def test_url_errors_are_clear(loopback_s3: Any) -> None:
    with pytest.raises(ConfigurationError, match="unknown S3 store options"):
        open_store("s3://b/p?endpoint=http://x")
    with pytest.raises(ConfigurationError, match="id_block"):
        open_store("s3://b/p?id_block=many")
    with pytest.raises(ConfigurationError, match="needs a bucket"):
        open_store("s3:///p")
    with pytest.raises(ConfigurationError, match="does not exist"):
        S3Store("no-such-bucket-here", endpoint_url=loopback_s3.endpoint_url, session=loopback_s3.session())


def test_without_boto3_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if octoqueue[s3] was not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'octoqueue\[s3\]'"):
        open_store("s3://bucket/prefix")
