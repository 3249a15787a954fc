"""Settings of a GitHub store (the admin JSON schema, queue definitions) in one issue of the repository.

The issue is titled "octoqueue settings" and carries the ``octoqueue-settings`` label (prefixed like the status
labels), which keeps it out of every job listing. Its body is the same fenced JSON block as a job's: an object of
settings, so a maintainer can read and even edit it on GitHub; the hidden metadata holds its ``revision``.

Why an issue and not a file through the contents API: a file write is a commit on a branch — it would run push
workflows and clutter the history — and the store already has all it needs for issues. Concurrent writers are
serialised the store's usual way: writing revision R+1 needs the ref ``refs/octoqueue/settings/{queue}-{R}``,
which only one writer can create; the loser reads again and retries, so no update is lost. The issue itself is
created under revision 0's ref, so two processes starting at once make one settings issue. Reads are
conditional GETs (a 304 when nothing changed).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from octoqueue import body as issue_body
from octoqueue.errors import InvalidJobData, StoreUnavailable
from octoqueue.stores._github_client import Ambiguous
from octoqueue.stores._github_issues import settings_ref

if TYPE_CHECKING:
    from octoqueue.stores.github import GitHubStore

TITLE = "octoqueue settings"


class SettingsIssue:
    """get/set of JSON values kept in the store's settings issue."""

    def __init__(self, store: GitHubStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._number: int | None = None

    # -- reading ------------------------------------------------------------------------------------------------
    def _find(self) -> int | None:
        with self._lock:
            if self._number is not None:
                return self._number
        store = self._store
        url = store.issues_url(state="all", labels=store.settings_label)
        fetched = store.client.get(url, what="find the settings issue")
        numbers = [int(item["number"]) for item in fetched.data if "pull_request" not in item]
        if not numbers:
            return None
        with self._lock:
            self._number = min(numbers)
            return self._number

    def _read(self) -> tuple[int, dict[str, Any], int, str] | None:
        """(issue number, settings, revision, raw body), or None when there is no settings issue yet."""
        number = self._find()
        if number is None:
            return None
        store = self._store
        fetched = store.client.get(f"{store.path}/issues/{number}", what="read the settings")
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
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidJobData(f"setting {key!r} is not a JSON value: {exc}") from exc
        store = self._store
        delay = 0.05
        for _ in range(12):
            found = self._read()
            if found is None:
                if store.refs.take(settings_ref(store.labels.prefix, 0), still_current=lambda: self._find() is None):
                    self._create({} if value is None else {key: value})
                    return
            else:
                number, values, revision, _ = found
                name = settings_ref(store.labels.prefix, revision)
                started = time.monotonic()

                def unchanged(revision: int = revision) -> bool:
                    now = self._read()
                    return now is not None and now[2] == revision

                if store.refs.take(name, still_current=unchanged):
                    values = dict(values)
                    if value is None:
                        values.pop(key, None)
                    else:
                        values[key] = value
                    body = issue_body.render(values, {"revision": revision + 1})
                    store.client.call(
                        lambda gh, number=number, body=body: gh.rest.issues.update(  # type: ignore[misc]
                            store.owner, store.repo, number, data={"body": body}
                        ),
                        deadline=store.refs.deadline(started),
                        what="write the settings",
                    )
                    return
            time.sleep(delay)  # another process is writing the settings: read them again
            delay = min(delay * 2, 2.0)
        raise StoreUnavailable("the settings kept changing under us; try again")

    def _create(self, values: dict[str, Any]) -> None:
        store = self._store
        data = {
            "title": TITLE,
            "body": issue_body.render(values, {"revision": 1}),
            "labels": [store.settings_label],
        }
        for tries in range(store.client.retries + 1):
            try:
                response = store.client.call(
                    lambda gh: gh.rest.issues.create(store.owner, store.repo, data=cast(Any, data)),
                    idempotent=False,
                    what="create the settings issue",
                )
            except Ambiguous:
                time.sleep(store.client.retry_backoff * (2**tries))
                if self._find() is not None:
                    return
                continue
            with self._lock:
                self._number = int(response.json()["number"])
            return
        raise StoreUnavailable("could not create the settings issue")
