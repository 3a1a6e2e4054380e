"""Admission, the same in both ledgers: only a true record gets in.

Every case of issue #10's list is sent as the wire JSON a client could send,
to the embedded ledger and to a real server (SQLite and PostgreSQL): each is
refused with the same precise reason (a 422 problem+json on the server) and
nothing is recorded. A record a desk queued before it could check it comes
back from the server as a visible "rejected" outbox item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from server_records import NUMBER, consent, new_request
from server_support import Api

from consentdesk.domain.model import (
    ConsentState,
    DomainError,
    event_from_json,
    new_request_from_json,
    to_jsonable,
    utcnow,
)
from consentdesk.stores.http_backend import HttpBackend
from consentdesk.stores.ledger import EmbeddedLedger
from consentdesk.stores.outbox import ItemKind, Outbox

AGENT = "alice"
PROBLEM = "application/problem+json"

Mutation = Callable[[dict[str, Any]], None]


def _made_up_notice(text: str, *, params: list[list[str]] | None) -> Mutation:
    def change(d: dict[str, Any]) -> None:
        notice = {
            "script_id": "consent-general",
            "version": "1",
            "language": "en",
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "text": text,
        }
        if params is not None:
            notice["params"] = params
        d["notice"] = notice

    return change


def _set(**fields: Any) -> Mutation:
    def change(d: dict[str, Any]) -> None:
        d.update(fields)

    return change


def _notice(**fields: Any) -> Mutation:
    def change(d: dict[str, Any]) -> None:
        d["notice"] = {**d["notice"], **fields}

    return change


def _altered_text(d: dict[str, Any]) -> None:
    d["notice"] = {**d["notice"], "text": d["notice"]["text"] + " (or not)"}


def _rehashed_other_values(d: dict[str, Any]) -> None:
    """Values and hash made to agree, but the text is not the rendering of them."""
    params = [[k, "Someone Else Ltd" if k == "company" else v] for k, v in d["notice"]["params"]]
    d["notice"] = {**d["notice"], "params": params}


def _at(year: int) -> Mutation:
    """Another year, with the validity the catalogue gives (730 days) kept consistent."""

    def change(d: dict[str, Any]) -> None:
        at = datetime.fromisoformat(d["at"]).replace(year=year)
        d["at"] = at.isoformat()
        d["valid_until"] = (at + timedelta(days=730)).isoformat()

    return change


# (id, mutation, the words the refusal must contain)
CASES: list[tuple[str, Mutation, str]] = [
    (
        "self-made-notice",
        _made_up_notice("Do you agree?", params=[]),
        "do not match the placeholders of script consent-general",
    ),
    (
        "self-made-notice-without-values",
        _made_up_notice("Do you agree?", params=None),
        "does not record the values",
    ),
    ("hash-not-of-text", _altered_text, "sha256 is not the hash of its text"),
    ("values-not-rendered", _rehashed_other_values, "rendered with the recorded values"),
    (
        "unknown-script",
        _notice(script_id="no-such-script", version="999"),
        "script no-such-script version 999 (en) is not published",
    ),
    (
        "client-lawful-basis",
        _set(lawful_basis="legitimate-interest"),
        "lawful basis of 'marketing-offers' is consent, not legitimate-interest",
    ),
    ("valid-until-2200", _set(valid_until="2200-01-01T00:00:00+00:00"), "valid_until must come"),
    ("valid-until-none", _set(valid_until=None), "valid_until must come from the catalogue"),
    ("at-2001", _at(2001), "is over ten years ago"),
    ("at-2099", _at(2099), "lies in the future"),
    (
        "contract-purpose",
        _set(purpose="service-updates", channel="sms", valid_until=None),
        "rests on contract, not consent",
    ),
]


def bad_record(mutate: Mutation) -> dict[str, Any]:
    record = to_jsonable(consent(agent=AGENT, now=utcnow()))
    mutate(record)
    return record


@pytest.mark.parametrize(("mutate", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_embedded_ledger_refuses(tmp_path: Path, mutate: Mutation, reason: str) -> None:
    with EmbeddedLedger(tmp_path / "ledger.sqlite3") as ledger:
        with pytest.raises(DomainError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            ledger.capture(event_from_json(bad_record(mutate)))
        assert ledger.count() == 0
        ledger.capture(consent(agent=AGENT))  # the true record gets in
        assert ledger.count() == 1


@pytest.mark.parametrize(("mutate", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_server_refuses_with_a_precise_422(api: Api, mutate: Mutation, reason: str) -> None:
    with api.client(AGENT) as client:
        response = client.post("/v1/consents", content=json.dumps(bad_record(mutate)))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        assert reason in response.json()["detail"]
        assert api.count("entries") == 0
        good = client.post("/v1/consents", content=json.dumps(to_jsonable(consent(agent=AGENT))))
        assert good.status_code == 201, good.text
        with api.client("lena") as lead:
            integrity = lead.get("/v1/review/integrity")
        assert integrity.status_code == 200 and integrity.json()["ok"], integrity.text


def test_request_notices_are_held_to_their_script(api: Api, tmp_path: Path) -> None:
    record = to_jsonable(new_request(agent=AGENT))
    record["notice"] = {**record["notice"], "text": "Your request is noted."}
    record["notice"]["sha256"] = hashlib.sha256(b"Your request is noted.").hexdigest()
    with api.client(AGENT) as client:
        response = client.post("/v1/requests", content=json.dumps(record))
    assert response.status_code == 422, response.text
    assert "rendered with the recorded values" in response.json()["detail"]
    with (
        EmbeddedLedger(tmp_path / "ledger.sqlite3") as ledger,
        pytest.raises(DomainError, match="rendered with the recorded values"),
    ):
        ledger.create_request(new_request_from_json(record))


def test_a_refused_queued_record_is_a_visible_rejected_outbox_item(
    api: Api, tmp_path: Path
) -> None:
    """A record queued before the desk could check it (e.g. by an older desk)
    is refused by the server at sync and stays in the outbox as rejected."""
    outbox = Outbox.for_server(tmp_path / "desk", api.url)
    backend = HttpBackend(api.url, api.tokens[AGENT], outbox=outbox)
    try:
        bad = event_from_json(bad_record(_set(lawful_basis="contract")))
        good = consent(agent=AGENT, state=ConsentState.REFUSED)
        for event in (bad, good):
            outbox.add(ItemKind.CONSENT, event.event_id, event, subject=NUMBER, agent=AGENT)
        report = backend.sync_once()
        assert report.error is None
        assert [item.key for item, _ in report.rejected] == [bad.event_id]
        assert "422" in report.rejected[0][1] and "lawful basis" in report.rejected[0][1]
        (kept,) = backend.rejected()
        assert kept.key == bad.event_id and "lawful basis" in (kept.last_error or "")
        assert [e.event_id for e in backend.history(NUMBER)] == [good.event_id]
        # The desk itself now refuses such a capture at once, with the same reason.
        with pytest.raises(DomainError, match="lawful basis"):
            backend.capture(bad)
    finally:
        backend.close()
