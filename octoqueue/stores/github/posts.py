"""The two POSTs GitHub does not make idempotent — creating an issue, adding a comment — made safe to retry.

A 5xx, timeout or dropped connection leaves unknown whether the issue or comment was made. Posting again blindly
would make two, so the store first looks: a new issue carries a random ``create_token`` in its metadata and is
searched for among the 100 newest issues; a comment is searched for among the issue's comments since just before
the first try. Only when it is not there is the POST repeated.

GitHub serves reads from replicas that may lag its writes by a few seconds, so "not there" only counts once the
store has kept looking for ``read_lag`` seconds after the failed POST (:func:`look_through_lag`).

Idempotency keys go further: ``refs/octoqueue/keys/{sha256}`` is taken before the issue is created (one creator
per key, even across processes), and ``refs/octoqueue/keyjobs/{sha256}-{number}`` afterwards records which issue
holds the key, so a second create finds it with one ``matching-refs`` request. The issue's create-token is derived
from the key ref's name (:func:`~octoqueue.stores.github.issues.key_create_token`): a creator that dies between
its POST and the ``keyjobs`` ref leaves an issue that whoever rescues the key ref finds by that token (refs are
read consistently, so the rescuer knows every name taken for the key) instead of posting the job again.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from octoqueue import body as issue_body
from octoqueue.errors import (
    AccessDenied,
    InvalidJobData,
    JobNotFound,
    JobTooLarge,
    OctoqueueError,
    RateLimited,
    StoreUnavailable,
)
from octoqueue.job import Comment, Job, NewJob
from octoqueue.states import JobState
from octoqueue.stores.github.client import Ambiguous, error_message
from octoqueue.stores.github.dropped import check_label_kept
from octoqueue.stores.github.issues import job_meta, key_create_token, key_job_ref, key_ref, parse_time

if TYPE_CHECKING:
    from octoqueue.stores.github.issue_io import IssueIO
    from octoqueue.stores.github.refs import RefLocks

log = logging.getLogger("octoqueue.github")

T = TypeVar("T")


def create_job(issues: IssueIO, refs: RefLocks, now: Callable[[], datetime], new: NewJob) -> Job:
    """:meth:`Store.create`: one POST with the labels included; with an idempotency key, under the key's ref."""
    if new.idempotency_key is None:
        return post_issue(issues, now, new)
    key = new.idempotency_key
    name = key_ref(issues.labels.prefix, key)
    give_up_waiting = time.monotonic() + refs.orphan_grace
    delay = 0.05
    first = True
    made: list[Job] = []  # a job for the key, found by a rescue's look for a dead creator's issue

    def nothing_made() -> bool:
        job = key_holder(issues, refs, key)
        if job is not None:
            made.append(job)
        return job is None

    while True:
        if first or time.monotonic() >= give_up_waiting:
            taken = refs.take_name(name, still_current=nothing_made)
            if taken is not None:
                # The ref was made just now: post while a rescuer would still wait (RefLocks.deadline), or not at
                # all, so a rescuer's look for this issue cannot come before the issue.
                deadline = refs.deadline(time.monotonic())
                job = post_issue(issues, now, new, token=key_create_token(taken), deadline=deadline)
                _record_key(issues, refs, key, job.id)
                return job
            if made:
                return made[-1]
        first = False
        existing = keyed_job(issues, refs, key)
        if existing is not None:
            return existing
        time.sleep(delay)  # the winner is creating the issue right now
        delay = min(delay * 2, 2.0)


def _record_key(issues: IssueIO, refs: RefLocks, key: str, number: int) -> None:
    """Write the ref that names issue ``number`` as the holder of idempotency key ``key``."""
    try:
        refs.create(key_job_ref(issues.labels.prefix, key, number))
    except StoreUnavailable:
        log.warning("job %s: could not record idempotency key %r", number, key, exc_info=True)


def keyed_job(issues: IssueIO, refs: RefLocks, key: str) -> Job | None:
    """The job that holds idempotency key ``key`` by its ``keyjobs`` ref, or None."""
    prefix = key_job_ref(issues.labels.prefix, key, 0)[len("refs/") : -1]
    for ref in refs.find(prefix):
        number = ref.rsplit("-", 1)[-1]
        if number.isdigit():
            found = look_through_lag(issues, lambda number=int(number): _job_or_none(issues, number))  # type: ignore[misc]
            if found is not None:
                return found
    return None


def key_holder(issues: IssueIO, refs: RefLocks, key: str) -> Job | None:
    """The job that holds idempotency key ``key``, or None: by its ``keyjobs`` ref, or else — its creator died
    between the POST and that ref — the issue carrying the create-token of one of the key's refs, every issue
    looked through (then the ``keyjobs`` ref is written for it). Only a rescue of a key ref asks this."""
    job = keyed_job(issues, refs, key)
    if job is not None:
        return job
    taken = refs.find(key_ref(issues.labels.prefix, key)[len("refs/") :])  # the name and its rescue names
    tokens = {key_create_token(name) for name in taken}
    if not tokens:
        return None
    doubt = f"a job with idempotency key {key!r} may exist"
    found = _insist(lambda: _find_created(issues, tokens, every_page=True), doubt)
    if found is None:  # a replica may not list the newest issues yet: those are on the first page
        found = look_through_lag(issues, lambda: _insist(lambda: _find_created(issues, tokens), doubt))
    if found is not None:
        log.warning("job %s holds idempotency key %r, but its creator died before recording it", found.id, key)
        _record_key(issues, refs, key, found.id)
    return found


