"""``python -m bench``: enqueue N no-op jobs and drain them with W workers on SQLite — octoqueue, GigQ and Huey
side by side in the same run — and print jobs/s with octoqueue's ratio to the faster peer; then the same on
PostgreSQL (octoqueue, procrastinate, PGQueuer), the HTTP server and the GitHub store.

    .venv/bin/python -m bench                        # 5000 jobs, 4 workers, 3 rounds
    .venv/bin/python -m bench --jobs 20000 --workers 8 --repeat 5 --json bench.json
    .venv/bin/python -m bench --only octoqueue,huey
    .venv/bin/python -m bench --suite postgres --pg-batch 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

from bench import github as github_suite
from bench import postgres_peers
from bench import server as server_suite
from bench.sqlite_peers import PEERS, SYSTEMS, RunResult, versions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", "-n", type=int, default=5000, help="jobs per round (default 5000)")
    parser.add_argument("--workers", "-w", type=int, default=4, help="workers draining (default 4)")
    parser.add_argument("--repeat", "-r", type=int, default=3, help="rounds per system; medians reported (default 3)")
    parser.add_argument(
        "--only",
        default=",".join(SYSTEMS),
        help=f"comma-separated systems to run (default all: {','.join(SYSTEMS)})",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every round and the medians as JSON here")
    parser.add_argument("--dir", metavar="PATH", help="folder for the temporary databases (default: system temp)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-round lines, only the table")
    parser.add_argument(
        "--suite",
        choices=("all", "sqlite", "postgres", "server", "github"),
        default="all",
        help="all (default): the SQLite peers above, then the PostgreSQL peers (bench/postgres_peers.py), then the "
        "HTTP server against a no-op FastAPI ceiling (bench/server.py), then the GitHub store's requests per job "
        "on the emulator (bench/github.py); or only one of them",
    )
    parser.add_argument(
        "--pg-batch", type=int, default=100, help="PostgreSQL suite: jobs per batch enqueue and per claim (default 100)"
    )
    server_suite.add_arguments(parser)
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if args.jobs < 1 or args.workers < 1 or args.repeat < 1:
        parser.error("--jobs, --workers and --repeat must be at least 1")
    return args


def run(
    systems: list[str], jobs: int, workers: int, repeat: int, base_dir: str | None = None, log: Any = None
) -> dict[str, list[RunResult]]:
    """``repeat`` rounds; each round runs every system once, the order rotated between rounds so no system is
    always first (or last) on a warming, or tiring, machine."""
    results: dict[str, list[RunResult]] = {name: [] for name in systems}
    for round_no in range(repeat):
        shift = round_no % len(systems)
        for name in systems[shift:] + systems[:shift]:
            result = SYSTEMS[name](jobs, workers, base_dir=base_dir)
            results[name].append(result)
            if log is not None:
                flag = "ok" if result.exactly_once else f"NOT EXACTLY ONCE ({result.store_detail})"
                print(
                    f"  round {round_no + 1}/{repeat} {name:<16} enqueue {result.enqueue_rate:>9,.0f}/s  "
                    f"drain {result.drain_rate:>9,.0f}/s  {flag}",
                    file=log,
                    flush=True,
                )
    return results


def summarize(results: dict[str, list[RunResult]]) -> dict[str, dict[str, Any]]:
    """Medians per system, and each system's ratio to the faster peer (by median) on each phase."""
    summary: dict[str, dict[str, Any]] = {}
    for name, rounds in results.items():
        summary[name] = {
            "model": rounds[0].model,
            "rounds": len(rounds),
            "enqueue_rate": statistics.median(r.enqueue_rate for r in rounds),
            "drain_rate": statistics.median(r.drain_rate for r in rounds),
            "exactly_once": all(r.exactly_once for r in rounds),
            "settings": rounds[0].settings,
        }
    peers = [p for p in PEERS if p in summary]
    for phase in ("enqueue", "drain"):
        best = max((summary[p][f"{phase}_rate"] for p in peers), default=None)
        best_name = max(peers, key=lambda p: summary[p][f"{phase}_rate"]) if peers else None
        for entry in summary.values():
            entry[f"{phase}_vs_peer"] = entry[f"{phase}_rate"] / best if best else None
            entry[f"{phase}_peer"] = best_name
    return summary


