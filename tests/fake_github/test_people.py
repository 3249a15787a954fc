"""Organisation-owned repositories, who shows as what (``author_association``), and the permission endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import githubkit_schemas.latest.models as m
import httpx
import pytest
from githubkit import GitHub
from githubkit.webhooks import parse_obj
from pydantic import TypeAdapter

from octoqueue.testing.fake_github import IN_PROCESS_URL, FakeGitHub
from tests.fake_github.conftest import TOKEN

ORG_REPO = "acme-org/jobs"


@pytest.fixture
def org() -> Iterator[FakeGitHub]:
    with FakeGitHub(
        repo=ORG_REPO,
        token=TOKEN,
        user="octoqueue-bot",
        organization=True,
        webhook_url="http://receiver.test/hook",
        webhook_transport=httpx.MockTransport(lambda r: httpx.Response(204)),
    ) as gh:
        gh.add_member("pat", "maintain", public=True)
        gh.add_member("quiet", "write", public=False)
        gh.add_member("reader", "read", public=True)
        gh.add_collaborator("outsider", "triage")
        gh.add_contributor("drive-by")
        yield gh


def _permission(gh: FakeGitHub, login: str) -> httpx.Response:
    with gh.client() as client:
        return client.get(f"/repos/{gh.repo}/collaborators/{login}/permission")


@pytest.mark.parametrize(
    ("login", "association", "permission", "role"),
    [
        ("octoqueue-bot", "MEMBER", "admin", "admin"),
        ("pat", "MEMBER", "write", "maintain"),
        ("quiet", "CONTRIBUTOR", "write", "write"),
        ("reader", "MEMBER", "read", "read"),
        ("outsider", "COLLABORATOR", "read", "triage"),
        ("drive-by", "CONTRIBUTOR", "read", "read"),
        ("nobody", "NONE", "read", "read"),
    ],
)
def test_association_and_permission(org: FakeGitHub, login: str, association: str, permission: str, role: str) -> None:
    number = org.create_issue("hello", author=login)
    assert org.get_issue(number)["author_association"] == association
    response = _permission(org, login)
    assert response.status_code == 200
    data = TypeAdapter(m.RepositoryCollaboratorPermission).validate_python(response.json())
    assert (data.permission, data.role_name) == (permission, role)
    assert data.user is not None and data.user.login == login and data.user.role_name == role


def test_a_user_owned_repository_is_owned_by_its_owner() -> None:
    with FakeGitHub(repo="alice/jobs", user="bot") as gh:
        assert gh.get_issue(gh.create_issue("x", author="alice"))["author_association"] == "OWNER"
        assert _permission(gh, "alice").json()["permission"] == "admin"
        assert _permission(gh, "bob").json()["permission"] == "read"
        with pytest.raises(ValueError, match="organisation"):
            gh.add_member("bob")


def test_githubkit_reads_the_permission(org: FakeGitHub) -> None:
    with GitHub(TOKEN, base_url=IN_PROCESS_URL, transport=org.transport()) as gh:
        response = gh.rest.repos.get_collaborator_permission_level("acme-org", "jobs", "quiet")
    assert response.parsed_data.permission == "write"


def test_only_people_with_push_access_may_ask() -> None:
    with FakeGitHub(repo=ORG_REPO, token=TOKEN, user="reader-bot", organization=True) as gh:
        gh.add_member("reader-bot", "read")
        response = _permission(gh, "someone")
    assert response.status_code == 403


def test_org_payloads_validate_against_githubkits_webhook_models(org: FakeGitHub) -> None:
    number = org.create_issue("job", "body", labels=["pending"], author="quiet")
    org.comment(number, "/requeue", author="quiet")
    assert org.flush_webhooks()
    for delivery in org.deliveries:
        model: Any = parse_obj(delivery.event, delivery.payload)  # type: ignore[call-overload]
        assert model.organization is not None and model.organization.login == "acme-org"
        assert model.repository.owner.type == "Organization"
