"""RFC 9457 problem details: every error the server sends has this shape."""

from __future__ import annotations

import json
from typing import Any

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:consentdesk:problem:"


class Problem(Exception):
    """An error answered as problem+json; title and detail are safe to show."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": TYPE_PREFIX + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            out["detail"] = self.detail
        if instance:
            out["instance"] = instance
        out.update(self.extra)
        return out

    def encode(self, instance: str | None = None) -> bytes:
        return json.dumps(self.body(instance), ensure_ascii=False).encode("utf-8")


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "unauthorized",
        "Sign-in required",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="consentdesk"'},
    )


def forbidden(detail: str, slug: str = "forbidden") -> Problem:
    return Problem(403, slug, "Not allowed", detail)


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not found", detail)


def conflict(detail: str, slug: str = "conflict") -> Problem:
    return Problem(409, slug, "Conflict with what is already recorded", detail)


def invalid(detail: str, errors: list[dict[str, str]] | None = None) -> Problem:
    extra: dict[str, Any] = {"errors": errors} if errors else {}
    return Problem(422, "invalid", "Invalid request", detail, **extra)


def too_large(limit: int) -> Problem:
    return Problem(413, "too-large", "Request body too large", f"the limit is {limit} bytes")


def unavailable(detail: str) -> Problem:
    return Problem(503, "unavailable", "Service unavailable", detail, headers={"Retry-After": "1"})


def internal() -> Problem:
    return Problem(500, "internal", "Internal server error", "the error has been logged")


# Problem type slugs the clients act on.
AGENT_MISMATCH = "agent-mismatch"
ACCOUNT_DISABLED = "account-disabled"
DUPLICATE_CONFLICT = "duplicate-conflict"
