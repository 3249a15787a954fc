"""Handlers the worker processes of tests/postgres load by name (module:function), as a user's would be."""

from __future__ import annotations

import os
import time
from typing import Any

from octoqueue.job import Job


def record(data: Any, job: Job) -> None:
    """Append ``id attempt`` to this process's file under $RECORD_DIR (one write: a SIGKILL loses no line written);
    sleep ``data["sleep"]`` seconds when given, so that a kill lands mid-job."""
    path = os.path.join(os.environ["RECORD_DIR"], f"{os.getpid()}.log")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{job.id} {job.attempt}\n".encode())
    finally:
        os.close(fd)
    if isinstance(data, dict) and data.get("sleep"):
        time.sleep(float(data["sleep"]))
