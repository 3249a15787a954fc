"""Settings of a GitHub store (the admin JSON schema, queue definitions) in one issue of the repository.

The issue is titled "octoqueue settings" and carries the ``octoqueue-settings`` label (prefixed like the status
labels), which keeps it out of every job listing. It is *found* by neither: the store names its number in the ref
``refs/octoqueue/settings-issue/{queue}-{number}``, which it writes once, right after creating the issue. Anyone who
can open an issue can copy a title and a label (and no client of octoqueue may set that label), but no producer can
create a git ref, so no job can pass for the settings. Its body is the same fenced JSON block as a job's: an object of
settings, so a maintainer can read and even edit it on GitHub; the hidden metadata holds its ``revision``.

Why an issue and not a file through the contents API: a file write is a commit on a branch — it would run push
workflows and clutter the history — and the store already has all it needs for issues. Concurrent writers are
serialised the store's usual way: writing revision R+1 of issue N needs the ref
``refs/octoqueue/settings/{queue}-{N}-{R}``, which only one writer can create; the loser reads again and retries,
so no update is lost. The issue itself is created under ``refs/octoqueue/settings-issue/{queue}-new``, so two
processes starting at once make one settings issue. (Refs name the issue, so the revision refs an older octoqueue
took for its own settings issue never block the new one.) Reads are
conditional GETs (a 304 when nothing changed).

An issue found by its label alone, as octoqueue did before, is not read: it may be a producer's forgery. After an
upgrade an operator who checked the old issue names it with :meth:`SettingsIssue.adopt` (see docs/github-store.md).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from octoqueue import body as issue_body
from octoqueue.errors import ConfigurationError, StoreUnavailable
from octoqueue.stores.base import checked_setting
from octoqueue.stores.github.client import Ambiguous
from octoqueue.stores.github.issues import settings_create_ref, settings_issue_ref, settings_ref

if TYPE_CHECKING:
    from octoqueue.stores.github.store import GitHubStore

TITLE = "octoqueue settings"


class SettingsIssue:
    """get/set of JSON values kept in the store's settings issue."""

    def __init__(self, store: GitHubStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._number: int | None = None

    # -- reading ------------------------------------------------------------------------------------------------
    def _find(self) -> int | None:
        """The settings issue's number, from the refs that name it (the first one wins), or None."""
        with self._lock:
            if self._number is not None:
                return self._number
        store = self._store
        named = settings_issue_ref(store.labels.prefix, 0).removesuffix("0")
        tails = [ref[len(named) :] for ref in store._refs.find(named[len("refs/") :])]
        numbers = [int(tail) for tail in tails if tail.isdigit() and int(tail) > 0]
        if not numbers:
            return None
        with self._lock:
            self._number = min(numbers)
            return self._number

    def known_number(self) -> int | None:
        """The settings issue's number if this process found it already (no request)."""
        with self._lock:
            return self._number

    def _read(self) -> tuple[int, dict[str, Any], int, str] | None:
        """(issue number, settings, revision, raw body), or None when there is no settings issue yet."""
        number = self._find()
        if number is None:
            return None
        store = self._store
        fetched = store._client.get(f"{store._path}/issues/{number}", what="read the settings")
        text = fetched.data.get("body") or ""
        parsed = issue_body.parse(text)
        values = parsed.data if isinstance(parsed.data, dict) else {}
        revision = parsed.meta.get("revision")
        return number, values, revision if isinstance(revision, int) and revision > 0 else 0, text

    def get(self, key: str) -> Any:
        found = self._read()
        return copy.deepcopy(found[1].get(key)) if found is not None else None

    # -- writing ------------------------------------------------------------------------------------------------
    def set(self, key: str, value: Any) -> None:
        self.update(key, lambda _current: value)

    def update(self, key: str, update: Callable[[Any], Any]) -> Any:
        """Replace the value under ``key`` by ``update(current)`` atomically (None deletes); return the new value.

        ``update`` runs once per try: again, on fresh settings, when another writer got in first.
        """
        store = self._store
        delay = 0.05
        for _ in range(12):
            found = self._read()
            if found is None:
                value = checked_setting(key, update(None))  # before the ref: an update that raises takes nothing
                if store._refs.take(
                    settings_create_ref(store.labels.prefix), still_current=lambda: self._find() is None
                ):
                    self._create({} if value is None else {key: value})
                    return value
            else:
                number, values, revision, _ = found
                name = settings_ref(store.labels.prefix, number, revision)
                started = time.monotonic()

                def unchanged(revision: int = revision) -> bool:
                    now = self._read()
                    return now is not None and now[2] == revision

                value = checked_setting(key, update(copy.deepcopy(values.get(key))))
                if store._refs.take(name, still_current=unchanged):
                    values = dict(values)
                    if value is None:
                        values.pop(key, None)
                    else:
                        values[key] = value
                    body = issue_body.render(values, {"revision": revision + 1})
                    store._client.call(
                        lambda gh, number=number, body=body: gh.rest.issues.update(  # type: ignore[misc]
                            store.owner, store.repo, number, data={"body": body}
                        ),
                        deadline=store._refs.deadline(started),
                        what="write the settings",
                    )
                    return value
            time.sleep(delay)  # another process is writing the settings: read them again
            delay = min(delay * 2, 2.0)
        raise StoreUnavailable("the settings kept changing under us; try again")

    def adopt(self, number: int) -> None:
        """Name issue ``number`` as the settings issue: for an issue found by its label before octoqueue named it
        by a ref. Only for an issue an operator checked (its author, its history): its values come into force."""
        store = self._store
        if self._find() is not None:
            raise ConfigurationError(f"the settings issue is already #{self._find()}")
        fetched = store._client.get(f"{store._path}/issues/{number}", what="read the issue to adopt", use_cache=False)
        if "pull_request" in fetched.data or store._record(fetched.data).kind != "settings":
            raise ConfigurationError(f"#{number} is not an issue labelled {store.labels.settings!r}")
        if not store._refs.create(settings_issue_ref(store.labels.prefix, number)):
            raise ConfigurationError(f"#{number} is already named as the settings issue")

    def _create(self, values: dict[str, Any]) -> None:
        store = self._store
        data = {
            "title": TITLE,
            "body": issue_body.render(values, {"revision": 1}),
            "labels": [store.labels.settings],
        }
        for tries in range(store._client.retries + 1):
            try:
                response = store._client.call(
                    lambda gh: gh.rest.issues.create(store.owner, store.repo, data=cast(Any, data)),
                    idempotent=False,
                    what="create the settings issue",
                )
            except Ambiguous:
                time.sleep(store._client.retry_backoff * (2**tries))
                continue  # an issue the lost answer made stays unnamed, so it is never read
            number = int(response.json()["number"])
            store._refs.create(settings_issue_ref(store.labels.prefix, number))
            with self._lock:
                self._number = number
            return
        raise StoreUnavailable("could not create the settings issue")
