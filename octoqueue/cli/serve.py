"""``octoqueue serve``: the HTTP server (FastAPI on uvicorn), optionally with a worker in the same process.

Options left out fall back to the environment (the variable named in each option's help), then ``.env``, then
the defaults; the values are validated once, by :class:`octoqueue.api.Settings`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import click
from pydantic import SecretStr, ValidationError

from octoqueue import __version__
from octoqueue.api.settings import LOG_LEVELS, Settings
from octoqueue.errors import ConfigurationError

#: Options that may be given several times; Settings holds them comma-separated.
_LISTS = ("allowed_origins", "webhook_trusted_users", "worker_labels")


def _help(text: str, env: str, default: str | None = None) -> str:
    return f"{text} [env {env}" + (f"; default {default}]" if default is not None else "]")


@click.command()
@click.option("--host", help=_help("Address to bind.", "OCTOQUEUE_HOST", "0.0.0.0"))
@click.option("--port", type=click.IntRange(0, 65535), help=_help("Port to bind.", "PORT", "8080"))
@click.option(
    "--repo", help=_help("GitHub repository owner/repo: jobs live there (github://owner/repo).", "GITHUB_REPO")
)
@click.option(
    "--store",
    help=_help(
        "Store URL: sqlite:///file.db, memory://, github://owner/repo.", "OCTOQUEUE_STORE", "sqlite:///octoqueue.db"
    ),
)
@click.option("--label-prefix", help=_help("Prefix of the status labels.", "OCTOQUEUE_LABEL_PREFIX", "''"))
@click.option(
    "--allowed-origin", "allowed_origins", multiple=True,
    help=_help("Origin allowed by CORS (repeatable).", "ALLOWED_ORIGINS, comma-separated"),
)  # fmt: skip
@click.option("--api-key", help=_help("A key with every role (prefer the environment).", "API_KEY"))
@click.option(
    "--api-keys",
    help=_help("Keys with roles: producer:k1,worker:k2,admin:k3 (roles may be joined: producer+worker).", "API_KEYS"),
)
@click.option(
    "--open-reads/--keyed-reads", default=None, help=_help("Whether reads need a key.", "OCTOQUEUE_OPEN_READS", "open")
)
@click.option("--webhook-secret", help=_help("Secret of the GitHub webhook.", "GITHUB_WEBHOOK_SECRET"))
@click.option(
    "--webhook-trusted-user", "webhook_trusted_users", multiple=True,
    help=_help("GitHub login that may run ChatOps commands (repeatable).", "OCTOQUEUE_WEBHOOK_TRUSTED_USERS"),
)  # fmt: skip
@click.option(
    "--webhook-repo",
    help=_help(
        "owner/repo whose webhooks may drive jobs of a non-GitHub store (a GitHub store takes its own).",
        "OCTOQUEUE_WEBHOOK_REPO",
    ),
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), help=_help("Log level.", "OCTOQUEUE_LOG_LEVEL", "info"))
@click.option(
    "--reload/--no-reload",
    default=None,
    help=_help("Restart on code changes (development).", "OCTOQUEUE_RELOAD", "off"),
)
@click.option(
    "--rate-limit-requests", type=click.IntRange(min=0),
    help=_help("Requests per client per window on the producer endpoints (0: no limit).", "RATE_LIMIT_REQUESTS", "100"),
)  # fmt: skip
@click.option(
    "--rate-limit-window", type=click.FloatRange(min=0, min_open=True),
    help=_help("Rate-limit window in seconds.", "RATE_LIMIT_WINDOW", "600"),
)  # fmt: skip
@click.option(
    "--max-body-bytes", type=click.IntRange(min=0),
    help=_help("Largest request body accepted (0: no limit).", "OCTOQUEUE_MAX_BODY_BYTES", "1048576"),
)  # fmt: skip
@click.option(
    "--lease", type=click.FloatRange(min=0, min_open=True), help=_help("Default lease (s).", "OCTOQUEUE_LEASE", "300")
)
@click.option(
    "--max-attempts", type=click.IntRange(1, 100),
    help=_help("Default attempts of a /create-job job.", "OCTOQUEUE_MAX_ATTEMPTS", "1"),
)  # fmt: skip
@click.option(
    "--max-block-ms", type=click.IntRange(0, 300_000),
    help=_help("Longest long-poll wait of a claim.", "OCTOQUEUE_MAX_BLOCK_MS", "30000"),
)  # fmt: skip
@click.option(
    "--worker/--no-worker", default=None, help=_help("Run a worker in this process.", "OCTOQUEUE_WORKER", "no")
)
@click.option("--handler", help=_help("The worker's handler, module:function.", "OCTOQUEUE_HANDLER"))
@click.option("--command", help=_help("The worker's handler as a shell command.", "OCTOQUEUE_COMMAND"))
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    help=_help("Jobs the worker runs at once.", "OCTOQUEUE_CONCURRENCY", "1"),
)
@click.option(
    "--worker-label", "worker_labels", multiple=True,
    help=_help("The worker takes only jobs with this label (repeatable).", "OCTOQUEUE_WORKER_LABELS"),
)  # fmt: skip
@click.option(
    "--scheduler/--no-scheduler",
    default=None,
    help=_help("Fire due cron schedules from this process (see `octoqueue schedule`).", "OCTOQUEUE_SCHEDULER", "no"),
)
def serve(**options: Any) -> None:
    """Run the HTTP API: /create-job, /admin/schema, the Starq-compatible /api/v1 worker API, GitHub webhooks,
    /health, /ready and /metrics."""
    settings = build_settings(options)
    run(settings)


def build_settings(options: dict[str, Any]) -> Settings:
    """Settings from the given options (None and empty ones left to the environment)."""
    given: dict[str, Any] = {}
    for name, value in options.items():
        if value is None or value == ():
            continue
        given[name] = ",".join(value) if name in _LISTS else value
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "settings"
        raise ConfigurationError(f"{where}: {first.get('msg', exc)}") from None


def run(settings: Settings) -> None:
    import uvicorn

    logging.basicConfig(
        level=settings.log_level.upper() if settings.log_level != "trace" else "DEBUG",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    common: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_level": settings.log_level}
    click.echo(banner(settings), err=True)
    if settings.reload:
        # The reloader imports the app in a fresh process: hand it the settings through the environment.
        os.environ.update(settings_environment(settings))
        uvicorn.run("octoqueue.api:app", reload=True, **common)
        return
    from octoqueue.api import create_app

    uvicorn.run(create_app(settings), **common)


def banner(settings: Settings) -> str:
    """What a person starting the server needs to know: where it is and how to send it a job."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"http://{host}:{settings.port}"
    keyed = settings.api_key is not None or bool(settings.api_keys)
    key = ' -H "X-API-Key: $API_KEY"' if keyed else ""
    store = settings.store or (f"github://{settings.repo}" if settings.repo else "sqlite:///octoqueue.db")
    worker = "no worker in this process (run `octoqueue work`)"
    if settings.worker:
        worker = f"a worker runs {settings.handler or settings.command!r} in this process"
    return (
        f"octoqueue {__version__} on {base} — store {store}; {worker}\n"
        f"Send it a job:\n"
        f"  curl -s -X POST {base}/create-job -H 'Content-Type: application/json'{key} \\\n"
        f'       -d \'{{"data": {{"text": "hello from curl"}}}}\'\n'
        f"Then see it: curl -s {base}/jobs/<job_id>    API docs: {base}/docs"
    )


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce ``settings`` (the first variable name of each field)."""
    env: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        variable = str(choices[0]) if choices else name.upper()
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[variable] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def register(group: click.Group) -> None:
    group.add_command(serve)


__all__ = ["build_settings", "register", "run", "serve", "settings_environment"]
