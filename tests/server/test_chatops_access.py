"""The ChatOps access rules on their own: repository, octoqueue's own account, bots, trust, GitHub's permission."""

from __future__ import annotations

from typing import Any

import pytest

from octoqueue.api.chatops_access import PERMISSION_TTL, ChatOpsAccess
from octoqueue.errors import StoreUnavailable
from octoqueue.stores.memory import MemoryStore


class PeopleStore(MemoryStore):
    """A store that knows people the way the GitHub store does, and counts what it is asked."""

    full_name = "Acme/Jobs"

    def __init__(self, permissions: dict[str, str], own: str | None = "octoqueue-bot") -> None:
        super().__init__()
        self.permissions = permissions
        self.own = own
        self.asked: list[str] = []

    def own_login(self) -> str | None:
        if self.own == "unreachable":
            raise StoreUnavailable("GitHub could not be reached")
        return self.own

    def permission_of(self, login: str) -> str:
        self.asked.append(login)
        if login == "flaky":
            raise StoreUnavailable("GitHub answered 502")
        return self.permissions.get(login, "read")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def user(login: str, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "type": kind}


def delivery(full_name: str = "acme/jobs") -> dict[str, Any]:
    return {"repository": {"full_name": full_name, "owner": user("acme", "Organization")}}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> PeopleStore:
    return PeopleStore({"maintainer": "write", "boss": "admin", "reader": "read"})


@pytest.fixture
def access(store: PeopleStore, clock: Clock) -> ChatOpsAccess:
    return ChatOpsAccess(store, repository=None, trusted=frozenset({"ops"}), clock=clock)


def test_only_the_stores_repository_may_act(access: ChatOpsAccess) -> None:
    assert access.repository == "Acme/Jobs"
    assert access.wrong_repository(delivery("ACME/jobs")) is None  # names are case-insensitive
    assert "someone/else" in str(access.wrong_repository(delivery("someone/else")))
    assert access.wrong_repository({"repository": "acme/jobs"}) is not None


def test_other_stores_need_a_configured_repository() -> None:
    assert "ChatOps is off" in str(
        ChatOpsAccess(MemoryStore(), repository=None, trusted=frozenset()).wrong_repository(delivery())
    )
    configured = ChatOpsAccess(MemoryStore(), repository="acme/jobs", trusted=frozenset())
    assert configured.wrong_repository(delivery()) is None


@pytest.mark.parametrize(
    ("actor", "association", "allowed"),
    [
        (user("maintainer"), "CONTRIBUTOR", True),  # a private member: GitHub's permission decides
        (user("boss"), "NONE", True),
        (user("reader"), "MEMBER", False),  # a public member with read access only
        (user("stranger"), "CONTRIBUTOR", False),
        (user("octoqueue-bot"), "OWNER", False),  # octoqueue's own account
        (user("OctoQueue-Bot"), None, False),
        (user("ci[bot]", "Bot"), "MEMBER", False),
        (user("renovate[bot]"), "MEMBER", False),
        (user("ops"), "NONE", True),  # trusted
        (user("flaky"), "OWNER", False),  # GitHub could not say: no
        ({}, "OWNER", False),
    ],
)
def test_who_may_run_a_command(
    access: ChatOpsAccess, actor: dict[str, Any], association: str | None, allowed: bool
) -> None:
    assert (access.refusal(actor, association, delivery()) is None) is allowed


def test_permissions_are_cached_for_a_while(access: ChatOpsAccess, store: PeopleStore, clock: Clock) -> None:
    for _ in range(3):
        assert access.refusal(user("maintainer"), None, delivery()) is None
        assert access.refusal(user("Reader"), None, delivery()) is not None
    assert store.asked == ["maintainer", "Reader"]
    store.permissions["maintainer"] = "read"  # demoted on GitHub
    clock.now += PERMISSION_TTL + 1
    assert access.refusal(user("maintainer"), None, delivery()) is not None
    assert store.asked == ["maintainer", "Reader", "maintainer"]


def test_without_a_token_the_payload_decides() -> None:
    access = ChatOpsAccess(MemoryStore(), repository="acme/jobs", trusted=frozenset())
    payload = {"repository": {"full_name": "acme/jobs", "owner": user("acme")}}
    assert access.refusal(user("alice"), "COLLABORATOR", payload) is None
    assert access.refusal(user("alice"), "CONTRIBUTOR", payload) is not None
    assert access.refusal(user("acme"), None, payload) is None  # a label by the owner
    assert access.refusal(user("alice"), None, payload) is not None
    assert access.refusal(user("ci[bot]", "Bot"), "OWNER", payload) is not None


def test_an_unknown_own_login_refuses_rather_than_risk_a_loop(clock: Clock) -> None:
    store = PeopleStore({"boss": "admin"}, own="unreachable")
    access = ChatOpsAccess(store, repository=None, trusted=frozenset(), clock=clock)
    assert "unknown" in str(access.refusal(user("boss"), None, delivery()))
    store.own = None  # a GitHub App's token: no login, and its bot account is refused as a bot
    assert access.refusal(user("boss"), None, delivery()) is None
