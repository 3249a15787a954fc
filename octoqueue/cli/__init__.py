"""The ``octoqueue`` command line: thin over the library. Every option has an environment-variable twin.

A command's module is imported only when that command runs (``--help`` imports them all, for their summaries):
``octoqueue --version`` or ``octoqueue list`` never load the server.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from octoqueue import __version__
from octoqueue.errors import OctoqueueError

#: Command name -> "module:attribute" of its click command.
COMMANDS: dict[str, str] = {
    "enqueue": "octoqueue.cli.jobs:enqueue",
    "list": "octoqueue.cli.jobs:list_jobs",
    "status": "octoqueue.cli.jobs:status",
    "show": "octoqueue.cli.jobs:show",
    "complete": "octoqueue.cli.jobs:complete",
    "fail": "octoqueue.cli.jobs:fail",
    "requeue": "octoqueue.cli.jobs:requeue",
    "cancel": "octoqueue.cli.jobs:cancel",
    "clear": "octoqueue.cli.jobs:clear",
    "work": "octoqueue.cli.jobs:work",
    "history": "octoqueue.cli.control:history",
    "pause": "octoqueue.cli.control:pause",
    "resume": "octoqueue.cli.control:resume",
    "info": "octoqueue.cli.info:info",
    "serve": "octoqueue.cli.serve:serve",
    "fake-github": "octoqueue.cli.fake_github:fake_github",
    "schedule": "octoqueue.cli.schedules:schedule",
    "workflow": "octoqueue.cli.workflows:workflow",
    "new-key": "octoqueue.cli.keys:new_key",
    "migrate": "octoqueue.cli.migrate:migrate",
    "mirror": "octoqueue.cli.mirror:mirror",
}


class _Main(click.Group):
    """Loads commands when asked for; turns usage errors and library errors into one clear line and exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = COMMANDS[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message().rstrip('.')}{where}", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(1)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

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


__all__ = ["COMMANDS", "main"]
