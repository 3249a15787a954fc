"""Example octoqueue handlers.

A handler is a function called with the job's data (the JSON in the issue body); what it returns becomes the
job's result, posted as a comment on the issue. Raising fails the attempt: ``octoqueue.RetryableError`` asks for a
retry with backoff, ``octoqueue.PermanentError`` fails the job at once, any other exception follows the worker's
``--on-failure`` setting.

Run them with the worker, locally or in the GitHub Action::

    octoqueue work --store github://owner/name --handler examples/handlers.py:word_count --once
    octoqueue work --store sqlite:///octoqueue.db --handler examples.handlers:word_count

The same job as a shell command (job JSON on stdin, result on stdout), with nothing but Python's standard
library (``examples/workflows/worker.yml`` uses it)::

    octoqueue work --store github://owner/name --once --command "python3 -c 'import json, sys;
      d = json.load(sys.stdin); print(json.dumps({\"words\": len(str(d.get(\"text\", \"\")).split())}))'"
"""

from __future__ import annotations

from typing import Any

from octoqueue import Job, PermanentError, RetryableError


def word_count(data: dict[str, Any]) -> dict[str, Any]:
    """Count the words of ``data["text"]``."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise PermanentError('expected {"text": "..."}')
    words = data["text"].split()
    return {"words": len(words), "longest": max(words, key=len) if words else None}


def shout(data: dict[str, Any], job: Job) -> str:
    """Upper-case ``data["text"]``. A handler with a second parameter also gets the :class:`~octoqueue.Job`;
    here jobs with ``"flaky": true`` fail their first attempt and ask for a retry."""
    if data.get("flaky") and job.attempt < 2:
        raise RetryableError(f"flaky job, attempt {job.attempt}: try again")
    return str(data.get("text", "")).upper()
