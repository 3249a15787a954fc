"""Reading and writing one repository's issues as job records: the narrow object the store's helpers share.

:class:`IssueIO` owns what every helper needs of a GitHub store and nothing else: the client and the repository's
paths, the parsed-record cache (a listing re-read does not parse its issues again), conditional reads that wait out
GitHub's replica lag after this process's own writes, the one-PATCH write of a job, and the claims this process
holds. The helpers (claims, listing, posts, settings, people) get it — plus the ref locks and the clock where they
need them — instead of the whole :class:`~octoqueue.stores.github.store.GitHubStore`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, cast

from octoqueue.errors import JobNotFound
from octoqueue.job import Job
from octoqueue.states import JobState, LabelScheme
from octoqueue.stores.github.client import Fetched, GitHubClient
from octoqueue.stores.github.dropped import check_label_kept
from octoqueue.stores.github.issues import Record, issue_record, patch_for

PER_PAGE = 100
#: Parsed issues kept (by content) so that re-reading a listing does not parse its issues again.
RECORD_CACHE = 2_000


class IssueIO:
    """The issues of ``owner/repo`` read as job records and written back, through ``client``.

    ``settings_number`` answers the settings issue's number when this process knows it (no request), so that the
    settings issue reads as such even after a person took its label off. ``read_lag``: see :meth:`fetch`.
    """

    def __init__(
        self,
        client: GitHubClient,
        owner: str,
        repo: str,
        labels: LabelScheme,
        *,
        read_lag: float,
        settings_number: Callable[[], int | None],
    ) -> None:
        self.client = client
        self.owner, self.repo = owner, repo
        self.labels = labels
        self.read_lag = read_lag
        self.path = f"/repos/{owner}/{repo}"
        self._settings_number = settings_number
        self._lock = threading.RLock()
        self._records: OrderedDict[tuple[Any, ...], Record] = OrderedDict()
        #: Jobs this process wrote within ``read_lag``: job id -> (``time.monotonic()`` of the write, the issue as
        #: the write's answer showed it), so a read from a lagging replica is recognised and repeated.
        self._written: OrderedDict[int, tuple[float, dict[str, Any]]] = OrderedDict()
        #: Jobs this process claimed and still holds, as its own write left them.
        self._held: dict[int, Record] = {}
        #: Issues that block others, as the latest read or write of each said (``issue_dependencies_summary``);
        #: None until GitHub sent a summary at all.
        self._blocking: set[int] | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    def issues_url(self, **params: Any) -> str:
        """The URL of an issue listing of the repository, oldest first, 100 a page, narrowed by ``params``."""
        query = {"per_page": PER_PAGE, "sort": "created", "direction": "asc"}
        query.update(params)
        return self.client.url(f"{self.path}/issues", query)

    def record(self, item: dict[str, Any]) -> Record:
        """The issue as a job record; parsed once per distinct content (listings repeat most issues)."""
        self._note_blocking(item)
        labels = item.get("labels") or ()
        key = (
            item.get("number"),
            item.get("updated_at"),
            item.get("state"),
            item.get("title"),
            item.get("body"),
            item.get("comments"),
            tuple(label["name"] if isinstance(label, dict) else label for label in labels),
            item.get("pull_request") is not None,
        )
        with self._lock:
            found = self._records.get(key)
            if found is not None:
                self._records.move_to_end(key)
                return found
        record = issue_record(item, self.labels)
        if record.kind == "job" and record.job.id == self._settings_number():
            record = dataclasses.replace(record, kind="settings")  # its label was taken off by hand
        with self._lock:
            self._records[key] = record
            while len(self._records) > RECORD_CACHE:
                self._records.popitem(last=False)
        return record

    def fetch(self, job_id: int) -> Record:
        """The job's issue, read with a conditional GET; JobNotFound for PRs, settings and archived issues.

        When this process wrote the job less than ``read_lag`` seconds ago, an answer older than that write (or a
        404) comes from a replica behind it, and the read is repeated until it shows the write or the time is up.
        """
        url, delay = f"{self.path}/issues/{int(job_id)}", 0.05
        while True:
            with self._lock:
                mine = self._written.get(int(job_id))
            behind = mine is not None and time.monotonic() - mine[0] < self.read_lag
            try:
                fetched = self.client.get(url, job_id=job_id, what=f"read job {job_id}", use_cache=not behind)
            except JobNotFound:
                if not behind:
                    raise
            else:
                if not behind or _not_older(fetched.data, mine[1]):  # type: ignore[index]
                    break
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        record = self.record(fetched.data)
        if record.kind != "job":
            raise JobNotFound(job_id)
        return record

    def unchanged(self, record: Record) -> bool:
        """Whether the issue still is as ``record`` says (state, attempt, lease, pending generation)."""
        try:
            fresh = self.fetch(record.job.id)
        except JobNotFound:
            return False
        a, b = fresh.job, record.job
        return (fresh.gen, a.state, a.open, a.attempt, a.lease_expires_at) == (
            record.gen,
            b.state,
            b.open,
            b.attempt,
            b.lease_expires_at,
        )

    def wrote(self, item: dict[str, Any]) -> None:
        """Note that this process just wrote issue ``item`` (as GitHub answered the write), for :meth:`fetch`."""
        now = time.monotonic()
        with self._lock:
            self._written[int(item["number"])] = (now, item)
            self._written.move_to_end(int(item["number"]))
            while self._written and now - next(iter(self._written.values()))[0] >= self.read_lag:
                self._written.popitem(last=False)

    def pages(self, url: str | None) -> Iterator[tuple[Fetched, list[Record]]]:
        """Each page of an issue listing from ``url`` on, with its records."""
        while url:
            fetched = self.client.get(url, what="list jobs")
            yield fetched, [self.record(item) for item in fetched.data]
            url = fetched.links.get("next")

    def write(self, record: Record, job: Job, gen: int, *, deadline: float | None = None) -> Job:
        """PATCH the issue to ``job`` in one request (labels, state, state_reason, body); return the new job."""
        data = patch_for(self.labels, record, job, gen)
        response = self.client.call(
            lambda gh: gh.rest.issues.update(self.owner, self.repo, job.id, data=cast(Any, data)),
            job_id=job.id,
            deadline=deadline,
            what=f"move job {job.id} to {job.status}",
        )
        item = response.json()
        self.wrote(item)
        check_label_kept(item, data["labels"][0], repo=self.full_name, what=f"updated job {job.id}")
        written = self.record(item)
        with self._lock:
            if written.job.state is JobState.PROCESSING:
                self._held[job.id] = written
            else:
                self._held.pop(job.id, None)
        return written.job

    # -- claims this process holds --------------------------------------------------------------------------------
    def held(self, job_id: int) -> Record | None:
        """Job ``job_id`` as this process's claim of it left it, if it still holds it (no request)."""
        with self._lock:
            return self._held.get(job_id)

    def release(self, job_id: int, held: Record) -> None:
        """Forget the claim ``held`` of job ``job_id`` (it is over), unless a newer one replaced it."""
        with self._lock:
            if self._held.get(job_id) is held:
                del self._held[job_id]

    # -- dependencies -----------------------------------------------------------------------------------------
    def _note_blocking(self, item: dict[str, Any]) -> None:
        summary, number = item.get("issue_dependencies_summary"), item.get("number")
        if not isinstance(summary, dict) or not isinstance(number, int):
            return
        with self._lock:
            if self._blocking is None:
                self._blocking = set()
            if summary.get("total_blocking"):
                self._blocking.add(number)
            else:
                self._blocking.discard(number)

    def blocks_others(self, job_id: int) -> bool | None:
        """Whether job ``job_id``'s issue blocks others, as the latest response about it said (no request)."""
        with self._lock:
            return None if self._blocking is None else int(job_id) in self._blocking


def _not_older(fetched: dict[str, Any], written: dict[str, Any]) -> bool:
    """Whether issue ``fetched`` shows the write that answered ``written``, or a later one. ``updated_at`` has whole
    seconds: within the write's second, only an issue equal to the written one (state, labels, body) counts."""
    seen, wrote = str(fetched.get("updated_at") or ""), str(written.get("updated_at") or "")
    if seen != wrote:
        return seen > wrote

    def content(item: dict[str, Any]) -> tuple[Any, ...]:
        names = sorted(str(x.get("name") if isinstance(x, dict) else x).lower() for x in item.get("labels") or ())
        return item.get("state"), names, item.get("body")

    return content(fetched) == content(written)


__all__ = ["IssueIO"]
