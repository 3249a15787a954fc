"""``octoqueue serve``: the HTTP server (FastAPI on uvicorn), optionally with a worker in the same process.

Options left out fall back to the environment (the variable named in each option's help), then the working
folder's ``.env``, then the defaults; the values are validated once, by :class:`octoqueue.api.Settings`. The
server binds its address and checks its store before anything starts: a port in use or a store that cannot be
reached is one line and exit status 1.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

import click

from octoqueue import __version__
from octoqueue.errors import ConfigurationError, StoreUnavailable
from octoqueue.logs import LOG_FORMATS, LOG_LEVELS, configure_logging
from octoqueue.retry import DEFAULT_MAX_ATTEMPTS

if TYPE_CHECKING:
    from octoqueue.api.settings import Settings

#: Options that may be given several times; Settings holds them comma-separated.
_LISTS = ("allowed_origins", "webhook_trusted_users", "worker_labels", "worker_limits")


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
        "Store URL: sqlite:///file.db, memory://, github://owner/repo, s3://bucket/prefix, postgresql://user@host/db.",
        "OCTOQUEUE_STORE",
        "sqlite:///octoqueue.db",
    ),
)
@click.option("--label-prefix", help=_help("Prefix of the status labels.", "OCTOQUEUE_LABEL_PREFIX", "''"))
@click.option(
    "--read-mirror",
    help=_help(
        "Answer reads from this local store, kept in step with --store (docs/mirror.md); writes go to --store.",
        "OCTOQUEUE_READ_MIRROR",
    ),
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    help=_help("Origin allowed by CORS (repeatable).", "ALLOWED_ORIGINS, comma-separated"),
)
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
    "--webhook-trusted-user",
    "webhook_trusted_users",
    multiple=True,
    help=_help("GitHub login that may run ChatOps commands (repeatable).", "OCTOQUEUE_WEBHOOK_TRUSTED_USERS"),
)
@click.option(
    "--webhook-repo",
    help=_help(
        "owner/repo whose webhooks may drive jobs of a non-GitHub store (a GitHub store takes its own).",
        "OCTOQUEUE_WEBHOOK_REPO",
    ),
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), help=_help("Log level.", "OCTOQUEUE_LOG_LEVEL", "info"))
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    help=_help("Log lines as text or as JSON objects (uvicorn's too).", "OCTOQUEUE_LOG_FORMAT", "text"),
)
@click.option(
    "--reload/--no-reload",
    default=None,
    help=_help("Restart on code changes (development).", "OCTOQUEUE_RELOAD", "off"),
)
@click.option(
    "--rate-limit-requests",
    type=click.IntRange(min=0),
    help=_help("Requests per client per window on the producer endpoints (0: no limit).", "RATE_LIMIT_REQUESTS", "100"),
)
@click.option(
    "--rate-limit-window",
    type=click.FloatRange(min=0, min_open=True),
    help=_help("Rate-limit window in seconds.", "RATE_LIMIT_WINDOW", "600"),
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=0),
    help=_help("Largest request body accepted (0: no limit).", "OCTOQUEUE_MAX_BODY_BYTES", "1048576"),
)
@click.option(
    "--lease", type=click.FloatRange(min=0, min_open=True), help=_help("Default lease (s).", "OCTOQUEUE_LEASE", "300")
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    help=_help("Default attempts of a /create-job job.", "OCTOQUEUE_MAX_ATTEMPTS", str(DEFAULT_MAX_ATTEMPTS)),
)
@click.option(
    "--max-block-ms",
    type=click.IntRange(0, 300_000),
    help=_help("Longest long-poll wait of a claim.", "OCTOQUEUE_MAX_BLOCK_MS", "30000"),
)
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
    "--prefetch",
    type=click.IntRange(1, 1000),
    help=_help(
        "Jobs each worker thread takes at once, runs in turn and completes together; 1 for long jobs.",
        "OCTOQUEUE_PREFETCH",
        "16 on SQLite, PostgreSQL and Redis, else 1",
    ),
)
@click.option(
    "--worker-label",
    "worker_labels",
    multiple=True,
    help=_help("The worker takes only jobs with this label (repeatable).", "OCTOQUEUE_WORKER_LABELS"),
)
@click.option(
    "--limit",
    "worker_limits",
    multiple=True,
    metavar="TYPE=N",
    help=_help(
        "At most N jobs of TYPE at once in the worker (repeatable).", "OCTOQUEUE_WORKER_LIMITS, comma-separated"
    ),
)
@click.option(
    "--scheduler/--no-scheduler",
    default=None,
    help=_help("Fire due cron schedules from this process (see `octoqueue schedule`).", "OCTOQUEUE_SCHEDULER", "no"),
)
def serve(**options: Any) -> None:
    """Run the HTTP API: /create-job, /admin/schema, the Starq-compatible /api/v1 worker API, GitHub webhooks,
    /health, /ready and /metrics."""
    from octoqueue.api.settings import load_env_file

    load_env_file()  # GH_TOKEN and GITHUB_API_URL, which the GitHub store reads from the environment
    settings = build_settings(options)
    run(settings)


def build_settings(options: dict[str, Any]) -> Settings:
    """Settings from the given options (None and empty ones left to the environment)."""
    from pydantic import ValidationError

    from octoqueue.api.settings import Settings

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


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: a free port); one clear error when the address is taken. uvicorn makes it
    listen once the app has started, so that no connection waits on a server still starting."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


#: Young-generation threshold of the garbage collector while serving (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def tune_gc_for_serving() -> None:
    """Leave what the server built at startup out of the garbage collector's full collections (``gc.freeze``), and
    collect the young generation less often.

    Under load, objects of the requests in flight outlive two young collections and reach the oldest generation,
    so full collections came every second or so; each walked every object of the application (FastAPI's routes
    and models, pydantic's validators: ~100,000) and stopped the server for 50-140 ms, which made most of the slow
    requests. Frozen, those objects are still freed by reference counting; only cycles among them would stay. With
    a young collection every 10,000 net allocations instead of 700, fewer in-flight objects get promoted at all:
    the collector's CPU per ``/create-job`` went from ~25 to ~4 µs (docs/benchmarks.md, Server).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def run(settings: Settings) -> None:
    """Bind, check the store, then serve until SIGTERM/SIGINT."""
    import uvicorn

    from octoqueue.api import create_app
    from octoqueue.api.health import store_problem
    from octoqueue.api.server import open_queue

    configure_logging(settings.log_level, settings.log_format)
    with contextlib.closing(bind(settings.host, settings.port)) as sock:
        host, port = sock.getsockname()[:2]
        common: dict[str, Any] = {"host": host, "port": port, "log_level": settings.log_level, "log_config": None}
        with open_queue(settings) as queue:
            problem = store_problem(queue.store)
            if problem is not None:
                raise StoreUnavailable(f"the store {queue.store.url} cannot be reached: {problem}")
            app = create_app(
                settings, queue
            )  # refuses bad settings (API keys, ...) before the banner promises a server
            text = banner(settings, host, port)
            if settings.log_format == "json":  # stderr stays one JSON object a line
                logging.getLogger("octoqueue.api").info(text.splitlines()[0], extra={"host": host, "port": port})
            else:
                click.echo(text, err=True)
            if not settings.reload:
                server = uvicorn.Server(uvicorn.Config(app, **common))
                tune_gc_for_serving()
                server.run(sockets=[sock])
                return
    # The reloader binds the address itself and imports the app in a fresh process: hand it the settings
    # through the environment.
    os.environ.update(settings_environment(settings))
    uvicorn.run("octoqueue.api:app", reload=True, **common)


def banner(settings: Settings, host: str, port: int) -> str:
    """What a person starting the server needs to know: the address it listens on and how to send it a job."""
    every = host in ("0.0.0.0", "::", "")
    listening = f"{'[' + host + ']' if ':' in host else host}:{port}" + (" (every interface)" if every else "")
    local = "127.0.0.1" if every else (f"[{host}]" if ":" in host else host)
    base = f"http://{local}:{port}"
    keyed = settings.api_key is not None or bool(settings.api_keys)
    key = ' -H "X-API-Key: $API_KEY"' if keyed else ""
    worker = "no worker in this process (run `octoqueue work`)"
    if settings.worker:
        worker = f"a worker runs {settings.handler or settings.command!r} in this process"
    return (
        f"octoqueue {__version__} listening on {listening} — store {settings.store_url}; {worker}\n"
        f"Send it a job:\n"
        f"  curl -s -X POST {base}/create-job -H 'Content-Type: application/json'{key} \\\n"
        f'       -d \'{{"data": {{"text": "hello from curl"}}}}\'\n'
        f"Then see it: curl -s {base}/jobs/<job_id>    API docs: {base}/docs"
    )


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce ``settings`` (the first variable name of each field)."""
    from pydantic import SecretStr

    from octoqueue.api.settings import Settings

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


__all__ = ["banner", "bind", "build_settings", "run", "serve", "settings_environment"]