def _job_or_none(issues: IssueIO, number: int) -> Job | None:
    try:
        return issues.fetch(number).job
    except JobNotFound:
        return None  # or a replica has not seen the issue yet


def post_issue(
    issues: IssueIO,
    now: Callable[[], datetime],
    new: NewJob,
    *,
    token: str | None = None,
    deadline: float | None = None,
) -> Job:
    """Create the issue of ``new``, with ``token`` (random by default) as its create-token; after an ambiguous
    failure, look for it before posting again. No POST is sent after ``deadline`` (``time.monotonic()``)."""
    token = token or secrets.token_hex(8)
    draft = new.to_job(0, now())
    body = issue_body.render(draft.data, job_meta(draft, 0, create_token=token))
    status = issues.labels.label(JobState.PENDING)
    data = {"title": new.title, "body": body, "labels": [status, *new.labels]}
    item = post_issue_data(issues, data, token, deadline=deadline)
    if isinstance(item, Job):
        return item
    try:
        check_label_kept(item, status, repo=issues.full_name, what=f"created issue #{item['number']}")
    except AccessDenied:
        _close_unlabelled(issues, int(item["number"]))
        raise
    return issues.record(item).job


def post_issue_data(
    issues: IssueIO, data: dict[str, Any], token: str, *, deadline: float | None = None
) -> dict[str, Any] | Job:
    """POST issue ``data``, whose body carries create-token ``token``: the new issue as GitHub answered, or — after
    an ambiguous failure — the job found carrying the token. No POST is sent after ``deadline``."""
    client = issues.client
    failure: Ambiguous | None = None
    doubt = f"the job may have been created (token {token})"
    for tries in range(client.retries + 1):
        try:
            response = client.call(
                lambda gh: gh.rest.issues.create(issues.owner, issues.repo, data=cast(Any, data)),
                idempotent=False,
                expect=(422,),
                deadline=deadline,
                what="create a job",
            )
        except Ambiguous as exc:
            failure = exc
            time.sleep(client.retry_backoff * (2**tries) * random.uniform(0.75, 1.25))
            found = look_through_lag(issues, lambda: _insist(lambda: _find_created(issues, {token}), doubt))
            log.warning("%s; the issue %s", exc, f"was made: #{found.id}" if found else "was not made: again")
            if found is not None:
                return found
            continue
        if response.status_code == 422:
            message = error_message(response)
            if "too long" in message:
                raise JobTooLarge(f"GitHub refused the job: {message}")
            raise InvalidJobData(f"GitHub refused the job: {message}")
        item: dict[str, Any] = response.json()
        issues.wrote(item)
        return item
    raise StoreUnavailable(f"could not create the job: {failure}") from failure


def _close_unlabelled(issues: IssueIO, number: int) -> None:
    """Close an issue made without its status label (it then reads as a cancelled job, never as a runnable one)."""
    try:
        issues.client.call(
            lambda gh: gh.rest.issues.update(
                issues.owner, issues.repo, number, data={"state": "closed", "state_reason": "not_planned"}
            ),
            job_id=number,
            what=f"close issue #{number}, created without its status label",
        )
    except OctoqueueError:
        log.warning("could not close issue #%d, created without its status label", number, exc_info=True)


def look_through_lag(issues: IssueIO, check: Callable[[], T | None]) -> T | None:
    """Run ``check`` until it finds something or ``issues.read_lag`` seconds have passed: a replica GitHub reads
    from may not show a write for that long, so only a miss after that is a real one."""
    until = time.monotonic() + issues.read_lag
    delay = 0.05
    while True:
        found = check()
        left = until - time.monotonic()
        if found is not None or left <= 0:
            return found
        time.sleep(min(delay, left))
        delay = min(delay * 2, 1.0)


def _insist(check: Callable[[], T], doubt: str, tries: int = 8) -> T:
    """Run a read that decides whether to post again; a failed read must not turn into a second post, so it is
    tried harder than usual (each try already retries 5xx), and the error then says what is in doubt."""
    for attempt in range(tries):
        try:
            return check()
        except RateLimited as exc:
            raise RateLimited(f"{doubt}, but GitHub's rate limit stops us asking: {exc}", exc.retry_after) from exc
        except StoreUnavailable as exc:
            if attempt == tries - 1:
                raise StoreUnavailable(f"{doubt}, but GitHub could not be asked: {exc}") from exc
            time.sleep(min(5.0, 0.1 * 2**attempt))
    raise AssertionError("unreachable")


