"""A store from outside the package, found through the ``octoqueue.stores`` entry point, passes the contract kit.

The entry point is registered as pip would register it: a ``.dist-info`` folder (its ``entry_points.txt`` made from
this folder's pyproject.toml) on ``sys.path``, where :func:`importlib.metadata.entry_points` finds it. Nothing in
octoqueue names the store.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from octoqueue.errors import ConfigurationError
from octoqueue.stores import installed_stores, open_store
from octoqueue.stores.memory import MemoryStore
from octoqueue.testing.contract import StoreKit

HERE = Path(__file__).resolve().parent


def install(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """Write the metadata pip writes for distribution ``name`` with these ``octoqueue.stores`` entry points."""
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "".join(f"{scheme} = {target}\n" for scheme, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[octoqueue.stores]\n{lines}")


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    project = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]
    site = tmp_path_factory.mktemp("site-packages")
    install(site, project["name"], project["entry-points"]["octoqueue.stores"])
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(HERE))  # the module itself, as if installed
        patch.syspath_prepend(str(site))
        yield


class TestJsonFileStore(StoreKit):
    store_url = "jsonfile://{tmp_path}/jobs.json"


def test_the_scheme_comes_from_the_entry_point(tmp_path: Path) -> None:
    point = installed_stores()["jsonfile"]
    assert point.dist is not None and point.dist.name == "octoqueue-jsonfile-example"
    store = open_store(f"jsonfile://{tmp_path}/jobs.json")
    assert type(store).__name__ == "JsonFileStore" and store.url == f"jsonfile://{tmp_path}/jobs.json"


def test_an_unknown_scheme_names_the_installed_ones() -> None:
    with pytest.raises(
        ConfigurationError, match=r"use one of memory://, sqlite://, github://, .*\bjsonfile://"
    ) as raised:
        open_store("nope://x")
    assert str(raised.value).endswith("jsonfile://")  # the built-in schemes, then the installed ones


def test_a_broken_entry_point_is_a_clear_error_and_a_built_in_cannot_be_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path, "octoqueue-broken", {"broken": "no_such_module:Store", "memory": "octoqueue_jsonfile:X"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"broken:// store of octoqueue-broken cannot be loaded"):
        open_store("broken://x")
    assert "memory" not in installed_stores()
    assert isinstance(open_store("memory://"), MemoryStore)
