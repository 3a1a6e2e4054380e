"""The verifiable log: signed checkpoints, inclusion and consistency proofs, cosigning desks."""

import base64
import json
import time
from typing import Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from consentdesk.domain import merkle
from consentdesk.server import log_store, problems, witness
from consentdesk.server.deps import Body, Creds, StoreDep, ok, viewer_async, viewer_of
from consentdesk.server.openapi import STRING, obj, schemas

router = APIRouter(tags=["log"])

HASHES: dict[str, Any] = {"type": "array", "items": {"type": "string", "format": "byte"}}
INTEGER: dict[str, Any] = {"type": "integer"}
NOTE_OR_NULL: dict[str, Any] = {"anyOf": [STRING, {"type": "null"}]}


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


# The newest checkpoint, reused for a moment: a proof against a checkpoint a
# second old is as good as one against the newest, and saves a query per proof.
_NEWEST_TTL_S = 1.0
_newest: tuple[float, int, str] | None = None


def _head(conn: Any, size: int | None, *, at_least: int = 0) -> tuple[int, str | None]:
    """The tree size to prove against and its signed checkpoint (if one was signed)."""
    global _newest
    if size is None:
        cached = _newest
        if cached and time.monotonic() - cached[0] < _NEWEST_TTL_S and cached[1] > at_least:
            return cached[1], cached[2]
        note = log_store.newest(conn)
        if note is not None:
            _newest = (time.monotonic(), note.checkpoint().size, note.render())
            return _newest[1], _newest[2]
        return log_store.tree_size(conn), None
    row = conn.execute(
        text("SELECT note FROM log_checkpoints WHERE size = :s"), {"s": size}
    ).first()
    if size > log_store.tree_size(conn) or size < 0:
        raise problems.not_found(f"the log has no tree of {size} entries")
    return size, None if row is None else str(row[0])


@router.get(
    "/v1/log/checkpoint",
    summary="The newest signed checkpoint of the ledger (C2SP signed note, text/plain)",
    responses={200: {"description": "The signed note", "content": {"text/plain": {}}}},
)
def checkpoint(store: StoreDep, creds: Creds) -> Response:
    viewer_of(store, creds)
    with store.engine.connect() as conn:
        note = log_store.newest(conn)
    if note is None:
        raise problems.not_found("no checkpoint is signed yet (is CONSENTDESK_LOG_KEY set?)")
    return Response(note.render(), media_type="text/plain; charset=utf-8")


@router.get(
    "/v1/log/proof/inclusion",
    summary="An entry's RFC 9162 inclusion proof, by event id or leaf index",
    responses=schemas.answer(
        "The proof",
        obj(index=INTEGER, size=INTEGER, proof=HASHES, checkpoint=NOTE_OR_NULL),
        200,
    ),
)
async def inclusion(
    store: StoreDep,
    creds: Creds,
    event_id: str | None = Query(None, description="the entry's event id"),
    index: int | None = Query(None, ge=0, description="the leaf index (entry number - 1)"),
    size: int | None = Query(None, ge=1, description="tree size (default: newest checkpoint)"),
) -> Response:
    await viewer_async(store, creds)
    if (event_id is None) == (index is None):
        raise problems.invalid("give exactly one of event_id and index")
    answer = await run_in_threadpool(_inclusion, store.engine, event_id, index, size)
    return ok(answer)


def _inclusion(
    engine: Engine, event_id: str | None, index: int | None, size: int | None
) -> dict[str, Any]:
    with engine.connect() as conn:
        if event_id is not None:
            seq = conn.execute(
                text("SELECT seq FROM entries WHERE event_id = :e"), {"e": event_id}
            ).scalar()
            if seq is None:
                raise problems.not_found(f"no entry with event id {event_id}")
            index = int(seq) - 1
        assert index is not None
        leaf, (tree, note) = index, _head(conn, size, at_least=index)
        try:
            path = log_store.prefetched(conn, lambda node: merkle.inclusion_proof(leaf, tree, node))
        except merkle.ProofError as exc:
            raise problems.not_found(str(exc)) from None
    return {"index": leaf, "size": tree, "proof": _b64(path), "checkpoint": note}


@router.get(
    "/v1/log/proof/consistency",
    summary="An RFC 9162 consistency proof between two tree sizes",
    responses=schemas.answer(
        "The proof", obj(old=INTEGER, new=INTEGER, proof=HASHES, checkpoint=NOTE_OR_NULL), 200
    ),
)
def consistency(
    store: StoreDep,
    creds: Creds,
    old: int | None = Query(None, ge=0, description="the older tree size (required)"),
    new: int | None = Query(None, ge=0, description="the newer size (default: newest)"),
) -> Response:
    viewer_of(store, creds)
    if old is None:
        raise problems.invalid("old (the older tree size) is required")
    with store.engine.connect() as conn:
        tree, note = _head(conn, new)
        try:
            path = log_store.prefetched(
                conn, lambda node: merkle.consistency_proof(old, tree, node)
            )
        except merkle.ProofError as exc:
            raise problems.invalid(str(exc)) from None
    return ok({"old": old, "new": tree, "proof": _b64(path), "checkpoint": note})


@router.post(
    "/v1/log/cosign",
    summary="Cosign a desk ledger's checkpoint that extends the one cosigned before",
    openapi_extra=schemas.body_schema(obj(checkpoint=STRING, public_key=STRING, proof=HASHES)),
    responses=schemas.answer(
        "The cosigned checkpoint", obj(checkpoint=STRING, witness_key=STRING), 200
    ),
)
async def cosign(store: StoreDep, creds: Creds, body: Body) -> Response:
    viewer = await run_in_threadpool(viewer_of, store, creds)
    try:
        document = json.loads(body)
    except ValueError:
        raise problems.invalid("the body is not JSON") from None
    if not isinstance(document, dict):
        raise problems.invalid("the body must be a JSON object")
    answer = await run_in_threadpool(
        witness.cosign_desk, store.engine, log_store.load_signer(), viewer.name, document
    )
    return ok(answer)
