"""``python -m octoqueue.testing.chaos``: see docs/reliability.md. Exits 1 when a job was lost, completed twice or
left unfinished."""

from __future__ import annotations

import argparse
import json
import sys

from octoqueue.testing.chaos import faults, harness


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m octoqueue.testing.chaos",
        description="Run jobs through a real server and worker processes while workers are SIGKILLed, the server "
        "restarted and the GitHub emulator injects faults; check 0 lost, 0 completed twice, every job finished.",
    )
    parser.add_argument("--store", default="sqlite,github", help="stores to run, in order (default sqlite,github)")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs on SQLite (default 10000)")
    parser.add_argument(
        "--github-jobs",
        type=int,
        default=1000,
        help="jobs on the GitHub emulator (default 1000: 3-6 jobs/s here with the faults on)",
    )
    parser.add_argument("--workers", type=int, default=8, help="worker processes (default 8)")
    parser.add_argument("--seconds", type=float, default=540.0, help="time bound per store (default 540)")
    parser.add_argument("--kills", type=int, default=100, help="worker SIGKILLs, spread over the run (default 100)")
    parser.add_argument("--restarts", type=int, default=10, help="server SIGKILL+restarts over the run (default 10)")
    parser.add_argument(
        "--faults",
        default="all",
        help=f"GitHub emulator faults: comma-separated from {', '.join(faults.FAULTS)}; all (default) or none",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", metavar="DIR", help="keep the ledger and process logs in DIR/<store>")
    parser.add_argument("--json", metavar="PATH", help="also write the reports here")
    args = parser.parse_args(argv)
    if args.github_jobs < 1 or args.jobs < 1 or args.workers < 1 or args.seconds <= 0:
        parser.error("--jobs, --github-jobs and --workers must be at least 1, --seconds positive")
    args.stores = [s.strip() for s in args.store.split(",") if s.strip()]
    if not args.stores or set(args.stores) - {"sqlite", "github"}:
        parser.error("--store: a comma-separated list of sqlite and github")
    try:
        args.fault_list = faults.parse(args.faults)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reports = []
    for store in args.stores:
        jobs = args.github_jobs if store == "github" else args.jobs
        config = harness.Config(
            store=store,
            jobs=jobs,
            workers=args.workers,
            seconds=args.seconds,
            kills=args.kills,
            restarts=args.restarts,
            faults=args.fault_list if store == "github" else [],
            seed=args.seed,
            keep=f"{args.keep}/{store}" if args.keep else None,
        )
        print(f"chaos on {store}: {jobs} jobs, {args.workers} workers", flush=True)
        report = harness.run(config)
        reports.append(report)
        print(f"  {report.verdict.summary()}", flush=True)
        print(f"  {json.dumps(report.as_dict())}", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump([r.as_dict() for r in reports], out, indent=2)
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
