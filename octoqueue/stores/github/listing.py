"""Reading many issues: listing with cursors, counting, purging.

Listings follow GitHub's ``link: rel="next"`` (page URLs are never built) and are conditional GETs. A single state
becomes a ``labels=`` filter — except ``cancelled``, since a job closed by hand keeps its old label — and the rest
is filtered here: pull requests, the settings issue and archived jobs are never listed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlsplit

from octoqueue.job import Job, Page
from octoqueue.states import JobState, LabelScheme, has_labels
from octoqueue.stores.github.client import Fetched
from octoqueue.stores.github.issues import Record, key_job_ref, key_ref

if TYPE_CHECKING:
    from octoqueue.stores.github.store import GitHubStore

PER_PAGE = 100


def list_query(
    labels_scheme: LabelScheme, states: Collection[JobState] | None, labels: Collection[str], open: bool | None
) -> dict[str, Any]:
    """The ``state`` and ``labels`` query parameters that narrow a listing as far as GitHub can."""
    wanted = set(states) if states is not None else None
    if open is not None:
        issue_state = "open" if open else "closed"
    elif wanted and all(s.is_open for s in wanted):
        issue_state = "open"
    else:
        issue_state = "all"
    names = list(labels)
    if wanted is not None and len(wanted) == 1:
        (only,) = wanted
        if only is not JobState.CANCELLED:  # hand-closed jobs are cancelled whatever their label
            names.insert(0, labels_scheme.label(only))
    query: dict[str, Any] = {"state": issue_state}
    if names:
        query["labels"] = ",".join(names)
    return query


def list_jobs(
    store: GitHubStore,
    *,
    states: Collection[JobState] | None,
    labels: Collection[str],
    open: bool | None,
    cursor: str | None,
    limit: int,
) -> Page:
    """:meth:`Store.list_jobs`: the cursor is the URL of the page to read next and how many of its issues to skip."""
    wanted = set(states) if states is not None else None
    if wanted is not None and not wanted:
        return Page(jobs=[], cursor=None)

    def matches(record: Record) -> bool:
        job = record.job
        return (
            record.kind == "job"
            and (wanted is None or job.state in wanted)
            and (open is None or job.open == open)
            and has_labels(job.labels, labels)
        )

    if cursor:
        url, skip = decode_cursor(store, cursor)
    else:
        url, skip = store._issues_url(**list_query(store.labels, states, labels, open)), 0
    found: list[Job] = []
    for fetched, records in store._pages(url):
        for index in range(skip, len(records)):
            if not matches(records[index]):
                continue
            if len(found) >= limit:
                return Page(jobs=found, cursor=encode_cursor(fetched.url, index))
            found.append(records[index].job)
        skip = 0
    return Page(jobs=found, cursor=None)


def recently_changed(store: GitHubStore, states: Collection[JobState], limit: int) -> list[Job]:
    """:meth:`Store.recently_changed`: the issues GitHub lists last updated first, narrowed as :func:`list_query`
    narrows a listing: one request when ``limit`` jobs are on its first page. The page is sorted again by the jobs'
    own ``updated_at`` (GitHub's moves with any edit of the issue)."""
    wanted = set(states)
    if not wanted:
        return []
    url = store._issues_url(**list_query(store.labels, wanted, (), None), sort="updated", direction="desc")
    found: list[Job] = []
    for _, records in store._pages(url):
        found.extend(r.job for r in records if r.kind == "job" and r.job.state in wanted)
        if len(found) >= limit:
            break
    return sorted(found, key=lambda job: (job.updated_at, job.id), reverse=True)[:limit]


def count_jobs(store: GitHubStore, states: Collection[JobState] | None) -> dict[JobState, int]:
    """:meth:`Store.count` from label-filtered listings, one per state (three for cancelled: the label, and closed
    issues still labelled pending or processing).

    Pages between the first and the last of a long listing are assumed full (100 jobs each) — GitHub's
    ``link: rel="last"`` gives their number — so counting 10,000 finished jobs costs two requests, not a hundred.
    """
    wanted = list(states) if states is not None else list(JobState)
    counts: dict[JobState, int] = {}
    for state in wanted:
        if state.is_open:
            counts[state] = _count(store, state, "open", state)
        elif state is JobState.CANCELLED:
            counts[state] = (
                _count(store, state, "all", state)
                + _count(store, JobState.PENDING, "closed", state)
                + _count(store, JobState.PROCESSING, "closed", state)
            )
        else:
            counts[state] = _count(store, state, "all", state)
    return counts


def _count(store: GitHubStore, label_state: JobState, issue_state: str, counted: JobState) -> int:
    url = store._issues_url(state=issue_state, labels=store.labels.label(label_state))

    def hits(fetched: Fetched) -> int:
        records = (store._record(item) for item in fetched.data)
        return sum(1 for r in records if r.kind == "job" and r.job.state is counted)

    first = store._client.get(url, what="count jobs")
    total = hits(first)
    last_url = first.links.get("last")
    last_page = page_number(last_url)
    if last_url and last_page and last_page > 2:
        return total + (last_page - 2) * PER_PAGE + hits(store._client.get(last_url, what="count jobs"))
    for _, records in store._pages(first.links.get("next")):
        total += sum(1 for r in records if r.kind == "job" and r.job.state is counted)
    return total


def purge_jobs(store: GitHubStore, states: Collection[JobState], older_than: datetime) -> int:
    """:meth:`Store.purge` by archiving: GitHub cannot delete issues with a normal token.

    A purged job's issue loses its status label, gets the ``archived`` label, is closed (and locked unless
    ``lock_purged`` is off), and its claim, expiry and idempotency refs are deleted. It is then no longer listed,
    counted or readable through the store, and its idempotency key is free again.
    """
    wanted = set(states)
    doomed: dict[int, Record] = {}
    for state in wanted:
        for _, records in store._pages(store._issues_url(**list_query(store.labels, {state}, (), None))):
            for record in records:
                job = record.job
                if record.kind == "job" and job.state in wanted and job.updated_at < older_than:
                    doomed[job.id] = record
    for record in doomed.values():
        _archive(store, record)
    return len(doomed)


def _archive(store: GitHubStore, record: Record) -> None:
    job = record.job
    data: dict[str, Any] = {"labels": [store.labels.archived, *job.labels], "state": "closed"}
    if job.state is not None and job.state.state_reason:
        data["state_reason"] = job.state.state_reason
    client = store._client
    response = client.call(
        lambda gh: gh.rest.issues.update(store.owner, store.repo, job.id, data=cast(Any, data)),
        expect=(404, 410),
        what=f"archive job {job.id}",
    )
    if response.status_code == 200:
        store._wrote(response.json())  # else a read of the job waits out read_lag for the completed write
    if store._lock_purged:
        client.call(
            lambda gh: gh.rest.issues.lock(store.owner, store.repo, job.id, data={"lock_reason": "resolved"}),
            expect=(403, 404, 410, 422),
            what=f"lock job {job.id}",
        )
    prefixes = [f"octoqueue/claims/{job.id}-", f"octoqueue/expired/{job.id}-"]
    if job.idempotency_key is not None:
        prefixes.append(key_ref(store.labels.prefix, job.idempotency_key)[len("refs/") :])
        prefixes.append(key_job_ref(store.labels.prefix, job.idempotency_key, 0)[len("refs/") : -1])
    for prefix in prefixes:
        store._refs.delete_under(prefix)


# -- cursors and links ---------------------------------------------------------------------------------------------
#: The query parameters a cursor carries; page size and order are always the store's own (see issues_url).
CURSOR_PARAMS = frozenset({"state", "labels", "page"})


def encode_cursor(url: str, skip: int) -> str:
    """A cursor names the page by its query only: never a host or a path, so it cannot steer the store's
    authenticated requests anywhere but this repository's issue listing."""
    query = [(k, v) for k, v in parse_qsl(urlsplit(url).query) if k in CURSOR_PARAMS]
    raw = json.dumps({"q": query, "s": skip}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(store: GitHubStore, cursor: str) -> tuple[str, int]:
    """The listing URL (a path of this store's repository) and the skip a cursor stands for."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        query = {str(k): str(v) for k, v in value["q"]}
        skip = int(value["s"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a cursor of this store: {cursor!r}") from exc
    if not set(query) <= CURSOR_PARAMS or skip < 0:
        raise ValueError(f"not a cursor of this store: {cursor!r}")
    return store._issues_url(**query), skip


def page_number(url: str | None) -> int | None:
    """The ``page`` parameter of a ``link`` URL, if it has one."""
    if not url:
        return None
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "page" and value.isdigit():
            return int(value)
    return None
