"""JSON shapes, as GitHub returns them (REST API version 2022-11-28 and later).

Every object is complete — githubkit's models are strict — and every URL inside it points back at the
emulator (``base``), because clients such as PyGitHub follow those URLs for later calls.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from octoqueue.testing.fake_github.clock import iso
from octoqueue.testing.fake_github.state import LEGACY_PERMISSION, ROLES, Comment, Issue, IssueEvent, Label, RepoState

Json = dict[str, Any]


def node_id(prefix: str, kind: str, ident: int | str) -> str:
    """GraphQL-style opaque ids (``I_kwDO…``); only uniqueness and the prefix matter to clients."""
    raw = base64.urlsafe_b64encode(f"{kind}:{ident}".encode()).decode().rstrip("=")
    return f"{prefix}_kwDO{raw}"


class Renderer:
    """Turns records into GitHub's JSON, with URLs rooted at ``base`` (e.g. ``http://127.0.0.1:9009``)."""

    def __init__(self, state: RepoState, base: str) -> None:
        self.state = state
        self.base = base.rstrip("/")
        self.repo_url = f"{self.base}/repos/{state.full_name}"
        self.html_repo = f"{self.base}/{state.full_name}"

    # -- users ---------------------------------------------------------------------------------------------
    def user(self, login: str) -> Json:
        user = self.state.user(login)
        url = f"{self.base}/users/{user.login}"
        return {
            "login": user.login,
            "id": user.id,
            "node_id": node_id("U", "user", user.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.base}/{user.login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": user.site_admin,
        }

    def private_user(self, login: str) -> Json:
        """``GET /user``: the authenticated user, with the private fields only its owner sees."""
        user = self.state.user(login)
        return {
            **self.user(login),
            "name": user.login,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "notification_email": None,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": 1,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": iso(user.created_at),
            "updated_at": iso(user.created_at),
            "private_gists": 0,
            "total_private_repos": 0,
            "owned_private_repos": 0,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": True,
            "plan": {"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000},
        }

    def permission(self, login: str) -> Json:
        """``GET /repos/{owner}/{repo}/collaborators/{username}/permission``: base permission and role."""
        role = self.state.role(login)
        rank = ROLES.index(role)
        flags = {name: rank >= ROLES.index(name) for name in ROLES}
        permissions = {
            "pull": True,
            "triage": flags["triage"],
            "push": flags["write"],
            "maintain": flags["maintain"],
            "admin": flags["admin"],
        }
        collaborator = {**self.user(login), "permissions": permissions, "role_name": role}
        return {"permission": LEGACY_PERMISSION[role], "role_name": role, "user": collaborator}

    def organization(self) -> Json | None:
        """The ``organization`` object of webhook payloads; None for a user-owned repository."""
        if self.state.owner_type != "Organization":
            return None
        org = self.state.user(self.state.owner)
        url = f"{self.base}/orgs/{org.login}"
        return {
            "login": org.login,
            "id": org.id,
            "node_id": node_id("O", "org", org.id),
            "url": url,
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events",
            "hooks_url": f"{url}/hooks",
            "issues_url": f"{url}/issues",
            "members_url": f"{url}/members{{/member}}",
            "public_members_url": f"{url}/public_members{{/member}}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{org.id}?v=4",
            "description": None,
        }

    # -- labels --------------------------------------------------------------------------------------------
    def label(self, label: Label) -> Json:
        return {
            "id": label.id,
            "node_id": node_id("LA", "label", label.id),
            "url": f"{self.repo_url}/labels/{quote(label.name, safe='')}",
            "name": label.name,
            "color": label.color,
            "default": label.default,
            "description": label.description,
            # Present (and always null) in API version 2026-03-10, which githubkit 0.16 validates against.
            "archived_at": None,
            "archived_by": None,
        }

    # -- issues --------------------------------------------------------------------------------------------
    def issue(self, issue: Issue) -> Json:
        url = f"{self.repo_url}/issues/{issue.number}"
        kind = "pull" if issue.is_pull_request else "issues"
        out: Json = {
            "url": url,
            "repository_url": self.repo_url,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.html_repo}/{kind}/{issue.number}",
            "id": issue.id,
            "node_id": node_id("PR" if issue.is_pull_request else "I", "issue", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user(issue.author),
            "labels": [self.label(label) for label in self.state.issue_labels(issue)],
            "state": issue.state,
            "locked": issue.locked,
            "assignee": self.user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.user(login) for login in issue.assignees],
            "milestone": None,
            "comments": issue.comments,
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "author_association": issue.author_association,
            "type": None,
            "active_lock_reason": None,
            "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
            "issue_dependencies_summary": self.dependencies_summary(issue.number),
            "body": issue.body,
            "closed_by": self.user(issue.closed_by) if issue.closed_by else None,
            "reactions": self.reactions(url),
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None,
            "state_reason": issue.state_reason,
        }
        if issue.is_pull_request:
            pull = f"{self.repo_url}/pulls/{issue.number}"
            out["draft"] = False
            out["pull_request"] = {
                "url": pull,
                "html_url": f"{self.html_repo}/pull/{issue.number}",
                "diff_url": f"{self.html_repo}/pull/{issue.number}.diff",
                "patch_url": f"{self.html_repo}/pull/{issue.number}.patch",
                "merged_at": None,
            }
        return out

    def dependencies_summary(self, number: int) -> Json:
        """Counts of the issue's dependencies: ``blocked_by``/``blocking`` count the open ones, ``total_*`` all."""
        with self.state.lock:
            parents = [self.state.issues[n] for n in self.state.blocked_by.get(number, []) if n in self.state.issues]
            children = [self.state.issues[n] for n in self.state.blocking(number) if n in self.state.issues]
        return {
            "blocked_by": sum(i.state == "open" for i in parents),
            "total_blocked_by": len(parents),
            "blocking": sum(i.state == "open" for i in children),
            "total_blocking": len(children),
        }

    def reactions(self, subject_url: str) -> Json:
        counts = dict.fromkeys(("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes"), 0)
        return {"url": f"{subject_url}/reactions", "total_count": 0, **counts}

    def comment(self, comment: Comment) -> Json:
        url = f"{self.repo_url}/issues/comments/{comment.id}"
        return {
            "url": url,
            "html_url": f"{self.html_repo}/issues/{comment.issue_number}#issuecomment-{comment.id}",
            "issue_url": f"{self.repo_url}/issues/{comment.issue_number}",
            "id": comment.id,
            "node_id": node_id("IC", "comment", comment.id),
            "user": self.user(comment.author),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": comment.author_association,
            "body": comment.body,
            "reactions": self.reactions(url),
            "performed_via_github_app": None,
        }

    def event(self, event: IssueEvent) -> Json:
        out: Json = {
            "id": event.id,
            "node_id": node_id({"labeled": "LE", "unlabeled": "UNLE"}.get(event.event, "CE"), "ev", event.id),
            "url": f"{self.repo_url}/issues/events/{event.id}",
            "actor": self.user(event.actor),
            "event": event.event,
            "commit_id": None,
            "commit_url": None,
            "created_at": iso(event.created_at),
            "performed_via_github_app": None,
        }
        if event.label_name is not None:
            out["label"] = {"name": event.label_name, "color": event.label_color}
        if event.event in ("closed", "reopened"):
            out["state_reason"] = event.state_reason
        return out

    # -- git -----------------------------------------------------------------------------------------------
    def git_ref(self, ref: str, sha: str) -> Json:
        return {
            "ref": ref,
            "node_id": node_id("REF", "ref", ref),
            "url": f"{self.repo_url}/git/{ref}",
            "object": {"sha": sha, "type": "commit", "url": f"{self.repo_url}/git/commits/{sha}"},
        }

    # -- repository and meta -------------------------------------------------------------------------------
    def repository(self) -> Json:
        """``GET /repos/{owner}/{repo}``: the full repository object, as its admin sees it."""
        st, r = self.state, self.repo_url
        with st.lock:
            open_count = sum(1 for issue in st.issues.values() if issue.state == "open")
        templates = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "contributors_url": "/contributors",
            "deployments_url": "/deployments",
            "downloads_url": "/downloads",
            "events_url": "/events",
            "forks_url": "/forks",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "hooks_url": "/hooks",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "languages_url": "/languages",
            "merges_url": "/merges",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "stargazers_url": "/stargazers",
            "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers",
            "subscription_url": "/subscription",
            "tags_url": "/tags",
            "teams_url": "/teams",
            "trees_url": "/git/trees{/sha}",
        }
        host = self.base.split("://", 1)[-1]
        return {
            "id": st.id,
            "node_id": node_id("R", "repo", st.id),
            "name": st.name,
            "full_name": st.full_name,
            "private": False,
            "owner": self.user(st.owner),
            "html_url": self.html_repo,
            "description": "An octoqueue repository emulated by octoqueue.testing.fake_github",
            "fork": False,
            "url": r,
            **{key: r + suffix for key, suffix in sorted(templates.items())},
            "created_at": iso(st.created_at),
            "updated_at": iso(st.pushed_at),
            "pushed_at": iso(st.pushed_at),
            "git_url": f"git://{host}/{st.full_name}.git",
            "ssh_url": f"git@{host}:{st.full_name}.git",
            "clone_url": f"{self.html_repo}.git",
            "svn_url": self.html_repo,
            "homepage": None,
            "size": 1,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": None,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_count,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "public",
            "forks": 0,
            "open_issues": open_count,
            "watchers": 0,
            "default_branch": "main",
            "permissions": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
            "temp_clone_token": "",
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_rebase_merge": True,
            "allow_auto_merge": False,
            "delete_branch_on_merge": False,
            "allow_update_branch": False,
            "use_squash_pr_title_as_default": False,
            "squash_merge_commit_message": "COMMIT_MESSAGES",
            "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
            "merge_commit_message": "PR_TITLE",
            "merge_commit_title": "MERGE_MESSAGE",
            "custom_properties": {},
            "network_count": 0,
            "subscribers_count": 1,
        }

    def root(self) -> Json:
        """``GET /``: the URL templates GitHub advertises."""
        b = self.base
        return {
            "current_user_url": f"{b}/user",
            "current_user_authorizations_html_url": f"{b}/settings/connections/applications{{/client_id}}",
            "authorizations_url": f"{b}/authorizations",
            "code_search_url": f"{b}/search/code?q={{query}}{{&page,per_page,sort,order}}",
            "commit_search_url": f"{b}/search/commits?q={{query}}{{&page,per_page,sort,order}}",
            "emails_url": f"{b}/user/emails",
            "emojis_url": f"{b}/emojis",
            "events_url": f"{b}/events",
            "feeds_url": f"{b}/feeds",
            "followers_url": f"{b}/user/followers",
            "following_url": f"{b}/user/following{{/target}}",
            "gists_url": f"{b}/gists{{/gist_id}}",
            "hub_url": f"{b}/hub",
            "issue_search_url": f"{b}/search/issues?q={{query}}{{&page,per_page,sort,order}}",
            "issues_url": f"{b}/issues",
            "keys_url": f"{b}/user/keys",
            "label_search_url": f"{b}/search/labels?q={{query}}&repository_id={{repository_id}}{{&page,per_page}}",
            "notifications_url": f"{b}/notifications",
            "organization_url": f"{b}/orgs/{{org}}",
            "organization_repositories_url": f"{b}/orgs/{{org}}/repos{{?type,page,per_page,sort}}",
            "organization_teams_url": f"{b}/orgs/{{org}}/teams",
            "public_gists_url": f"{b}/gists/public",
            "rate_limit_url": f"{b}/rate_limit",
            "repository_url": f"{b}/repos/{{owner}}/{{repo}}",
            "repository_search_url": f"{b}/search/repositories?q={{query}}{{&page,per_page,sort,order}}",
            "current_user_repositories_url": f"{b}/user/repos{{?type,page,per_page,sort}}",
            "starred_url": f"{b}/user/starred{{/owner}}{{/repo}}",
            "starred_gists_url": f"{b}/gists/starred",
            "topic_search_url": f"{b}/search/topics?q={{query}}{{&page,per_page}}",
            "user_url": f"{b}/users/{{user}}",
            "user_organizations_url": f"{b}/user/orgs",
            "user_repositories_url": f"{b}/users/{{user}}/repos{{?type,page,per_page,sort}}",
            "user_search_url": f"{b}/search/users?q={{query}}{{&page,per_page,sort,order}}",
        }


def rate_limit_overview(core: Json, now: float) -> Json:
    """``GET /rate_limit``: ``core`` is live; the other buckets are GitHub's defaults, never consumed here."""

    def bucket(name: str, limit: int, window: int = 3600) -> Json:
        return {"limit": limit, "used": 0, "remaining": limit, "reset": int(now) + window, "resource": name}

    resources = {
        "core": core,
        "search": bucket("search", 30, 60),
        "graphql": bucket("graphql", 5000),
        "integration_manifest": bucket("integration_manifest", 5000),
        "source_import": bucket("source_import", 100, 60),
        "code_scanning_upload": bucket("code_scanning_upload", 1000),
        "code_scanning_autofix": bucket("code_scanning_autofix", 10, 60),
        "actions_runner_registration": bucket("actions_runner_registration", 10000),
        "scim": bucket("scim", 15000),
        "dependency_snapshots": bucket("dependency_snapshots", 100, 60),
        "dependency_sbom": bucket("dependency_sbom", 100),
        "audit_log": bucket("audit_log", 1750),
        "audit_log_streaming": bucket("audit_log_streaming", 15),
        "code_search": bucket("code_search", 10, 60),
    }
    return {"resources": resources, "rate": core}
