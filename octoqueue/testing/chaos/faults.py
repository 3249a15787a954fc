"""The disturbances a chaos run can switch on, each one option by name (``--faults errors,latency,storms``).

A fault acts on the GitHub emulator: ``steady`` once at the start, ``episode`` switched on and off at random while
the run lasts. Kills and restarts are not faults here: they happen to every store (see :mod:`.harness`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from octoqueue.testing.fake_github import FakeGitHub

#: The emulator's limits are multiplied by this, so 10,000 jobs fit in minutes (see docs/reliability.md).
LIMIT_SCALE = 1000
SECONDARY_PER_MINUTE = 80 * LIMIT_SCALE
SECONDARY_PER_HOUR = 500 * LIMIT_SCALE
PRIMARY_PER_HOUR = 5000 * LIMIT_SCALE
#: During a secondary-limit storm the per-minute limit drops to this: most writes get 403 + retry-after.
STORM_PER_MINUTE = 200
#: Seconds the emulator's reads lag its writes with ``lag`` (GitHub's usual lag is under a second, octokit.js#900),
#: and what the stores are told to allow for: twice that, and below half of ``orphan_grace`` and below
#: ``lease_margin`` (10 s each in a run), as docs/github-store.md asks.
READ_LAG = 1.0
STORE_READ_LAG = 2.0
#: The fraction of ref creations answered 422 "Reference update failed" with ``refs`` (half after making the ref).
REF_FAILURE_RATE = 0.05


def _nothing(gh: FakeGitHub) -> None:
    return None


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    steady: Callable[[FakeGitHub], None] = _nothing
    episode: Callable[[FakeGitHub, bool], None] | None = None
    every: float = 10.0  # mean seconds between episodes (each lasts 1-3 s)
    store_options: dict[str, Any] = field(default_factory=dict)  # what the store is told to expect


def _errors(gh: FakeGitHub) -> None:
    gh.set_faults(error_rate=0.2)


def _latency(gh: FakeGitHub, on: bool) -> None:
    gh.set_faults(latency=0.5 if on else 0.0)


def _storm(gh: FakeGitHub, on: bool) -> None:
    gh.set_limits(secondary_writes_per_minute=STORM_PER_MINUTE if on else SECONDARY_PER_MINUTE)


def _lag(gh: FakeGitHub) -> None:
    gh.set_faults(read_lag=READ_LAG)


def _ref_failures(gh: FakeGitHub) -> None:
    gh.set_faults(ref_failure_rate=REF_FAILURE_RATE)


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault("errors", "20% of requests answered 500/502/503 before any work", steady=_errors),
        Fault("latency", "spikes of 0.5 s added to every request", episode=_latency),
        # GitHub's retry-after for a secondary limit is up to a minute, and the store honours it: a storm stalls
        # writes for about that long, whatever its own length. Hence one every 150 s on average.
        Fault("storms", f"secondary-limit storms: writes limited to {STORM_PER_MINUTE}/min", episode=_storm, every=150),
        Fault(
            "lag",
            f"reads of issues and comments lag writes by {READ_LAG:g} s",
            steady=_lag,
            store_options={"read_lag": STORE_READ_LAG},
        ),
        Fault("refs", f"{REF_FAILURE_RATE:.0%} of ref creations answered 422 (transient)", steady=_ref_failures),
    )
}


def parse(names: str) -> list[Fault]:
    """``errors,latency`` -> those faults; ``all`` -> every one; ``none`` or empty -> none. Unknown: ValueError."""
    wanted = [n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"]
    if wanted == ["all"]:
        return list(FAULTS.values())
    unknown = [n for n in wanted if n not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}: choose from {', '.join(FAULTS)} or all")
    return [FAULTS[n] for n in wanted]
