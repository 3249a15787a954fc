"""``octoqueue fake-github``: serve the GitHub emulator in the foreground, for offline development."""

from __future__ import annotations

import click


@click.command("fake-github")
@click.option("--host", default="127.0.0.1", envvar="FAKE_GITHUB_HOST", help="Interface to listen on.")
@click.option("--port", default=9009, type=int, envvar="FAKE_GITHUB_PORT", help="Port to listen on.")
@click.option("--repo", default="octoqueue/jobs", envvar="FAKE_GITHUB_REPO", help="The emulated owner/name.")
@click.option(
    "--token",
    default=None,
    envvar="FAKE_GITHUB_TOKEN",
    help="The one token accepted (others get 401). Unset: any token, and anonymous requests.",
)
@click.option("--webhook-url", default=None, envvar="FAKE_GITHUB_WEBHOOK_URL", help="Where to POST webhooks.")
@click.option("--webhook-secret", default=None, envvar="FAKE_GITHUB_WEBHOOK_SECRET", help="Webhook HMAC secret.")
@click.option("--latency", default=0.0, type=float, envvar="FAKE_GITHUB_LATENCY", help="Seconds added per request.")
@click.option(
    "--error-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    envvar="FAKE_GITHUB_ERROR_RATE",
    help="Fraction of requests answered 5xx before doing any work.",
)
@click.option(
    "--error-after-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    envvar="FAKE_GITHUB_ERROR_AFTER_RATE",
    help="Fraction of writes answered 5xx after they were done (a retry repeats them).",
)
@click.option(
    "--read-lag",
    default=0.0,
    type=click.FloatRange(min=0),
    envvar="FAKE_GITHUB_READ_LAG",
    help="Seconds by which reads of issues and comments lag writes (a replica; 0 = none).",
)
@click.option(
    "--ref-failure-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    envvar="FAKE_GITHUB_REF_FAILURE_RATE",
    help='Fraction of ref creations answered 422 "Reference update failed" (half after creating the ref).',
)
@click.option(
    "--push-access/--no-push-access",
    default=True,
    envvar="FAKE_GITHUB_PUSH_ACCESS",
    help="Without push access GitHub silently drops labels and assignees from issue creates and edits.",
)
@click.option("--rate-limit", default=5000, type=int, envvar="FAKE_GITHUB_RATE_LIMIT", help="Primary limit per hour.")
@click.option("--secondary-writes-per-minute", default=80, type=int, envvar="FAKE_GITHUB_SECONDARY_WRITES_PER_MINUTE")
@click.option("--secondary-writes-per-hour", default=500, type=int, envvar="FAKE_GITHUB_SECONDARY_WRITES_PER_HOUR")
@click.option("--seed", default=0, type=int, envvar="FAKE_GITHUB_SEED", help="Seed for injected errors.")
@click.option("--log-level", default="info", envvar="FAKE_GITHUB_LOG_LEVEL", help="uvicorn log level.")
def fake_github(
    host: str,
    port: int,
    repo: str,
    token: str | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    latency: float,
    error_rate: float,
    error_after_rate: float,
    read_lag: float,
    ref_failure_rate: float,
    push_access: bool,
    rate_limit: int,
    secondary_writes_per_minute: int,
    secondary_writes_per_hour: int,
    seed: int,
    log_level: str,
) -> None:
    """Serve an in-memory GitHub REST API for one repository (API base = http://HOST:PORT, no /api/v3).

    Faults can be switched while it runs: GET or PATCH http://HOST:PORT/_fake/faults with a JSON object,
    e.g. {"read_lag": 2.0, "ref_failure_rate": 0.05}.
    """
    import uvicorn

    from octoqueue.testing.fake_github import FakeGitHub
    from octoqueue.testing.fake_github.server import uvicorn_config

    gh = FakeGitHub(
        repo,
        token,
        latency=latency,
        error_rate=error_rate,
        error_after_rate=error_after_rate,
        read_lag=read_lag,
        ref_failure_rate=ref_failure_rate,
        push_access=push_access,
        rate_limit=rate_limit,
        secondary_writes_per_minute=secondary_writes_per_minute,
        secondary_writes_per_hour=secondary_writes_per_hour,
        seed=seed,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    )
    click.echo(f"fake GitHub for {repo} at http://{host}:{port} (initial commit {gh.initial_commit_sha})")
    try:
        uvicorn.Server(uvicorn_config(gh.app, host, port, log_level)).run()
    finally:
        gh.close()
