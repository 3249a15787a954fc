"""Writing a job into GitHub as it is (:meth:`Store.import_job`): the issue keeps the job's number, or the import
is refused.

GitHub numbers issues itself, one after another (pull requests share the sequence), and sets every time and every
comment's author itself. So:

* a job whose issue exists (a job, or an archived one) is rewritten in place with one PATCH (title, body, labels,
  open/closed). No ref is taken: an import is not a queue move. The pending generation moves on, so the job's next
  pending spell has claim refs of its own.
* a job whose issue does not exist is POSTed (and PATCHed closed when it is finished); GitHub gives it the next
  number. While that number is below the job's (a gap: the source purged jobs), the issue made becomes an archived
  placeholder, never listed, and the POST is repeated; a number above the job's means GitHub's numbers passed it (a
  pull request or a deleted issue holds it), and the import is refused with StateConflict.
* the job's times go into the body's metadata (``created_at``, ``updated_at``: see
  :func:`~octoqueue.stores.github.issues.issue_record`), a comment's author and time into a hidden block at its
  end (:func:`~octoqueue.stores.github.posts.comment_of`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from octoqueue import body as issue_body
from octoqueue.errors import JobNotFound, StateConflict
from octoqueue.job import Comment, Job
from octoqueue.stores.github.issues import Record, job_meta
from octoqueue.stores.github.posts import post_comment, post_issue_data

if TYPE_CHECKING:
    from octoqueue.stores.github.store import GitHubStore


def import_job(store: GitHubStore, job: Job, comments: Sequence[Comment]) -> Job:
    """:meth:`Store.import_job` on GitHub (see the module docstring)."""
    existing = _issue(store, job.id)
    if existing is None:
        item = _create(store, job)
    else:
        record = store._record(existing)
        if record.kind in ("pull_request", "settings"):
            raise StateConflict(job.id, f"issue #{job.id} is the queue's {record.kind.replace('_', ' ')}, not a job")
        item = _patch(store, job, _body(job, record.gen + 1, record.create_token))
    for note in comments:
        post_comment(store, job.id, note.body, kept=note)
    written = store._record(item).job
    return written.model_copy(update={"comments": written.comments + len(comments)})


def _issue(store: GitHubStore, number: int) -> dict[str, Any] | None:
    url = store._client.url(f"{store._path}/issues/{int(number)}")
    try:
        fetched = store._client.get(url, job_id=number, what=f"read issue #{number}")
    except JobNotFound:
        return None
    item: dict[str, Any] = fetched.data
    return item


def _body(job: Job, gen: int, token: str | None) -> str:
    times = {"created_at": job.created_at.isoformat(), "updated_at": job.updated_at.isoformat()}
    return issue_body.render(job.data, job_meta(job, gen, create_token=token, **times))


def _labels(store: GitHubStore, job: Job) -> list[str]:
    status = [store.labels.label(job.state)] if job.state is not None else []
    return [*status, *job.labels]


def _patch(store: GitHubStore, job: Job, body: str | None = None) -> dict[str, Any]:
    """One PATCH: labels and open/closed (with the reason), and title and body when ``body`` is given."""
    data: dict[str, Any] = {"labels": _labels(store, job), "state": "open" if job.open else "closed"}
    if not job.open and job.state is not None and job.state.state_reason is not None:
        data["state_reason"] = job.state.state_reason
    if body is not None:
        data.update(title=job.title, body=body)
    response = store._client.call(
        lambda gh: gh.rest.issues.update(store.owner, store.repo, job.id, data=cast(Any, data)),
        job_id=job.id,
        what=f"import job {job.id}",
    )
    item: dict[str, Any] = response.json()
    store._wrote(item)
    return item


def _create(store: GitHubStore, job: Job) -> dict[str, Any]:
    token = secrets.token_hex(8)
    data = {"title": job.title, "body": _body(job, 0, token), "labels": _labels(store, job)}
    while True:
        made = post_issue_data(store, data, token)
        number = made.id if isinstance(made, Job) else int(made["number"])
        if number == job.id:
            if isinstance(made, dict) and job.open:
                return made
            return _patch(store, job)  # close it (or, after an ambiguous POST, make sure of its labels and state)
        _archive_placeholder(store, number)
        if number > job.id:
            raise StateConflict(
                job.id, f"GitHub numbered the new issue #{number}: the job's number is taken (a pull request?)"
            )


def _archive_placeholder(store: GitHubStore, number: int) -> Record:
    """Turn issue ``number``, made where the source has no job, into an archived placeholder (never listed)."""
    data = {"title": f"(no job #{number})", "body": "", "labels": [store.labels.archived], "state": "closed"}
    response = store._client.call(
        lambda gh: gh.rest.issues.update(store.owner, store.repo, number, data=cast(Any, data)),
        job_id=number,
        what=f"mark issue #{number} as a gap in an imported queue",
    )
    item: dict[str, Any] = response.json()
    store._wrote(item)
    return store._record(item)
