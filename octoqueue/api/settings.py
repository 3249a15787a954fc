"""The server's settings: one pydantic-settings class, read from arguments, the environment and ``.env``.

Precedence, highest first: values passed in (``octoqueue serve`` flags), environment variables, a ``.env`` file
in the working directory, the defaults below. Each field lists the environment variables it reads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from octoqueue.errors import ConfigurationError
from octoqueue.logs import LOG_FORMATS, LOG_LEVELS
from octoqueue.retry import DEFAULT_MAX_ATTEMPTS
from octoqueue.stores import DEFAULT_STORE_URL

_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def _env(*names: str) -> Any:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Everything ``octoqueue serve`` and ``uvicorn octoqueue.api:app`` can be told."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # -- where and how to listen --------------------------------------------------------------------------
    host: str = Field("0.0.0.0", validation_alias=_env("OCTOQUEUE_HOST"))
    port: int = Field(8080, ge=0, le=65535, validation_alias=_env("PORT", "OCTOQUEUE_PORT"))
    log_level: str = Field("info", validation_alias=_env("OCTOQUEUE_LOG_LEVEL"))
    log_format: str = Field("text", validation_alias=_env("OCTOQUEUE_LOG_FORMAT"))
    reload: bool = Field(False, validation_alias=_env("OCTOQUEUE_RELOAD"))

    # -- where jobs live ----------------------------------------------------------------------------------
    repo: str | None = Field(None, validation_alias=_env("GITHUB_REPO", "OCTOQUEUE_REPO"))
    store: str | None = Field(None, validation_alias=_env("OCTOQUEUE_STORE"))
    label_prefix: str = Field("", validation_alias=_env("OCTOQUEUE_LABEL_PREFIX"))
    lease: float = Field(300.0, gt=0, validation_alias=_env("OCTOQUEUE_LEASE"))
    max_attempts: int = Field(DEFAULT_MAX_ATTEMPTS, ge=1, le=100, validation_alias=_env("OCTOQUEUE_MAX_ATTEMPTS"))
    #: A local store that answers reads, kept in step with the store (octoqueue.mirror_reads); writes still go to it.
    read_mirror: str | None = Field(None, validation_alias=_env("OCTOQUEUE_READ_MIRROR"))
    read_mirror_interval: float = Field(2.0, gt=0, validation_alias=_env("OCTOQUEUE_READ_MIRROR_INTERVAL"))

    # -- security -----------------------------------------------------------------------------------------
    allowed_origins: str = Field("", validation_alias=_env("ALLOWED_ORIGINS", "ALLOWED_ORIGIN"))
    api_key: SecretStr | None = Field(None, validation_alias=_env("API_KEY", "OCTOQUEUE_API_KEY"))
    api_keys: SecretStr | None = Field(None, validation_alias=_env("API_KEYS", "OCTOQUEUE_API_KEYS"))
    open_reads: bool = Field(True, validation_alias=_env("OCTOQUEUE_OPEN_READS"))
    webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("GITHUB_WEBHOOK_SECRET", "OCTOQUEUE_WEBHOOK_SECRET")
    )
    webhook_trusted_users: str = Field("", validation_alias=_env("OCTOQUEUE_WEBHOOK_TRUSTED_USERS"))
    webhook_repo: str | None = Field(None, validation_alias=_env("OCTOQUEUE_WEBHOOK_REPO"))
    rate_limit_requests: int = Field(100, ge=0, validation_alias=_env("RATE_LIMIT_REQUESTS"))
    rate_limit_window: float = Field(600.0, gt=0, validation_alias=_env("RATE_LIMIT_WINDOW"))
    max_body_bytes: int = Field(1_048_576, ge=0, validation_alias=_env("OCTOQUEUE_MAX_BODY_BYTES"))

    # -- the worker API -----------------------------------------------------------------------------------
    max_block_ms: int = Field(30_000, ge=0, le=300_000, validation_alias=_env("OCTOQUEUE_MAX_BLOCK_MS"))
    claim_poll_interval: float = Field(1.0, gt=0, validation_alias=_env("OCTOQUEUE_CLAIM_POLL_INTERVAL"))
    recover_interval: float = Field(5.0, gt=0, validation_alias=_env("OCTOQUEUE_RECOVER_INTERVAL"))
    settings_cache_seconds: float = Field(1.0, ge=0, validation_alias=_env("OCTOQUEUE_SETTINGS_CACHE_SECONDS"))
    metrics_cache_seconds: float = Field(5.0, ge=0, validation_alias=_env("OCTOQUEUE_METRICS_CACHE_SECONDS"))
    #: Most requests waiting on ``GET /jobs/{id}?wait=`` at once; more get 503 with Retry-After.
    max_job_waiters: int = Field(1000, ge=0, validation_alias=_env("OCTOQUEUE_MAX_JOB_WAITERS"))

    # -- a worker in the same process ---------------------------------------------------------------------
    worker: bool = Field(False, validation_alias=_env("OCTOQUEUE_WORKER"))
    handler: str | None = Field(None, validation_alias=_env("OCTOQUEUE_HANDLER"))
    command: str | None = Field(None, validation_alias=_env("OCTOQUEUE_COMMAND"))
    concurrency: int = Field(1, ge=1, le=256, validation_alias=_env("OCTOQUEUE_CONCURRENCY"))
    #: Jobs each worker thread takes at once (None: the Worker's default for the store).
    prefetch: int | None = Field(None, ge=1, le=1000, validation_alias=_env("OCTOQUEUE_PREFETCH"))
    worker_labels: str = Field("", validation_alias=_env("OCTOQUEUE_WORKER_LABELS"))
    #: ``email=2,report=1``: at most that many jobs of each type at once in the worker.
    worker_limits: str = Field("", validation_alias=_env("OCTOQUEUE_WORKER_LIMITS"))
    #: Fire due cron schedules from this process (any number of processes may: each tick fires once).
    scheduler: bool = Field(False, validation_alias=_env("OCTOQUEUE_SCHEDULER"))

    @field_validator("worker_limits")
    @classmethod
    def _type_limits(cls, value: str) -> str:
        from octoqueue.worker import parse_type_limits

        try:
            parse_type_limits(_split(value))
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("log_level", "log_format")
    @classmethod
    def _known_choice(cls, value: str, info: ValidationInfo) -> str:
        choices = LOG_LEVELS if info.field_name == "log_level" else LOG_FORMATS
        chosen = value.strip().lower()
        if chosen not in choices:
            raise ValueError(f"{str(info.field_name).replace('_', ' ')} must be one of {', '.join(choices)}")
        return chosen

    @field_validator("repo", "webhook_repo")
    @classmethod
    def _repo_shape(cls, value: str | None) -> str | None:
        if value is not None and not _REPO_RE.match(value):
            raise ValueError(f"repository {value!r} must look like owner/repo")
        return value or None

    @field_validator("store", "handler", "command")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.store and self.repo and _github_repo(self.store) != self.repo:
            raise ValueError(f"--repo {self.repo} and --store {self.store} disagree: give one of them")
        store_repo = _github_repo(self.store_url)
        if self.webhook_repo and store_repo is not None and store_repo.lower() != self.webhook_repo.lower():
            raise ValueError(
                f"--webhook-repo {self.webhook_repo} is not the store's repository {store_repo}: "
                "a GitHub store takes ChatOps from its own repository only"
            )
        if self.handler and self.command:
            raise ValueError("give a worker --handler or --command, not both")
        if self.worker and not (self.handler or self.command):
            raise ValueError("the in-process worker needs --handler module:function or --command 'shell cmd'")
        return self

    # -- derived values -----------------------------------------------------------------------------------
    @property
    def store_url(self) -> str:
        """``--store`` when given, else ``github://<repo>`` when a repository is named, else embedded SQLite."""
        if self.store:
            return self.store
        if self.repo:
            return f"github://{self.repo}"
        return DEFAULT_STORE_URL

    @property
    def origins(self) -> list[str]:
        return _split(self.allowed_origins)

    @property
    def worker_label_list(self) -> list[str]:
        return _split(self.worker_labels)

    @property
    def worker_type_limits(self) -> dict[str, int]:
        from octoqueue.worker import parse_type_limits

        return parse_type_limits(_split(self.worker_limits))

    @property
    def trusted_users(self) -> frozenset[str]:
        return frozenset(name.lstrip("@").lower() for name in _split(self.webhook_trusted_users))


def load_env_file(path: Path | None = None) -> bool:
    """Copy the working folder's ``.env`` (or ``path``) into ``os.environ``, the environment winning, for what
    reads the environment itself rather than :class:`Settings`: the GitHub store's ``GH_TOKEN``/``GITHUB_TOKEN``
    and ``GITHUB_API_URL``. Returns whether a file was read."""
    from dotenv import dotenv_values

    env_file = path or Path.cwd() / ".env"
    if not env_file.is_file():
        return False
    for name, value in dotenv_values(env_file).items():
        if value is not None:
            os.environ.setdefault(name, value)
    return True


def _github_repo(store_url: str) -> str | None:
    """``owner/repo`` of a ``github://`` store URL; None for other stores."""
    if not store_url.startswith("github://"):
        return None
    return store_url.removeprefix("github://").split("?", 1)[0].strip("/")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


__all__ = ["LOG_LEVELS", "Settings", "load_env_file"]