def _find_created(issues: IssueIO, tokens: set[str], *, every_page: bool = False) -> Job | None:
    """The job whose issue carries one of ``tokens`` as its create-token, among the 100 newest issues (or all of
    them, newest first: an issue made meanwhile moves the others down a page, so none is skipped)."""
    url: str | None = issues.issues_url(state="all", direction="desc")
    markers = [f'"create_token":"{token}"' for token in tokens]
    while url:
        fetched = issues.client.get(url, what="look for a job that may have been created", use_cache=False)
        for item in fetched.data:
            text = item.get("body") or ""
            if any(marker in text for marker in markers):
                record = issues.record(item)
                if record.kind == "job":  # an archived job's key was freed by the purge
                    return record.job
        url = fetched.links.get("next") if every_page else None
    return None


def post_comment(
    issues: IssueIO, now: Callable[[], datetime], job_id: int, body: str, *, kept: Comment | None = None
) -> Comment:
    """:meth:`Store.comment`; after an ambiguous failure, look for the comment before posting again. ``kept``: an
    imported comment, whose author and time go into a hidden block at the end (:func:`comment_of` reads them)."""
    text = body if kept is None else body + _comment_meta(kept)
    if len(text) > issue_body.MAX_BODY_CHARS:
        raise JobTooLarge(f"a comment holds at most {issue_body.MAX_BODY_CHARS:,} characters")
    client = issues.client
    since = now() - timedelta(seconds=5)
    for tries in range(client.retries + 1):
        try:
            response = client.call(
                lambda gh: gh.rest.issues.create_comment(issues.owner, issues.repo, int(job_id), data={"body": text}),
                idempotent=False,
                job_id=job_id,
                what=f"comment on job {job_id}",
            )
            return comment_of(job_id, response.json(), imported_by=lambda _login: True)  # our own post
        except Ambiguous:
            time.sleep(client.retry_backoff * (2**tries))
            found = look_through_lag(issues, lambda: _find_comment(issues, job_id, body, since))
            if found is not None:
                return found  # the failed POST did go through
    raise StoreUnavailable(f"could not comment on job {job_id}")


def _find_comment(issues: IssueIO, job_id: int, body: str, since: datetime) -> Comment | None:
    notes = _insist(
        lambda: list_comments(issues, job_id, since=since, imported_by=lambda _login: True),
        "the comment may have been made",
    )
    return next((note for note in notes if note.body == body), None)


def list_comments(
    issues: IssueIO, job_id: int, since: datetime | None = None, *, imported_by: Callable[[str], bool]
) -> list[Comment]:
    """:meth:`Store.comments`, oldest first (all pages). ``imported_by(login)``: whether ``login`` posts imported
    comments (octoqueue's own account), whose hidden block names their first author (see :func:`comment_of`)."""
    query: dict[str, Any] = {"per_page": 100}
    if since is not None:
        query["since"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    url: str | None = issues.client.url(f"{issues.path}/issues/{int(job_id)}/comments", query)
    notes: list[Comment] = []
    while url:
        fetched = issues.client.get(url, job_id=job_id, what=f"read comments of job {job_id}")
        notes.extend(comment_of(job_id, item, imported_by=imported_by) for item in fetched.data)
        url = fetched.links.get("next")
    return notes


#: The hidden block an imported comment ends with: its author and time where it was first made.
_COMMENT_META_RE = re.compile(r"\n\n<!-- octoqueue:comment (\{[^\n]*\}) -->\s*\Z")


def _comment_meta(note: Comment) -> str:
    meta = json.dumps({"author": note.author, "created_at": note.created_at.isoformat()}, separators=(",", ":"))
    return "\n\n<!-- octoqueue:comment " + meta.replace("--", "-\\u002d") + " -->\n"


def comment_of(job_id: int, item: dict[str, Any], *, imported_by: Callable[[str], bool]) -> Comment:
    """The comment GitHub answered as ``item``. Its author is who posted it, except for a comment that octoqueue's
    own account posted (``imported_by(login)``) with a hidden block naming its first author: an imported comment.
    Anyone else's hidden block is only text: a person cannot pass for another author, or for octoqueue."""
    user = item.get("user") or {}
    body = str(item.get("body") or "")
    poster = str(user.get("login") or "ghost") if isinstance(user, dict) else "ghost"  # GitHub's deleted user
    author: str | None = poster
    created = parse_time(item.get("created_at"))
    found = _COMMENT_META_RE.search(body)
    if found is not None and imported_by(poster):
        try:
            meta = json.loads(found.group(1))
        except ValueError:
            meta = None
        if isinstance(meta, dict) and parse_time(meta.get("created_at")) is not None:
            body = body[: found.start()]
            author = meta.get("author") if isinstance(meta.get("author"), str) else None
            created = parse_time(meta.get("created_at"))
    return Comment(
        id=int(item["id"]),
        job_id=int(job_id),
        body=body,
        author=author,
        created_at=created or datetime.now().astimezone(),
    )
