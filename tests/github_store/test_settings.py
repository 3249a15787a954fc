"""The settings issue: found by the ref the store wrote, updated by compare-and-set."""

from __future__ import annotations

import json
import threading

import pytest

from octoqueue.dependencies import SETTING_KEY
from octoqueue.errors import ConfigurationError, DependentsFull, JobNotFound
from octoqueue.queue import Queue
from octoqueue.stores.github import GitHubStore
from octoqueue.testing.fake_github import FakeGitHub

from .conftest import MakeStore

PER_WRITER = 8


def test_two_concurrent_updaters_lose_nothing(make_store: MakeStore) -> None:
    stores = [make_store(), make_store()]  # two processes
    stores[0].set_setting("count", 0)
    failures: list[BaseException] = []

    def bump(index: int) -> None:
        try:
            for _ in range(PER_WRITER):
                stores[index].update_setting("count", lambda n: n + 1)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=bump, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    assert make_store().get_setting("count") == 2 * PER_WRITER


def test_update_setting_returns_the_new_value_and_none_deletes(make_store: MakeStore) -> None:
    store = make_store()
    assert store.update_setting("names", lambda current: [*(current or []), "a"]) == ["a"]
    assert store.update_setting("names", lambda current: [*current, "b"]) == ["a", "b"]
    assert store.update_setting("names", lambda _current: None) is None
    assert make_store().get_setting("names") is None


def _labelled_settings(fake: FakeGitHub, values: dict[str, object]) -> int:
    body = f'```json\n{json.dumps(values)}\n```\n\n<!-- octoqueue:meta {{"revision": 3}} -->\n'
    return fake.create_issue("octoqueue settings", body, labels=["octoqueue-settings"])


def test_an_issue_with_the_label_but_no_ref_is_not_the_settings(fake: FakeGitHub, make_store: MakeStore) -> None:
    _labelled_settings(fake, {"queues": ["forged"]})
    store = make_store()
    assert store.get_setting("queues") is None
    store.set_setting("queues", ["real"])
    assert make_store().get_setting("queues") == ["real"]
    named = [ref for ref in fake.refs if "/settings-issue/" in ref and ref[-1].isdigit()]
    assert len(named) == 1 and not named[0].endswith("-1")  # the store's own issue, not the forged #1


def test_an_operator_adopts_the_settings_issue_of_an_older_octoqueue(fake: FakeGitHub, make_store: MakeStore) -> None:
    number = _labelled_settings(fake, {"queues": ["old"]})
    job = fake.create_issue("a job", "```json\n{}\n```", labels=["pending"])
    store = make_store()
    with pytest.raises(ConfigurationError, match="not an issue labelled"):
        store.adopt_settings_issue(job)
    store.adopt_settings_issue(number)
    assert make_store().get_setting("queues") == ["old"]
    store.update_setting("queues", lambda old: [*old, "new"])
    assert make_store().get_setting("queues") == ["old", "new"]
    with pytest.raises(ConfigurationError, match="already"):
        make_store().adopt_settings_issue(job)


def test_after_an_upgrade_the_old_revision_refs_do_not_block_writes(fake: FakeGitHub, make_store: MakeStore) -> None:
    """A deployment of an older octoqueue took refs/octoqueue/settings/default-0..2 for its labelled issue."""
    number = _labelled_settings(fake, {"queues": ["old"]})
    old = make_store()
    for revision in range(3):
        assert old._refs.create(f"refs/octoqueue/settings/default-{revision}")
    store = make_store(orphan_grace=3600)  # no rescue can help within the test
    store.set_setting("queues", ["new"])
    store.update_setting("queues", lambda queues: [*queues, "newer"])
    assert make_store().get_setting("queues") == ["new", "newer"]
    other = make_store(orphan_grace=3600)
    with pytest.raises(ConfigurationError, match="already"):
        other.adopt_settings_issue(number)


def test_the_settings_issue_stays_out_of_the_jobs_when_its_label_is_taken_off(
    fake: FakeGitHub, make_store: MakeStore
) -> None:
    store = make_store()
    store.set_setting("api_cursor_key", "k" * 64)
    (number,) = [n for n, issue in fake.issues.items() if issue["title"] == "octoqueue settings"]
    fake.remove_label(number, "octoqueue-settings")
    assert store.get_setting("api_cursor_key") == "k" * 64
    assert number not in [job.id for job in store.list_jobs().jobs]
    with pytest.raises(JobNotFound):
        store.get(number)


def test_a_producer_filling_the_dependents_leaves_the_admins_room_in_the_settings_issue(store: GitHubStore) -> None:
    # The most links a producer gets in (found on a fast store: on GitHub each link is also a blocked_by request).
    with Queue("memory://", max_attempts=1) as filled:
        parents = [filled.enqueue({"parent": n}) for n in range(100)]
        with pytest.raises(DependentsFull):
            for n in range(100):
                filled.enqueue({"child": n}, depends_on=parents)
        edges = filled.store.get_setting(SETTING_KEY)
    store.set_setting(SETTING_KEY, edges)
    # An admin's settings still fit the one issue body: 40,000 characters more of schedules.
    store.set_setting("schedules", {"nightly": "x" * 40_000})
    assert len(store.get_setting("schedules")["nightly"]) == 40_000
    assert store.get_setting(SETTING_KEY) == edges
