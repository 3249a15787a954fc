"""``python -m bench``: enqueue N no-op jobs and drain them with W workers on SQLite — octoqueue, GigQ and Huey
side by side in the same run — and on Redis — octoqueue, RQ, Huey and Dramatiq — and print jobs/s with octoqueue's
ratio to the faster peer; then PostgreSQL (octoqueue, procrastinate, PGQueuer).

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
from bench import postgres_peers, redis_peers, sqlite_cpu
from bench import server as server_suite
from bench.sqlite_peers import PEERS, SYSTEMS, RunResult, versions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", "-n", type=int, default=5000, help="jobs per round (default 5000)")
    parser.add_argument("--workers", "-w", type=int, default=4, help="workers draining (default 4)")
    parser.add_argument("--repeat", "-r", type=int, default=3, help="rounds per system; medians reported (default 3)")
    parser.add_argument(
        "--only",
        default=",".join([*SYSTEMS, *redis_peers.SYSTEMS]),
        help=f"comma-separated systems to run (default all: {','.join([*SYSTEMS, *redis_peers.SYSTEMS])})",
    )
    parser.add_argument(
        "--redis-url",
        default=redis_peers.DEFAULT_REDIS_URL,
        help=f"the Redis of the Redis suite (default {redis_peers.DEFAULT_REDIS_URL}); each system uses keys of its "
        "own and deletes them",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every round and the medians as JSON here")
    parser.add_argument("--dir", metavar="PATH", help="folder for the temporary databases (default: system temp)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-round lines, only the table")
    parser.add_argument(
        "--suite",
        choices=("all", "sqlite", "redis", "postgres", "server", "github"),
        default="all",
        help="all (default): the SQLite peers above, the Redis peers (bench/redis_peers.py), the PostgreSQL peers "
        "(bench/postgres_peers.py), then the HTTP server against a no-op FastAPI ceiling "
        "(bench/server.py), then the GitHub store's requests per job on the emulator (bench/github.py); or only "
        "one of them",
    )
    parser.add_argument(
        "--pg-batch", type=int, default=100, help="PostgreSQL suite: jobs per batch enqueue and per claim (default 100)"
    )
    server_suite.add_arguments(parser)
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    known = [*SYSTEMS, *redis_peers.SYSTEMS]
    unknown = [s for s in args.only if s not in known]
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.jobs < 1 or args.workers < 1 or args.repeat < 1:
        parser.error("--jobs, --workers and --repeat must be at least 1")
    return args


def run(
    systems: list[str],
    jobs: int,
    workers: int,
    repeat: int,
    base_dir: str | None = None,
    log: Any = None,
    registry: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, list[RunResult]]:
    """``repeat`` rounds; each round runs every system once, the order rotated between rounds so no system is
    always first (or last) on a warming, or tiring, machine. ``registry``: the runners (default the SQLite ones);
    ``options`` go to each runner."""
    runners = SYSTEMS if registry is None else registry
    results: dict[str, list[RunResult]] = {name: [] for name in systems}
    for round_no in range(repeat):
        shift = round_no % len(systems)
        for name in systems[shift:] + systems[:shift]:
            result = runners[name](jobs, workers, base_dir=base_dir, **options)
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


def summarize(results: dict[str, list[RunResult]], peer_names: tuple[str, ...] = PEERS) -> dict[str, dict[str, Any]]:
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
    peers = [p for p in peer_names if p in summary]
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


def worker_line(summary: dict[str, dict[str, Any]], workers: int) -> str:
    """What octoqueue's rows drained with: the Worker's threads and how many jobs each takes at once."""
    prefetch = sorted({s["settings"]["prefetch"] for s in summary.values() if "prefetch" in s["settings"]})
    if not prefetch:
        return ""
    return (
        f"octoqueue drains with Worker(concurrency={workers}) at its default prefetch={'/'.join(map(str, prefetch))}: "
        "a thread takes that many jobs at once, runs them in turn and completes them together with taking its next "
        "ones in one call (each job its own lease and fencing attempt)"
    )


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
        _write_json(args.json, {"postgres": pg_payload})
        return 0 if pg_ok else 1
    server_options = server_suite.options_from(args) if args.suite in ("all", "server") else None
    if server_options is not None and args.suite == "server":
        return server_suite.run_only(server_options, args.json, args.quiet)
    if args.suite == "redis":
        payload, ok = redis_report(args)
        _write_json(args.json, {"redis": payload})
        return 0 if ok else 1
    env = environment()
    ver = env["versions"]
    print(
        f"{args.jobs} no-op jobs, {args.workers} workers, {args.repeat} round(s); {env['nproc']} CPUs, "
        f"Python {env['python']}, SQLite {ver['sqlite']}, octoqueue {ver['octoqueue']}, gigq {ver['gigq']}, "
        f"huey {ver['huey']}; load average {' / '.join(f'{x:.2f}' for x in env['load_average'])}",
        flush=True,
    )
    sqlite_systems = [name for name in args.only if name in SYSTEMS]
    results = run(
        sqlite_systems, args.jobs, args.workers, args.repeat, args.dir, log=None if args.quiet else sys.stdout
    )
    summary = summarize(results)
    print()
    print(table(summary))
    peers = [p for p in PEERS if p in summary]
    if peers:
        print()
    for name, label in (("octoqueue", "NORMAL"), ("octoqueue-full", "FULL")):
        if name in summary and peers:
            s = summary[name]
            print(
                f"{name} ({label}) vs the faster peer (medians): enqueue {s['enqueue_vs_peer']:.2f}x "
                f"({s['enqueue_peer']}), drain {s['drain_vs_peer']:.2f}x ({s['drain_peer']})"
            )
    print(worker_line(summary, args.workers))
    print(f"load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cpu = None
    if any(name.startswith("octoqueue") for name in sqlite_systems):
        print()
        cpu = sqlite_cpu.report(min(args.jobs, sqlite_cpu.JOBS))
    redis_payload, redis_ok = None, True
    if args.suite == "all" and any(name in redis_peers.SYSTEMS for name in args.only):
        print()
        redis_payload, redis_ok = redis_report(args)
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
            "cpu_us_per_job": cpu,
            "postgres": pg_payload,
            "redis": redis_payload,
            "server": server_payload,
            "github": github_payload,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
        print(f"wrote {args.json}")
    ok = all(s["exactly_once"] for s in summary.values()) and server_ok and github_ok and redis_ok and pg_ok
    return 0 if ok else 1


def redis_report(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    """The Redis suite: octoqueue's Redis store against RQ, Huey and Dramatiq on one Redis; the table, the payload
    for ``--json`` and whether every system ran every job exactly once."""
    systems = [name for name in args.only if name in redis_peers.SYSTEMS]
    try:
        durability = redis_peers.durability(args.redis_url)
    except Exception as exc:  # redis-py's ConnectionError, a refused AUTH, ...: one line, not a traceback
        print(f"Redis suite: cannot reach {args.redis_url} ({exc}); start Redis or pass --redis-url", flush=True)
        return {"error": str(exc)}, False
    ver = redis_peers.versions()
    print(
        f"Redis suite: {args.jobs} no-op jobs, {args.workers} workers, {args.repeat} round(s) on {args.redis_url} "
        f"(appendonly {durability['journal_mode'].split('=')[1]}, appendfsync {durability['synchronous']}, save "
        f"{durability['save']!r}); redis-py {ver['redis']}, rq {ver['rq']}, huey {ver['huey']}, dramatiq "
        f"{ver['dramatiq']}",
        flush=True,
    )
    results = run(
        systems,
        args.jobs,
        args.workers,
        args.repeat,
        log=None if args.quiet else sys.stdout,
        registry=redis_peers.SYSTEMS,
        url=args.redis_url,
    )
    summary = summarize(results, redis_peers.PEERS)
    print()
    print(table(summary))
    peers = [p for p in redis_peers.PEERS if p in summary]
    for name in ("octoqueue-redis", "octoqueue-redis-batch"):
        if name in summary and peers:
            s = summary[name]
            print(
                f"{name} vs the faster peer (medians): enqueue {s['enqueue_vs_peer']:.2f}x ({s['enqueue_peer']}), "
                f"drain {s['drain_vs_peer']:.2f}x ({s['drain_peer']})"
            )
    print(worker_line(summary, args.workers))
    payload = {
        "jobs": args.jobs,
        "workers": args.workers,
        "durability": durability,
        "versions": ver,
        "summary": summary,
        "rounds": {name: [r.as_dict() for r in rounds] for name, rounds in results.items()},
    }
    return payload, all(s["exactly_once"] for s in summary.values())


def _write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
