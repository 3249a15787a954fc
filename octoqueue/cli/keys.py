"""``octoqueue new-key``: a key for encrypted payloads (``OCTOQUEUE_ENCRYPTION_KEY``)."""

from __future__ import annotations

import click


@click.command(name="new-key")
def new_key() -> None:
    """Print a new encryption key for OCTOQUEUE_ENCRYPTION_KEY.

    To rotate, put the new key first and keep the old ones after it, comma-separated, until no job sealed with
    them remains: the first key seals, every key opens.
    """
    from octoqueue.sealing import new_key as make

    click.echo(make())


def register(group: click.Group) -> None:
    group.add_command(new_key)


__all__ = ["new_key", "register"]