def table(summary: dict[str, dict[str, Any]]) -> str:
    head = (
        f"{'system':<16} {'model':<9} {'enqueue jobs/s':>15} {'drain jobs/s':>13} "
        f"{'enqueue xpeer':>14} {'drain xpeer':>12}  {'journal/sync':<12}  exactly once"
    )
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        ratio_e = f"{s['enqueue_vs_peer']:.2f}x" if s["enqueue_vs_peer"] else "-"
        ratio_d = f"{s['drain_vs_peer']:.2f}x" if s["drain_vs_peer"] else "-"
        sync = f"{s['settings'].get('journal_mode', '?')}/{s['settings'].get('synchronous', '?')}"
        lines.append(
            f"{name:<16} {s['model']:<9} {s['enqueue_rate']:>15,.0f} {s['drain_rate']:>13,.0f} "
            f"{ratio_e:>14} {ratio_d:>12}  {sync:<12}  {'yes' if s['exactly_once'] else 'NO'}"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import octoqueue

    return {
        "octoqueue_path": os.path.dirname(octoqueue.__file__),  # which tree ran (see docs/benchmarks.md: before/after)
        "load_average": os.getloadavg(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.suite == "github":
        return github_suite.run_only(json_path=args.json)
    if args.suite == "postgres":
        pg_payload, pg_ok = postgres_peers.report(args.jobs, args.workers, args.pg_batch, repeat=args.repeat)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"postgres": pg_payload}, fh, indent=2)
        return 0 if pg_ok else 1
    server_options = server_suite.options_from(args) if args.suite in ("all", "server") else None
    if server_options is not None and args.suite == "server":
        return server_suite.run_only(server_options, args.json, args.quiet)
    env = environment()
    ver = env["versions"]
    print(
        f"{args.jobs} no-op jobs, {args.workers} workers, {args.repeat} round(s); {env['nproc']} CPUs, "
        f"Python {env['python']}, SQLite {ver['sqlite']}, octoqueue {ver['octoqueue']}, gigq {ver['gigq']}, "
        f"huey {ver['huey']}",
        flush=True,
    )
    results = run(args.only, args.jobs, args.workers, args.repeat, args.dir, log=None if args.quiet else sys.stdout)
    summary = summarize(results)
    print()
    print(table(summary))
    peers = [p for p in PEERS if p in summary]
    if "octoqueue" in summary and peers:
        s = summary["octoqueue"]
        print(
            f"\noctoqueue vs the faster peer (medians): enqueue {s['enqueue_vs_peer']:.2f}x ({s['enqueue_peer']}), "
            f"drain {s['drain_vs_peer']:.2f}x ({s['drain_peer']})"
        )
    pg_payload, pg_ok = None, True
    if args.suite == "all":
        print()
        pg_payload, pg_ok = postgres_peers.report(args.jobs, args.workers, args.pg_batch, repeat=args.repeat)
    server_payload, server_ok = None, True
    if server_options is not None:
        print()
        server_payload, server_ok = server_suite.report(server_options, quiet=args.quiet)
    github_payload, github_ok = None, True
    if args.suite == "all":
        print()
        github_payload, github_ok = github_suite.report()
    if args.json:
        payload = {
            "jobs": args.jobs,
            "workers": args.workers,
            "repeat": args.repeat,
            "environment": env,
            "summary": summary,
            "rounds": {name: [r.as_dict() for r in rounds] for name, rounds in results.items()},
            "postgres": pg_payload,
            "server": server_payload,
            "github": github_payload,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
        print(f"wrote {args.json}")
    ok = all(s["exactly_once"] for s in summary.values()) and pg_ok and server_ok and github_ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
