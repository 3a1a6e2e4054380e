"""The review, flag and incident routes over raw HTTP: what they refuse, and how.

Each test runs against a real uvicorn server on SQLite and on PostgreSQL.
Roles per route (401/403) are covered by test_api's route table.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
from server_records import NUMBER, consent
from server_support import Api

from consentdesk.domain.incident import AuthorityNotified, CallTag, IncidentOpened
from consentdesk.domain.model import to_jsonable, utcnow
from consentdesk.domain.review import raise_flag

PROBLEM = "application/problem+json"


def post(client: httpx.Client, path: str, record: Any) -> httpx.Response:
    return client.post(path, content=json.dumps(to_jsonable(record)))


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("urn:consentdesk:problem:")
    return body


def opened(by: str = "lena") -> IncidentOpened:
    return IncidentOpened(
        incident_id=uuid.uuid4(),
        title="Offers list sent to a wrong address",
        what_happened="An export left the building by email.",
        aware_at=utcnow() - timedelta(hours=1),
        purposes=("marketing-offers",),
        regions=("DE",),
        script="Thank you for calling about the email you received.",
        by=by,
    )


def test_review_records_join_the_hash_chain_not_the_action_list(api: Api) -> None:
    event = consent(agent="alice")
    with api.client("alice") as alice:
        assert post(alice, "/v1/consents", event).status_code == 201
    with api.client("lena") as lena:
        note = opened()
        assert post(lena, "/v1/incidents", note).status_code == 201
        assert post(lena, "/v1/incidents", note).status_code == 200  # a resend
        flag = raise_flag(event.event_id, "purpose not read out", by="lena")
        assert post(lena, "/v1/review/flags", flag).status_code == 201
        assert post(lena, "/v1/review/flags", flag).status_code == 200
        rows = lena.get("/v1/review/actions").json()["rows"]
        assert [(r["event_id"], r["flagged"]) for r in rows] == [(str(event.event_id), True)]
        assert lena.get("/v1/review/integrity").json()["checked"] == 3
    assert api.count("entries") == 3


def test_refusals_are_problems_and_write_nothing(api: Api) -> None:
    event = consent(agent="alice")
    with api.client("alice") as alice:
        assert post(alice, "/v1/consents", event).status_code == 201
    before = api.count("entries")
    note = opened()
    with api.client("lena") as lena:
        # a flag on no action, in another's name, or without a comment
        problem(post(lena, "/v1/review/flags", raise_flag(uuid.uuid4(), "x", by="lena")), 404)
        body = problem(
            post(lena, "/v1/review/flags", raise_flag(event.event_id, "x", by="adam")), 403
        )
        assert body["type"].endswith(":agent-mismatch")
        bad = to_jsonable(raise_flag(event.event_id, "x", by="lena"))
        bad["comment"] = " "
        problem(lena.post("/v1/review/flags", content=json.dumps(bad)), 422)
        # an incident record on the wrong route, or naming another incident
        notify = AuthorityNotified(note.incident_id, utcnow(), "BfDI", "lena")
        problem(post(lena, "/v1/incidents", notify), 422)
        problem(post(lena, f"/v1/incidents/{uuid.uuid4()}/notify", notify), 422)
        problem(post(lena, f"/v1/incidents/{note.incident_id}/notify", notify), 422)  # none yet
        # per-hour counts and figures hold their bounds
        path = f"/v1/incidents/{note.incident_id}/calls/per-hour"
        problem(lena.get(path, params={"since": "2025-01-01T00:00:00+00:00"}), 422)
        problem(lena.get("/v1/review/figures", params={"first": "2025-01-01"}), 422)
        edges = ["2025-01-02T00:00:00+00:00", "2025-01-01T00:00:00+00:00"]
        problem(lena.get("/v1/review/figures", params={"first": "2025-01-01", "edge": edges}), 422)
    with api.client("alice") as alice:
        tag = CallTag(note.incident_id, "call-1", "alice")
        problem(post(alice, f"/v1/incidents/{note.incident_id}/calls", tag), 404)
        problem(post(alice, f"/v1/incidents/{uuid.uuid4()}/calls", tag), 422)
        other = CallTag(note.incident_id, "call-1", "bert")
        problem(post(alice, f"/v1/incidents/{note.incident_id}/calls", other), 403)
    assert api.count("entries") == before


def test_a_call_tagged_twice_is_one_record(api: Api) -> None:
    note = opened()
    with api.client("lena") as lena:
        assert post(lena, "/v1/incidents", note).status_code == 201
    path = f"/v1/incidents/{note.incident_id}/calls"
    with api.client("alice") as alice:
        first = post(alice, path, CallTag(note.incident_id, "call-1", "alice"))
        assert first.status_code == 201
        later = CallTag(note.incident_id, "call-1", "alice", at=utcnow() + timedelta(seconds=1))
        again = post(alice, path, later)
        assert again.status_code == 200 and again.json() == first.json()
        listed = alice.get("/v1/incidents", params={"open": "true"}).json()
        assert [i["opened"]["incident_id"] for i in listed] == [str(note.incident_id)]
    assert api.count("entries") == 2


def test_reading_a_number_and_exporting_are_logged(api: Api) -> None:
    event = consent(agent="alice")
    with api.client("alice") as alice:
        assert post(alice, "/v1/consents", event).status_code == 201
    with api.client("lena", **{"X-Call-Id": "call-5"}) as lena:
        number = lena.get(f"/v1/review/actions/{event.event_id}/number").json()
        assert number == {"number": NUMBER}
        page = lena.get("/v1/review/export").json()
        assert [r["subject"] for r in page["rows"]] == [NUMBER]
        assert page["records"] == [json.loads(json.dumps(to_jsonable(event)))]
        reads = lena.get("/v1/review/read-log").json()
    assert [(r["read"]["what"], r["read"]["call_id"]) for r in reads] == [
        ("export", "call-5"),
        ("number", "call-5"),
    ]
