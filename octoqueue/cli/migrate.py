"""``octoqueue migrate``: create or upgrade a store's tables ahead of time (stores also do it on first use)."""

from __future__ import annotations

import click

from octoqueue.stores import DEFAULT_STORE_URL, store_scheme


@click.command()
@click.argument("url", required=False, envvar="OCTOQUEUE_STORE")
def migrate(url: str | None) -> None:
    """Bring the store at URL (else env OCTOQUEUE_STORE) to this octoqueue's schema version.

    PostgreSQL (postgresql://user@host:port/db?schema=octoqueue): runs the versioned migrations not yet applied, in
    one transaction under an advisory lock, so it is safe while servers and workers start. Other stores need no
    migration (SQLite brings its file up to date when opened; GitHub, Redis, S3 and memory have no schema).
    """
    url = url or DEFAULT_STORE_URL
    scheme = store_scheme(url)
    if scheme in ("postgresql", "postgres"):
        from octoqueue.stores.postgres import migrate_url
        from octoqueue.stores.postgres.schema import LATEST

        schema, applied = migrate_url(url)
        if applied:
            click.echo(f"schema {schema}: applied migration(s) {', '.join(map(str, applied))}; now at version {LATEST}")
        else:
            click.echo(f"schema {schema}: already at version {LATEST}, nothing to do")
        return
    click.echo(f"{scheme}:// stores need no migration: nothing to do")
