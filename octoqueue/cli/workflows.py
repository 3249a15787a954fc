"""``octoqueue workflow ...``: look at workflows (DAGs of jobs submitted with :class:`octoqueue.Workflow`)."""

from __future__ import annotations

import json

import click

from octoqueue.cli.jobs import open_queue, prefix_option, store_option
from octoqueue.workflows import render, show


@click.group()
def workflow() -> None:
    """Workflows: jobs that wait for other jobs (submitted with octoqueue.Workflow or enqueue --depends-on)."""


@workflow.command(name="show")
@click.argument("workflow_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job, parents first.")
@store_option
@prefix_option
def show_workflow(workflow_id: str, as_json: bool, store_url: str, label_prefix: str) -> None:
    """Print the jobs of workflow WORKFLOW_ID (its jobs carry the label workflow:WORKFLOW_ID), parents first, with
    their states ('waiting': pending until its parents completed), the jobs each waits for and their errors."""
    with open_queue(store_url, label_prefix) as queue:
        nodes = show(queue, workflow_id)
    if not nodes:
        raise click.ClickException(f"no jobs carry the label workflow:{workflow_id} in {store_url}")
    if as_json:
        for node in nodes:
            line = {
                "id": node.job.id,
                "title": node.job.title,
                "state": node.state,
                "parents": list(node.parents),
                "error": node.job.last_error,
            }
            click.echo(json.dumps(line, ensure_ascii=False))
        return
    click.echo(f"workflow {workflow_id}: {len(nodes)} jobs")
    click.echo(render(nodes))
