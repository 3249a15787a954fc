"""Handlers the worker tests load by name (module:function), as a user's would be."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from octoqueue.job import Job


def record(data: Any, job: Job) -> dict[str, int]:
    """Append the job id to a file per process under $RECORD_DIR: the test counts executions from them."""
    folder = Path(os.environ["RECORD_DIR"])
    with open(folder / f"{os.getpid()}.log", "a") as fh:
        fh.write(f"{job.id}\n")
    if isinstance(data, dict) and data.get("hang_on_first_attempt") and job.attempt == 1:
        (folder / "hanging").write_text(str(job.id))
        time.sleep(120)
    return {"pid": os.getpid()}


def double(data: Any) -> Any:
    return data["n"] * 2


def sleepy(data: Any) -> str:
    time.sleep(float(data.get("sleep", 30)))
    return "woke"
