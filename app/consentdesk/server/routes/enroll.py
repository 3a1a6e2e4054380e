"""Enrollment: a desk trades a one-time code from its lead for its own token.

No token is needed (that is the point); wrong codes are rate-limited for the
whole site in :mod:`consentdesk.server.tokens`.
"""

from typing import Any

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from consentdesk.server import problems, tokens, wire
from consentdesk.server.deps import Body, StoreDep
from consentdesk.server.openapi import JSON, schemas

router = APIRouter(tags=["sign-in"])

_ENROLL_BODY = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "The code, e.g. ABCD-EFGH", "maxLength": 40},
        "label": {"type": "string", "description": "The desk (host name)", "maxLength": 200},
    },
    "required": ["code"],
    "additionalProperties": False,
}
_ENROLLED = {
    "type": "object",
    "properties": {
        "token": {"type": "string"},
        "user": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "role": {"type": "string"},
                "team": {"type": ["string", "null"]},
            },
        },
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["token", "user", "expires_at"],
}


def _fields(raw: bytes) -> tuple[str, str | None]:
    data: Any = wire.parse_json(raw)
    if not isinstance(data, dict) or set(data) - {"code", "label"}:
        raise problems.invalid('send {"code": "ABCD-EFGH"} and optionally a label')
    code, label = data.get("code"), data.get("label")
    if not isinstance(code, str) or not 1 <= len(code) <= 40:
        raise problems.invalid("code: the enrollment code, as text")
    if label is not None:
        if not isinstance(label, str):
            raise problems.invalid("label: text")
        wire.check_text(label, "label")
    return code, label


@router.post(
    "/v1/enroll",
    summary="Trade a one-time enrollment code for a token (no sign-in needed)",
    openapi_extra=schemas.body_schema(_ENROLL_BODY),
    responses=schemas.answer("The desk's new token, shown once", _ENROLLED, 201),
)
async def enroll(store: StoreDep, body: Body) -> Response:
    code, label = _fields(body)
    done = await run_in_threadpool(tokens.enroll, store.engine, code, label=label)
    answer = {
        "token": done.token,
        "user": {"name": done.viewer.name, "role": str(done.viewer.role), "team": done.viewer.team},
        "expires_at": done.expires_at.isoformat() if done.expires_at else None,
    }
    return Response(wire.dumps(answer), status_code=201, media_type=JSON)
