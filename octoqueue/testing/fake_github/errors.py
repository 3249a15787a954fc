"""GitHub's error responses: ``{"message", "documentation_url", "status"}`` plus ``errors`` for validation."""

from __future__ import annotations

from typing import Any

DOCS_ROOT = "https://docs.github.com/rest"


class GitHubError(Exception):
    """An error the emulator answers with, shaped as GitHub shapes it.

    ``documentation_url`` defaults to the endpoint's own documentation page (filled in by the request
    pipeline), as GitHub links each error to the endpoint that raised it.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        documentation_url: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.errors = errors
        self.documentation_url = documentation_url
        self.headers = headers or {}

    def body(self, endpoint_docs: str = DOCS_ROOT) -> dict[str, Any]:
        """The JSON body GitHub sends for this error."""
        out: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            out["errors"] = self.errors
        out["documentation_url"] = self.documentation_url or endpoint_docs
        out["status"] = str(self.status)
        return out


def not_found(message: str = "Not Found") -> GitHubError:
    """404, also what GitHub answers for resources the token may not see."""
    return GitHubError(404, message)


def validation_failed(resource: str, field: str, code: str, message: str | None = None) -> GitHubError:
    """422 "Validation Failed" with one entry in ``errors`` (GitHub omits ``message`` for coded errors)."""
    error: dict[str, Any] = {"resource": resource, "code": code, "field": field}
    if message is not None:
        error["message"] = message
    return GitHubError(422, "Validation Failed", errors=[error])


def invalid_request(detail: str) -> GitHubError:
    """422 for a body that fails GitHub's JSON-schema check (wrong type, missing required key)."""
    return GitHubError(422, f"Invalid request.\n\n{detail}")


def too_long(resource: str, field: str, maximum: int) -> GitHubError:
    """422 for an over-long title/body: GitHub's ``custom`` validation error."""
    return validation_failed(resource, field, "custom", f"{field} is too long (maximum is {maximum} characters)")
