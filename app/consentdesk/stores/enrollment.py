"""Enrollment: trade the one-time code a lead gave an agent for this desk's own token.

The answer's token goes straight to the OS keyring (:mod:`consentdesk.platform.secrets`)
in the caller; it is never written to a file or a log.
"""

from __future__ import annotations

import platform
from pathlib import Path

import httpx

from consentdesk import __version__
from consentdesk.domain.backend import Unavailable
from consentdesk.domain.review import Viewer, from_jsonable
from consentdesk.stores.http_backend import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    check_server_url,
    ssl_context,
)
from consentdesk.stores.http_backend import (
    _problem_error as problem_error,
)
from consentdesk.stores.http_backend import (
    _transport_error as transport_error,
)

TOKEN_PREFIX = "cdt_"
CODE_CHARS = frozenset("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")


def looks_like_code(text: str) -> bool:
    """An enrollment code (``ABCD-EFGH``, any case, spaces or dashes) rather than a token."""
    raw = "".join(ch for ch in text.upper() if ch not in " -")
    return not text.startswith(TOKEN_PREFIX) and len(raw) == 8 and set(raw) <= CODE_CHARS


def enroll(
    base_url: str,
    code: str,
    *,
    label: str | None = None,
    ca_bundle: str | Path | None = None,
    transport: httpx.BaseTransport | None = None,
) -> tuple[str, Viewer]:
    """The new token and its user for *code* (spent by this call)."""
    url = check_server_url(base_url)
    if transport is None:
        transport = httpx.HTTPTransport(verify=ssl_context(ca_bundle))
    body = {"code": code.strip(), "label": label or platform.node()[:200] or "desk"}
    with httpx.Client(
        base_url=url,
        headers={"User-Agent": f"consentdesk/{__version__}", "Accept": "application/json"},
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        transport=transport,
        follow_redirects=False,
    ) as client:
        try:
            answer = client.post("/v1/enroll", json=body)
        except httpx.TransportError as exc:
            raise transport_error(exc, url) from None
    if answer.status_code != 201:
        raise problem_error(answer)
    try:
        data = answer.json()
        return str(data["token"]), from_jsonable(Viewer, data["user"])
    except (ValueError, KeyError, TypeError):
        raise Unavailable("the team server sent an answer that is not an enrollment") from None
