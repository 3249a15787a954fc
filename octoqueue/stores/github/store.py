"""``github://owner/repo``: jobs are GitHub issues, states are labels, claims are git refs.

A job is an issue: the issue number is the job id, the body holds the data (a fenced JSON block) and octoqueue's
metadata (a hidden HTML comment: attempt, worker, lease, ...), one label says the state, the other labels are the
job's own. Issues people make or change by hand are read, never crashed on (see :func:`issue_record`).

**Exclusive moves.** GitHub has no compare-and-swap on labels, but it creates a git ref only if it is absent
(``POST /git/refs`` answers 422 "Reference already exists" otherwise). Every move that must happen once takes a
ref first and only then PATCHes the issue:

* leaving a pending spell — a claim, or a cancel/complete/fail/edit of a pending job — takes
  ``refs/octoqueue/claims/{number}-{attempt+1}`` (``-g{gen}`` appended once a pending spell ended without an
  attempt, so every spell has its own name). The attempt number in the name is the fencing token.
* taking back an expired lease — :meth:`recover_expired`, or a late finish/heartbeat by the holder — takes
  ``refs/octoqueue/expired/{number}-{attempt}-{lease_ms}``, one name per lease.
* one job per idempotency key: ``refs/octoqueue/keys/{sha}``; settings revisions: ``refs/octoqueue/settings/...``.

A winner that crashed between the ref and the PATCH would leave a name taken and the job stuck, so a name seen
taken for ``orphan_grace`` seconds while the job stayed unchanged may be *rescued*: the next name ``...-r1`` is
taken instead. A winner never sends its PATCH later than ``orphan_grace / 2`` after taking the ref, so a rescuer
cannot race a slow winner.

**Few requests.** Create is one POST (labels included). A claim lists pending issues with ``If-None-Match`` (an
idle queue costs 304s, which GitHub does not count against the rate limit), reuses that listing for
``listing_ttl`` seconds, then POSTs the ref and PATCHes labels and body in one request. A holder finishes with one
PATCH (labels, state, state_reason and body together) without reading the issue first: it knows the job from its
claim, and no one else may move the job while its lease is valid on GitHub's clock (``Date`` headers) with
``lease_margin`` seconds to spare. Past that margin, or for a job this store did not claim, the issue is read
first (a conditional GET) and the expected state and attempt are checked. See ``docs/github-store.md``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from octoqueue.authorship import is_own_account
from octoqueue.dispatch import DEFAULT_EVENT_TYPE, dispatch_enabled
from octoqueue.errors import ConfigurationError, OctoqueueError, StateConflict
from octoqueue.job import Comment, Job, NewJob, Page
from octoqueue.states import JobState, LabelScheme, label_key
from octoqueue.stores.base import Clock, Store, apply_transition, check_changes, expire
from octoqueue.stores.github import importing, listing, people, posts
from octoqueue.stores.github.claims import Claimer, Wanted
from octoqueue.stores.github.client import GitHubClient, RateLimit, credential_key, shared_pacer
from octoqueue.stores.github.issue_io import PER_PAGE, IssueIO
from octoqueue.stores.github.issues import (
    ARCHIVED_COLOUR,
    SETTINGS_COLOUR,
    STATE_COLOURS,
    claim_ref,
    expired_ref,
)
from octoqueue.stores.github.refs import RefLocks
from octoqueue.stores.github.settings import SettingsIssue

log = logging.getLogger("octoqueue.github")

DEFAULT_API_URL = "https://api.github.com"


class GitHubStore(Store):
    """Jobs as issues of one repository (see the module docstring for the design).

    ``repo`` is ``"owner/name"``, or ``owner=`` plus ``repo="name"`` (env ``GITHUB_REPO`` or
    ``GITHUB_REPOSITORY`` when neither is given). Credentials: ``token`` (else env ``GH_TOKEN``, else
    ``GITHUB_TOKEN``), or a GitHub App installation (``app_id``, ``private_key`` as PEM text or a path,
    ``installation_id``). ``base_url``: the REST API root (else env ``GITHUB_API_URL``, else api.github.com);
    ``transport``: an ``httpx`` transport (tests use the emulator's). ``labels`` (or ``prefix``) name the status
    labels.

    Tuning: ``writes_per_minute``/``writes_per_hour`` pace writes (``paced_methods``: every mutating method by
    default, as GitHub may count any of them against its secondary limits; None = unpaced) — per token, not per
    store: every store of the process on one token and API root shares one pacer, with a margin to spare
    (:func:`~octoqueue.stores.github.client.shared_pacer`); ``retries`` and
    ``retry_backoff`` for 5xx and network errors; ``rate_limit_backoff`` is the first wait after a rate-limit
    answer without ``retry-after`` (doubling), ``max_rate_limit_wait`` the longest wait slept before
    :class:`~octoqueue.errors.RateLimited` is raised; ``lease_margin`` the seconds of lease a holder must have
    left to finish without reading the issue first; ``listing_ttl`` how long a listing of pending jobs is reused
    by claims; ``orphan_grace`` how long a taken ref may stay without effect before it is rescued; ``read_lag``
    how many seconds GitHub's reads may lag its writes (replicas): after an ambiguous POST the store looks that
    long for the issue or comment before posting again, and a read of a job this store wrote within that time
    is repeated until it shows the write;
    ``scan_pages`` how many pages (of 100) of pending jobs a claim considers (priority is honoured among those);
    ``claim_spread`` among how many of the oldest jobs of the best priority a store picks at random once it has
    lost a claim race to another process (a single claimer always takes the oldest);
    ``lock_purged`` locks the issues of purged jobs. ``wake_workflow`` (default: env ``OCTOQUEUE_DISPATCH``) sends
    a ``repository_dispatch`` (``octoqueue-job``, ``client_payload.job_id``) after each job created runnable, for
    producers whose issues start no workflow run (those using a workflow's ``GITHUB_TOKEN``). ``clock``: what
    :meth:`now` reads, by default GitHub's clock as estimated from its ``Date`` headers (tests pass a
    :class:`~octoqueue.testing.clock.ManualClock`; rate-limit waits stay on GitHub's clock).

    Public surface: the :class:`~octoqueue.stores.base.Store` contract plus these GitHub extras — ``owner``,
    ``repo``, ``base_url``, ``wake_workflow``, :attr:`rate_limit`, :attr:`request_stats`, :meth:`ensure_ready`,
    :meth:`remove_label`, :meth:`workflow_woken`, :meth:`full_name`, :meth:`own_login`, :meth:`permission_of`,
    :meth:`adopt_settings_issue`. The helper modules of this package get only what they need: the issue
    reader/writer (:class:`~octoqueue.stores.github.issue_io.IssueIO`), the ref locks and the clock.
    """

    #: A waiter re-reads the issue this often: a conditional GET that GitHub answers 304 costs no rate limit.
    wait_poll_interval = 2.0

    def __init__(
        self,
        repo: str | None = None,
        *,
        owner: str | None = None,
        token: str | None = None,
        base_url: str | None = None,
        transport: Any = None,
        labels: LabelScheme | None = None,
        prefix: str | None = None,
        app_id: int | str | None = None,
        private_key: str | None = None,
        installation_id: int | None = None,
        writes_per_minute: float | None = 80,
        writes_per_hour: float | None = 500,
        paced_methods: Collection[str] = ("POST", "PATCH", "PUT", "DELETE"),
        max_concurrency: int = 100,
        timeout: float = 30.0,
        retries: int = 3,
        retry_backoff: float = 1.0,
        rate_limit_backoff: float = 60.0,
        max_rate_limit_wait: float = 60.0,
        lease_margin: float = 10.0,
        listing_ttl: float = 2.0,
        orphan_grace: float = 60.0,
        read_lag: float = 5.0,
        scan_pages: int = 1,
        claim_spread: int = 16,
        lock_purged: bool = True,
        user_agent: str | None = None,
        wake_workflow: bool | None = None,
        clock: Clock | None = None,
    ) -> None:
        if labels is not None and prefix is not None and labels.prefix != prefix:
            raise ConfigurationError("give labels= or prefix=, not both")
        super().__init__(labels or LabelScheme(prefix or ""), clock=clock)
        self.owner, self.repo = _repo_name(repo, owner)
        api = (base_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        self.base_url = api
        query = [("prefix", self.labels.prefix)] if self.labels.prefix else []
        if api != DEFAULT_API_URL:
            query.append(("base_url", api))
        self.url = f"github://{self.owner}/{self.repo}" + (
            "?" + "&".join(f"{k}={v}" for k, v in query) if query else ""
        )
        self._lease_margin = lease_margin
        self._lock_purged = lock_purged
        # Issues created with a workflow's GITHUB_TOKEN start no workflow run: send repository_dispatch instead.
        self.wake_workflow = dispatch_enabled() if wake_workflow is None else wake_workflow
        self._wakes: OrderedDict[int, bool] = OrderedDict()  # job id -> whether its dispatch went through
        self._wakes_lock = threading.Lock()
        auth = _auth(token, app_id, private_key, installation_id)
        self._client = GitHubClient(
            auth=auth,
            base_url=api,
            transport=transport,
            timeout=timeout,
            pacer=shared_pacer(
                credential_key(auth),
                api,
                transport=transport,
                per_minute=writes_per_minute,
                per_hour=writes_per_hour,
                methods=paced_methods,
                max_concurrency=max_concurrency,
            ),
            retries=retries,
            retry_backoff=retry_backoff,
            rate_limit_backoff=rate_limit_backoff,
            max_rate_limit_wait=max_rate_limit_wait,
            user_agent=user_agent,
        )
        if clock is None:
            self._clock = self._client.clock.now  # GitHub's clock, as estimated from its ``Date`` headers
        self._setup_lock = threading.Lock()
        self._labels_ready = False
        self._job_locks = [threading.RLock() for _ in range(64)]  # striped by job id: bounded, per-job enough
        self._issues = IssueIO(
            self._client,
            self.owner,
            self.repo,
            self.labels,
            read_lag=read_lag,
            settings_number=lambda: self._settings.known_number(),
        )
        self._refs = RefLocks(self._client, self.owner, self.repo, orphan_grace=orphan_grace)
        self._settings = SettingsIssue(self._issues, self._refs)
        self._claimer = Claimer(
            self._issues,
            self._refs,
            self.now,
            listing_ttl=listing_ttl,
            claim_spread=claim_spread,
            scan_pages=scan_pages,
        )
        self._own_login: tuple[str | None] | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> GitHubStore:
        """``github://owner/repo[?prefix=oq-&base_url=https://ghe.example/api/v3]`` plus keyword options."""
        parts = urlsplit(url)
        name = parts.path.strip("/")
        if parts.scheme.lower() != "github" or not parts.netloc or not name or "/" in name:
            raise ConfigurationError(f"a GitHub store URL looks like github://owner/repo, not {url!r}")
        for key, values in parse_qs(parts.query).items():
            if key not in ("prefix", "base_url"):
                raise ConfigurationError(f"unknown option {key!r} in {url!r} (known: prefix, base_url)")
            options.setdefault(key, values[-1])
        return cls(f"{parts.netloc}/{name}", **options)

    # -- plumbing shared with the helpers ---------------------------------------------------------------------
    @property
    def rate_limit(self) -> RateLimit:
        """GitHub's primary rate-limit counters (limit, remaining, used, reset) from the latest response."""
        return self._client.rate_limit

    @property
    def request_stats(self) -> dict[str, int]:
        """Requests sent by this store: ``requests``, ``writes``, ``not_modified`` and one count per method."""
        return dict(self._client.stats)

    def close(self) -> None:
        self._client.close()

    # -- setup, once per store ----------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        """Create missing labels (with colours) once for the life of the store; later calls cost nothing."""
        if self._labels_ready:
            return
        with self._setup_lock:
            if self._labels_ready:
                return
            existing: set[str] = set()
            url: str | None = self._client.url(f"{self._issues.path}/labels", {"per_page": PER_PAGE})
            while url:
                fetched = self._client.get(url, what="list labels", use_cache=False)
                existing.update(label_key(str(label["name"])) for label in fetched.data)
                url = fetched.links.get("next")
            wanted = {self.labels.label(s): c for s, c in STATE_COLOURS.items()}
            wanted[self.labels.settings] = SETTINGS_COLOUR
            wanted[self.labels.archived] = ARCHIVED_COLOUR
            for name, (colour, description) in wanted.items():
                if label_key(name) in existing:  # GitHub's names ignore case: `Pending` is our `pending`
                    continue
                data = {"name": name, "color": colour, "description": description}
                self._client.call(
                    lambda gh, data=data: gh.rest.issues.create_label(self.owner, self.repo, data=data),  # type: ignore[misc]
                    expect=(422,),
                    what=f"create label {name}",
                )  # 422 already_exists: another process made it first
            self._labels_ready = True

    # -- reading ------------------------------------------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        return self._issues.fetch(job_id).job

    # -- the store verbs ----------------------------------------------------------------------------------------
    def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Collection[str] = (),
        open: bool | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        return listing.list_jobs(self._issues, states=states, labels=labels, open=open, cursor=cursor, limit=limit)

    def recently_changed(self, states: Collection[JobState], *, limit: int = 10) -> list[Job]:
        return listing.recently_changed(self._issues, states, limit)

    def count(self, states: Collection[JobState] | None = None) -> dict[JobState, int]:
        return listing.count_jobs(self._issues, states)

    def purge(self, *, states: Collection[JobState], older_than: datetime) -> int:
        """Archives (see :func:`~octoqueue.stores.github.listing.purge_jobs`): GitHub cannot delete issues."""
        self.ensure_ready()
        return listing.purge_jobs(self._issues, self._refs, states, older_than, lock=self._lock_purged)

    def create(self, new: NewJob) -> Job:
        self.ensure_ready()
        job = posts.create_job(self._issues, self._refs, self.now, new)
        if self.wake_workflow and (job.run_at is None or job.run_at <= self.now()):
            sent = self._wake(job.id)
            with self._wakes_lock:
                self._wakes[job.id] = sent
                while len(self._wakes) > 1000:
                    self._wakes.popitem(last=False)
        return job

    def import_job(self, job: Job, comments: Sequence[Comment] = ()) -> Job:
        """See :mod:`~octoqueue.stores.github.importing`: the issue keeps the job's number, or StateConflict."""
        self.ensure_ready()
        return importing.import_job(self._issues, self.now, job, comments)

    def workflow_woken(self, job_id: int) -> bool | None:
        """Whether this store's ``repository_dispatch`` for a job it recently created went through; None when it
        sent none (waking is off, the job was not due, or it was created long ago or elsewhere)."""
        with self._wakes_lock:
            return self._wakes.get(job_id)

    def _wake(self, job_id: int) -> bool:
        """Start the worker workflow for a new job (``repository_dispatch``, event type ``octoqueue-job``); True
        when GitHub accepted it. A failure is logged, not raised: the job exists, and the workflow's schedule picks
        it up anyway."""
        try:
            self._client.call(
                lambda gh: gh.rest.repos.create_dispatch_event(
                    self.owner,
                    self.repo,
                    data={"event_type": DEFAULT_EVENT_TYPE, "client_payload": {"job_id": job_id}},
                ),
                idempotent=False,
                job_id=job_id,
                what=f"wake the worker workflow for job {job_id}",
            )
        except OctoqueueError as exc:
            log.warning("job %d: could not send repository_dispatch (%s); a scheduled run will take it", job_id, exc)
            return False
        return True

    def claim(
        self,
        *,
        worker: str,
        lease: float,
        limit: int = 1,
        labels: Collection[str] = (),
        types: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        exclude_labels: Collection[str] = (),
        exclude_types: Collection[str] = (),
    ) -> list[Job]:
        self.ensure_ready()
        wanted = Wanted(labels, types, exclude_labels, exclude_types)
        return self._claimer.claim(worker=worker, lease=lease, limit=limit, wanted=wanted, ids=ids)

    def comment(self, job_id: int, body: str) -> Comment:
        self.ensure_ready()
        return posts.post_comment(self._issues, self.now, job_id, body)

    def comments(self, job_id: int) -> list[Comment]:
        return posts.list_comments(self._issues, job_id, imported_by=self._posts_imports)

    def _posts_imports(self, login: str) -> bool:
        """Whether ``login`` is the account that posts this store's imported comments: its own."""
        return is_own_account(login, self.own_login())

    def remove_label(self, job_id: int, name: str) -> None:
        """Take the extra label ``name`` off job ``job_id``'s issue: one DELETE; a label already gone is fine.

        Not part of the store contract: only GitHub has labels that people add by hand (the webhook's ``requeue``
        label). Status labels move only through :meth:`transition`, so they are refused here.
        """
        if self.labels.is_status(name):
            raise ValueError(f"{name!r} is a status label; move the job with a transition instead")
        self.ensure_ready()
        self._client.call(
            lambda gh: gh.rest.issues.remove_label(self.owner, self.repo, int(job_id), name),
            expect=(404,),  # the label (or the issue) is not there: nothing to remove
            what=f"remove label {name!r} from job {job_id}",
        )

    def blocks_others(self, job_id: int) -> bool | None:
        """Whether job ``job_id``'s issue blocks other issues, as the latest response about it said (no request):
        a finish's own PATCH answers it, so a finished job without dependents costs no request to look up."""
        return self._issues.blocks_others(job_id)

    def link_dependencies(self, job_id: int, parent_ids: Sequence[int]) -> None:
        """Make each of ``parent_ids`` block job ``job_id`` with GitHub's issue dependencies (``POST
        .../issues/{n}/dependencies/blocked_by`` with the parent's database id, read from its issue), so the issue
        shows "Blocked by". A request per parent plus its read (usually a 304); one already linked (422) is fine.

        Not part of the store contract: octoqueue reads a job's parents from its own comment, which every store
        keeps (see :mod:`octoqueue.dependencies`); this is what people see on GitHub."""
        for parent in parent_ids:
            read = self._client.get(f"{self._issues.path}/issues/{int(parent)}", what=f"read job {parent}")
            issue_id = int(read.data["id"])
            self._client.call(
                lambda gh, issue_id=issue_id: gh.rest.issues.add_blocked_by_dependency(  # type: ignore[misc]
                    self.owner, self.repo, int(job_id), data={"issue_id": issue_id}
                ),
                idempotent=False,
                expect=(422,),
                job_id=job_id,
                what=f"mark job {job_id} blocked by job {parent}",
            )

    # -- people (the webhook's ChatOps; not part of the store contract) ----------------------------------------
    @property
    def full_name(self) -> str:
        """``owner/repo``: the repository whose webhooks may drive this store's jobs."""
        return f"{self.owner}/{self.repo}"

    def own_login(self) -> str | None:
        """The login this store writes as (``GET /user``, asked once); None for a GitHub App's token."""
        if self._own_login is None:  # two threads asking at once both ask GitHub; the answer is the same
            self._own_login = (people.authenticated_login(self._client),)
        return self._own_login[0]

    def permission_of(self, login: str) -> str:
        """``login``'s base permission on the repository, as GitHub tells it: admin, write, read or none."""
        return people.permission(self._issues, login)

    def get_setting(self, key: str) -> Any:
        return self._settings.get(key)

    def update_setting(self, key: str, update: Callable[[Any], Any]) -> Any:
        """Replace the value under ``key`` by ``update(current)`` atomically (None deletes it); return the new
        value. ``update`` may run more than once (again on fresh settings when another writer got in first)."""
        self.ensure_ready()
        return self._settings.update(key, update)

    def adopt_settings_issue(self, number: int) -> None:
        """Name issue ``number`` — a settings issue of an octoqueue older than settings refs, checked by an
        operator — as this store's settings issue (see docs/github-store.md, "Settings")."""
        self._settings.adopt(number)

    # -- moving -------------------------------------------------------------------------------------------------
    def _holder_deadline(self, job: Job, now: datetime) -> float:
        """The latest ``time.monotonic()`` the holder's unread write may be (re)sent: half the margin before the
        lease ends on GitHub's clock, so retries and rate-limit waits cannot land it after another store took the
        job back."""
        assert job.lease_expires_at is not None
        left = (job.lease_expires_at - now).total_seconds() - self._lease_margin / 2
        return time.monotonic() + left

    def _lease_safe(self, job: Job) -> bool:
        until = job.lease_expires_at
        return until is not None and self.now() + timedelta(seconds=self._lease_margin) < until

    def transition(
        self,
        job_id: int,
        *,
        expected: JobState | Collection[JobState] | None,
        target: JobState,
        attempt: int | None = None,
        **changes: Any,
    ) -> Job:
        check_changes(changes)
        # One move of a job at a time in this process: a heartbeat between its read and its write must not
        # land after this process's own finish (it would put the job back to processing).
        with self._job_locks[job_id % len(self._job_locks)]:
            held = self._issues.held(job_id)
            if (
                held is not None
                and attempt is not None
                and attempt == held.job.attempt
                and target is not JobState.PROCESSING
                and self._lease_safe(held.job)
            ):
                # The holder finishing, well inside its lease: no other store may move the job, so no read is needed.
                # A heartbeat (processing -> processing) reads first all the same (a conditional GET, usually a 304):
                # it would otherwise reopen an issue a person closed during the run, and the worker learns of such a
                # cancel from the LeaseLost it gets instead.
                now = self.now()
                job = apply_transition(
                    held.job, expected=expected, target=target, attempt=attempt, changes=changes, now=now
                )
                return self._issues.write(held, job, held.gen, deadline=self._holder_deadline(held.job, now))
            self.ensure_ready()
            for delay in (0.1, 0.3, 0.9, 2.7, None):
                record = self._issues.fetch(job_id)
                current = record.job
                if held is not None and (
                    current.state is not JobState.PROCESSING or current.attempt != held.job.attempt
                ):
                    self._issues.release(job_id, held)  # the claim this store made is over
                    held = None
                job = apply_transition(
                    current, expected=expected, target=target, attempt=attempt, changes=changes, now=self.now()
                )
                gen = record.gen
                if current.state is JobState.PENDING and current.open:
                    won = self._refs.take(
                        claim_ref(job_id, current.attempt + 1, record.gen),
                        still_current=lambda record=record: self._issues.unchanged(record),  # type: ignore[misc]
                    )
                    deadline = self._refs.deadline(self._client.last_sent())  # from when the ref was sent
                    gen += 1  # this pending spell ended without a new attempt: the next one needs new names
                elif current.state is JobState.PROCESSING and current.open and not self._lease_safe(current):
                    won = self._refs.take(
                        expired_ref(job_id, current.attempt, current.lease_expires_at or current.updated_at),
                        still_current=lambda record=record: self._issues.unchanged(record),  # type: ignore[misc]
                    )
                    deadline = self._refs.deadline(self._client.last_sent())
                elif current.state is JobState.PROCESSING and current.open:
                    won, deadline = True, self._holder_deadline(current, self.now())  # no ref: the lease guards it
                else:
                    won, deadline = True, self._refs.deadline(time.monotonic())
                if won:
                    return self._issues.write(record, job, gen, deadline=deadline)
                if delay is None:
                    break
                time.sleep(delay)  # someone else is moving the job right now: look again
            raise StateConflict(job_id, "another client kept changing the job at the same time; try again")

    def recover_expired(self, *, limit: int = 100) -> list[Job]:
        self.ensure_ready()
        url = self._issues.issues_url(state="open", labels=self.labels.label(JobState.PROCESSING))
        records = [r for _, page in self._issues.pages(url) for r in page]
        now = self.now()
        expired = sorted(
            (
                r
                for r in records
                if r.kind == "job" and r.job.state is JobState.PROCESSING and r.job.open and r.job.lease_expired(now)
            ),
            key=lambda r: r.job.id,
        )
        recovered: list[Job] = []
        for record in expired:
            if len(recovered) >= limit:
                break
            job = record.job
            assert job.lease_expires_at is not None
            name = expired_ref(job.id, job.attempt, job.lease_expires_at)
            if not self._refs.take(name, still_current=lambda record=record: self._issues.unchanged(record)):  # type: ignore[misc]
                continue
            started = self._client.last_sent()  # when the ref was sent
            if not self._issues.unchanged(record):
                continue  # the listing was behind (a renewal or a finish landed): this lease is not ours to end
            recovered.append(
                self._issues.write(record, expire(job, self.now()), record.gen, deadline=self._refs.deadline(started))
            )
        return recovered


# -- configuration ----------------------------------------------------------------------------------------------
def _repo_name(repo: str | None, owner: str | None) -> tuple[str, str]:
    repo = repo or (None if owner else os.environ.get("GITHUB_REPO") or os.environ.get("GITHUB_REPOSITORY"))
    if not repo:
        raise ConfigurationError("name the repository: repo='owner/name' (or env GITHUB_REPO)")
    if "/" in repo:
        found_owner, _, name = repo.partition("/")
        if owner and owner != found_owner:
            raise ConfigurationError(f"owner={owner!r} contradicts repo={repo!r}")
        owner = found_owner
    else:
        name = repo
    if not owner or not name or "/" in name:
        raise ConfigurationError(f"not a repository name: {repo!r} (use 'owner/name')")
    return owner, name


def _auth(token: str | None, app_id: int | str | None, private_key: str | None, installation_id: int | None) -> Any:
    if app_id is not None or private_key is not None or installation_id is not None:
        if app_id is None or private_key is None or installation_id is None:
            raise ConfigurationError("GitHub App auth needs app_id, private_key and installation_id")
        from githubkit import AppInstallationAuthStrategy

        key = private_key
        if not key.lstrip().startswith("-----BEGIN") and Path(key).is_file():
            key = Path(key).read_text()
        return AppInstallationAuthStrategy(app_id, key, int(installation_id))
    token = token or os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if not token:
        log.warning("no GitHub token (GH_TOKEN/GITHUB_TOKEN): requests are unauthenticated and cannot write")
        return None
    return token


__all__ = ["GitHubStore"]
