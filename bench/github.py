"""The GitHub store's request cost: enqueue → claim → complete on the emulator, requests and writes per job, next to
the original Octoqueue's cost *computed* from its code (REFERENCE §1) for the same backlog.

    .venv/bin/python -m bench --suite github
    .venv/bin/python -m bench.github --backlogs 1,10,30

For each backlog P: a fresh in-process emulator (no latency, its own limits off), a fresh ``GithubQueue`` (write
pacing off), P jobs enqueued, then one worker drains them one by one — exactly P times ``queue.claim()`` +
``queue.complete(job)`` (a second row: ``complete(job, result=...)``, which adds a comment). Every request the
emulator served is counted from its ``request_log``; a write is any non-GET. The once-per-store set-up (labels,
``GET /repos/{o}/{r}``, ``GET git/ref/heads/{branch}``) is reported apart, and so is the one claim after the drain
that finds the queue empty (a conditional listing: 304 or 200). Per-job figures count neither.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from typing import Any

from octoqueue.github import GithubQueue
from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub

BACKLOGS = (1, 10, 30, 100, 300)
REPO = "bench-org/jobs"
TOKEN = "bench-token"

#: GitHub's secondary limits on content-creating requests (REFERENCE §3).
WRITES_PER_MINUTE = 80
WRITES_PER_HOUR = 500

#: The original Octoqueue, per job, from its code (REFERENCE §1) — computed, not measured.
ORIGINAL_PAGE = 30  # PyGithub's default page size: every dequeue lists every page of pending issues
ORIGINAL_ENQUEUE = 1  # POST issue
ORIGINAL_DEQUEUE_WRITES = 2  # DELETE label pending + POST label processing (after the listing GETs)
ORIGINAL_COMPLETE = 5  # GET issue + DELETE label + POST label + POST comment + PATCH state
ORIGINAL_COMPLETE_WRITES = 4
ORIGINAL_WRITES_PER_JOB = ORIGINAL_ENQUEUE + ORIGINAL_DEQUEUE_WRITES + ORIGINAL_COMPLETE_WRITES  # 7


def original_requests(backlog: int) -> int:
    """Requests the original Octoqueue spends to enqueue ``backlog`` jobs and drain them one by one — computed from
    REFERENCE §1, not measured: the dequeue with k jobs pending lists ceil(k/30) pages, so
    total(P) = P*1 + sum_{k=1..P} ceil(k/30) + P*2 + P*5. Its complete always posts a comment (a default one when
    none is given), so a result does not change the count."""
    listing = sum(math.ceil(k / ORIGINAL_PAGE) for k in range(1, backlog + 1))
    return backlog * ORIGINAL_ENQUEUE + listing + backlog * ORIGINAL_DEQUEUE_WRITES + backlog * ORIGINAL_COMPLETE


def original_writes(backlog: int) -> int:
    """Writes (non-GET) of the same, computed: 7 per job whatever the backlog."""
    return backlog * ORIGINAL_WRITES_PER_JOB


def jobs_per_minute(writes_per_job: float) -> dict[str, float]:
    """Jobs a minute that GitHub's secondary limits let through at ``writes_per_job``: 80 writes/min caps a burst,
    500 writes/h caps any run longer than ~6 minutes (as jobs per minute: 500/w/60). ``sustained`` is the lower."""
    burst = WRITES_PER_MINUTE / writes_per_job
    hourly = WRITES_PER_HOUR / writes_per_job / 60
    return {"per_minute_limit": burst, "per_hour_limit": hourly, "sustained": min(burst, hourly)}


def _is_pause_check(method: str, path: str) -> bool:
    """A read of the pause state (octoqueue.pauses): one per claiming process per 5 s, not per job."""
    return method == "GET" and "/git/matching-refs/octoqueue/settings-issue" in path


def _is_setup(method: str, path: str) -> bool:
    base = f"/repos/{REPO}"
    return path == base or path.startswith(f"{base}/labels") or path.startswith(f"{base}/git/ref/heads/")


@dataclass
class Row:
    backlog: int
    result: bool
    requests: int
    writes: int
    enqueue_requests: int
    claim_requests: int
    complete_requests: int
    setup_requests: int
    setup_writes: int
    pause_checks: int
    empty_poll: list[str]
    exactly_once: bool
    original_requests: int
    original_writes: int

    @property
    def requests_per_job(self) -> float:
        return self.requests / self.backlog

    @property
    def writes_per_job(self) -> float:
        return self.writes / self.backlog

    @property
    def original_requests_per_job(self) -> float:
        return self.original_requests / self.backlog

    @property
    def original_writes_per_job(self) -> float:
        return self.original_writes / self.backlog

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "requests_per_job": self.requests_per_job,
            "writes_per_job": self.writes_per_job,
            "original_requests_per_job": self.original_requests_per_job,
            "original_writes_per_job": self.original_writes_per_job,
            "original_is": "computed from REFERENCE §1, not measured",
        }


def measure(backlog: int, result: bool = False) -> Row:
    """One drain of ``backlog`` jobs on a fresh emulator; requests counted by phase from its log."""
    with FakeGitHub(repo=REPO, token=TOKEN, enforce_secondary=False) as fake:
        queue = GithubQueue(
            repo=REPO,
            token=TOKEN,
            base_url=IN_PROCESS_URL,
            transport=fake.transport(),
            writes_per_minute=None,
            writes_per_hour=None,
        )
        try:
            phase: dict[str, list[tuple[str, str, int]]] = {"enqueue": [], "claim": [], "complete": []}
            setup: list[tuple[str, str, int]] = []
            checks: list[tuple[str, str, int]] = []
            seen = 0

            def take(name: str) -> None:
                nonlocal seen
                log = fake.request_log
                for entry in log[seen:]:
                    if _is_pause_check(entry[0], entry[1]):
                        checks.append(entry)
                    else:
                        (setup if _is_setup(entry[0], entry[1]) else phase[name]).append(entry)
                seen = len(log)

            ids = []
            for i in range(backlog):
                ids.append(queue.enqueue({"n": i}))
                take("enqueue")
            done = []
            for _ in range(backlog):
                job = queue.claim()
                take("claim")
                if job is None:
                    break
                if result:
                    queue.complete(job, result={"n": job.data["n"], "ok": True})
                else:
                    queue.complete(job)
                take("complete")
                done.append(job.id)
            leftover = queue.claim()
            tail = fake.request_log[seen:]
        finally:
            queue.close()
    counted = [e for entries in phase.values() for e in entries]
    return Row(
        backlog=backlog,
        result=result,
        requests=len(counted),
        writes=sum(1 for e in counted if e[0] != "GET"),
        enqueue_requests=len(phase["enqueue"]),
        claim_requests=len(phase["claim"]),
        complete_requests=len(phase["complete"]),
        setup_requests=len(setup),
        setup_writes=sum(1 for e in setup if e[0] != "GET"),
        pause_checks=len(checks),
        empty_poll=[f"{m} {p} {s}" for m, p, s in tail],
        exactly_once=leftover is None and sorted(done) == sorted(ids) and len(set(done)) == backlog,
        original_requests=original_requests(backlog),
        original_writes=original_writes(backlog),
    )


def run(backlogs: tuple[int, ...] = BACKLOGS) -> list[Row]:
    return [measure(p, result) for result in (False, True) for p in backlogs]


def limits_table(rows: list[Row]) -> list[dict[str, Any]]:
    """Jobs/min inside the secondary limits, from the writes per job at the largest backlog of each variant."""
    out = []
    for result in (False, True):
        mine = [r for r in rows if r.result == result]
        if not mine:
            continue
        row = max(mine, key=lambda r: r.backlog)
        for system, w in (
            ("octoqueue (measured)", row.writes_per_job),
            ("original (computed)", float(ORIGINAL_WRITES_PER_JOB)),
        ):
            out.append({"system": system, "result_comment": result, "writes_per_job": w, **jobs_per_minute(w)})
    return out


def table(rows: list[Row]) -> str:
    head = (
        f"{'P':>4} {'result':<6} {'req/job':>8} {'writes/job':>10} {'enq/claim/compl per job':>24} "
        f"{'original req/job*':>18} {'original writes/job*':>21} {'setup req (writes)':>19}  once"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        split = "/".join(f"{n / r.backlog:.2f}" for n in (r.enqueue_requests, r.claim_requests, r.complete_requests))
        lines.append(
            f"{r.backlog:>4} {'yes' if r.result else 'no':<6} {r.requests_per_job:>8.2f} {r.writes_per_job:>10.2f} "
            f"{split:>24} {r.original_requests_per_job:>18.2f} {r.original_writes_per_job:>21.2f} "
            f"{f'{r.setup_requests} ({r.setup_writes})':>19}  {'yes' if r.exactly_once else 'NO'}"
        )
    lines.append("* original: computed from REFERENCE §1, not measured: (P + sum_{k=1..P} ceil(k/30) + 2P + 5P) / P")
    lines.append("")
    head2 = f"{'system':<22} {'result':<6} {'writes/job':>10} {'80/min':>8} {'500/h÷60':>9} {'sustained jobs/min':>19}"
    lines += [head2, "-" * len(head2)]
    for e in limits_table(rows):
        lines.append(
            f"{e['system']:<22} {'yes' if e['result_comment'] else 'no':<6} {e['writes_per_job']:>10.2f} "
            f"{e['per_minute_limit']:>8.1f} {e['per_hour_limit']:>9.2f} {e['sustained']:>19.2f}"
        )
    return "\n".join(lines)


def report(backlogs: tuple[int, ...] = BACKLOGS) -> tuple[dict[str, Any], bool]:
    """Run, print the tables; return the JSON-ready payload and whether every job ran exactly once."""
    print(f"GitHub store on the in-process emulator: backlogs {', '.join(map(str, backlogs))}, one worker", flush=True)
    rows = run(backlogs)
    print()
    print(table(rows))
    empty = rows[-1].empty_poll if rows else []
    setup = rows[0] if rows else None
    if setup is not None:
        print(
            f"\nonce per store (not in the per-job figures): {setup.setup_requests} requests, {setup.setup_writes} "
            f"writes (labels on a new repository, repo, branch ref); the claim that finds the queue empty after the "
            f"drain: {', '.join(empty) or 'none'}; reads of the pause state (one per claiming process per 5 s, "
            f"a conditional GET): {setup.pause_checks} in the first drain"
        )
    payload = {
        "backlogs": list(backlogs),
        "rows": [r.as_dict() for r in rows],
        "jobs_per_minute": limits_table(rows),
        "secondary_limits": {"writes_per_minute": WRITES_PER_MINUTE, "writes_per_hour": WRITES_PER_HOUR},
        "original_formula": "P + sum_{k=1..P} ceil(k/30) + 2P + 5P requests, 7P writes (computed from REFERENCE §1, "
        "not measured)",
    }
    return payload, all(r.exactly_once for r in rows)


def run_only(backlogs: tuple[int, ...] = BACKLOGS, json_path: str | None = None) -> int:
    payload, ok = report(backlogs)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump({"github": payload}, fh, indent=2)
        print(f"wrote {json_path}")
    return 0 if ok else 1


def parse_backlogs(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(",") if v.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("backlogs must be positive integers, comma-separated")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.github", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlogs", type=parse_backlogs, default=BACKLOGS, help="comma-separated (1,10,30,100,300)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    return run_only(args.backlogs, args.json)


if __name__ == "__main__":
    sys.exit(main())
