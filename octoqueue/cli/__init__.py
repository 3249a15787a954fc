"""The ``octoqueue`` command line: thin over the library. Every option has an environment-variable twin."""

from __future__ import annotations

import sys
from typing import Any

import click

from octoqueue import __version__
from octoqueue.errors import OctoqueueError


class _Main(click.Group):
    """Turns library errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (OctoqueueError, ValueError) as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


@click.group(
    cls=_Main,
    context_settings={
        "help_option_names": ["-h", "--help"],
        "show_default": True,
        "auto_envvar_prefix": "OCTOQUEUE",
    },
)
@click.version_option(__version__, prog_name="octoqueue")
def main() -> None:
    """octoqueue: a job queue whose jobs are GitHub issues (or rows of an embedded SQLite file).

    Every option can also be set from the environment: the variable shown in its help, else
    OCTOQUEUE_<COMMAND>_<OPTION> (e.g. OCTOQUEUE_WORK_CONCURRENCY=4).
    """


def _register() -> None:
    from octoqueue.cli import jobs

    jobs.register(main)
    from octoqueue.cli.fake_github import fake_github

    main.add_command(fake_github)
    from octoqueue.cli.serve import serve

    main.add_command(serve)
    from octoqueue.cli import schedules

    schedules.register(main)
    from octoqueue.cli import keys

    keys.register(main)


_register()
