"""Store URLs are configuration a person types: any string opens a store or raises octoqueue's own error with a
clear message (ConfigurationError; StoreUnavailable when the file cannot be opened) — never a ValueError from deep
inside URL or path handling."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octoqueue.errors import ConfigurationError, OctoqueueError
from octoqueue.stores import Store, open_store


@pytest.fixture(autouse=True)
def in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """SQLite URLs name relative files: keep them in a folder of their own."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("urls"))
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(autouse=True)
def no_github_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GH_TOKEN", "GITHUB_TOKEN", "GITHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", "t0k3n")  # no request is sent: opening a store only configures it


def opens_or_refuses(url: str) -> None:
    try:
        store = open_store(url)
    except OctoqueueError as exc:
        assert str(exc)
        return
    assert isinstance(store, Store)
    store.close()


HOSTILE = [
    "sqlite://[x/y.db",  # an unclosed IPv6 bracket: urlsplit's ValueError
    "github://[owner/repo",
    "memory://[",
    "nonsense://[",
    "github://owner",
    "github://owner/repo/extra",
    "github://owner/repo?token=x",
    "sqlite://",
    "sqlite:///missing-folder/x.db",
    "sqlite:///x.db?synchronous=sometimes",
    "",
    "://",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_open_or_are_refused_clearly(url: str) -> None:
    opens_or_refuses(url)


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout"),
        ("sqlite:///x.db?busy_timeout=1.5", "busy_timeout"),
        ("sqlite:///x.db?busy_timeout=-1", "busy_timeout"),
        ("sqlite:///x%00.db", "NUL"),
        ("sqlite:///x.db?synchronus=FULL", "synchronus"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous"),
    ],
)
def test_sqlite_url_values_are_refused_clearly(url: str, names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        open_store(url)
    assert os.listdir() == []  # refused before any file was made


def test_sqlite_url_options_are_applied() -> None:
    store = open_store("sqlite:///x.db?busy_timeout=1234&synchronous=full")
    try:
        conn = store._conn()  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (1234,)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        store.close()


schemes = st.sampled_from(["memory", "github", "GitHub", "sqlite", "http", "", "s3", "memory:", "github:"])
# sqlite paths without "/" (files stay in the test's folder)
rest = st.text(alphabet="abcXYZ019._-~@:[]%?=&#!$ ", max_size=25)


@given(scheme=schemes, netloc=rest, path=rest)
@settings(max_examples=300, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_any_url_opens_or_is_refused_clearly(scheme: str, netloc: str, path: str) -> None:
    opens_or_refuses(f"{scheme}://{netloc}/{path}")


def test_a_redis_url_without_a_host_says_so_and_migrate_knows_every_store() -> None:
    """A5: `--store redis://` said "Redis URL must specify one of the following schemes (redis://, ...)", and
    `migrate redis://` "unknown store URL 'redis://'"."""
    from click.testing import CliRunner

    from octoqueue.cli import main

    with pytest.raises(ConfigurationError, match=r"names no host: give one, like redis://localhost:6379/0"):
        open_store("redis://")
    runner = CliRunner()
    for url in ("redis://", "rediss://cache:6380/1", "s3://bucket/jobs", "memory://"):
        answer = runner.invoke(main, ["migrate", url])
        assert (answer.exit_code, answer.output.split(":")[0]) == (0, url.split(":")[0]), answer.output
        assert "need no migration" in answer.output
    unknown = runner.invoke(main, ["migrate", "mongo://x"])
    assert unknown.exit_code == 1 and "unknown store URL 'mongo://x': use one of memory://" in unknown.output
