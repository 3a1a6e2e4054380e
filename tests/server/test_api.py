"""The /v1 API over HTTP: identity and roles on every route, records, reads, problems.

Each test runs against a real uvicorn server on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from server_records import CATALOGUE, NUMBER, OTHER, SCRIPTS, consent, move, new_request, verify
from server_support import Api

from consentdesk.domain.model import (
    ConsentState,
    RequestStatus,
    RequestType,
    Subject,
    to_jsonable,
)
from consentdesk.domain.references import new_reference
from consentdesk.server.app import create_app
from consentdesk.server.db import make_engine

PROBLEM = "application/problem+json"

# Every route and who may use it. A new route must be added here (see
# test_route_table_is_complete), so its 401/403 behaviour is tested from day one.
EVERYONE = "every signed-in user"
REVIEWERS = "leads and admins"
ADMINS = "admins"
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/v1/me"): EVERYONE,
    ("GET", "/v1/catalogue"): EVERYONE,
    ("GET", "/v1/scripts"): EVERYONE,
    ("GET", "/v1/subjects/{e164}/status"): EVERYONE,
    ("GET", "/v1/subjects/{e164}/history"): EVERYONE,
    ("PUT", "/v1/subjects/{e164}/profile"): EVERYONE,
    ("POST", "/v1/consents"): EVERYONE,
    ("POST", "/v1/batch"): EVERYONE,
    ("POST", "/v1/requests"): EVERYONE,
    ("POST", "/v1/requests/{request_id}/changes"): EVERYONE,
    ("GET", "/v1/requests"): EVERYONE,
    ("GET", "/v1/requests/by-reference/{ref}"): EVERYONE,
    ("GET", "/v1/requests/{request_id}/events"): EVERYONE,
    ("GET", "/v1/requests/{request_id}"): EVERYONE,
    ("GET", "/v1/review/actions"): REVIEWERS,
    ("GET", "/v1/review/actions/{event_id}"): REVIEWERS,
    ("GET", "/v1/review/read-log"): REVIEWERS,
    ("GET", "/v1/review/actions/{event_id}/number"): REVIEWERS,
    ("POST", "/v1/review/flags"): REVIEWERS,
    ("GET", "/v1/review/flags"): REVIEWERS,
    ("GET", "/v1/review/integrity"): REVIEWERS,
    ("GET", "/v1/review/export"): REVIEWERS,
    ("GET", "/v1/review/people"): REVIEWERS,
    ("POST", "/v1/review/read-log"): REVIEWERS,
    ("GET", "/v1/review/figures"): REVIEWERS,
    ("GET", "/v1/incidents"): EVERYONE,
    ("GET", "/v1/incidents/events"): EVERYONE,
    ("POST", "/v1/incidents"): REVIEWERS,
    ("POST", "/v1/incidents/{incident_id}/notify"): REVIEWERS,
    ("POST", "/v1/incidents/{incident_id}/close"): REVIEWERS,
    ("POST", "/v1/incidents/{incident_id}/calls"): EVERYONE,
    ("GET", "/v1/incidents/{incident_id}/calls"): REVIEWERS,
    ("GET", "/v1/incidents/{incident_id}/calls/per-hour"): REVIEWERS,
    ("GET", "/v1/log/checkpoint"): EVERYONE,
    ("GET", "/v1/log/proof/inclusion"): EVERYONE,
    ("GET", "/v1/log/proof/consistency"): EVERYONE,
    ("POST", "/v1/log/cosign"): EVERYONE,
    ("GET", "/v1/changes"): ADMINS,
    ("GET", "/v1/admin/webhooks"): ADMINS,
    ("POST", "/v1/admin/webhooks"): ADMINS,
    ("POST", "/v1/admin/webhooks/{endpoint_id}/disable"): ADMINS,
    ("POST", "/v1/admin/webhooks/{endpoint_id}/enable"): ADMINS,
    ("POST", "/v1/admin/webhooks/{endpoint_id}/rotate-secret"): ADMINS,
    ("GET", "/v1/admin/webhooks/dead-letters"): ADMINS,
    ("POST", "/v1/admin/webhooks/{endpoint_id}/replay"): ADMINS,
}
PUBLIC = {"/healthz", "/readyz", "/metrics", "/v1/enroll", "/v1/openapi.json", "/v1/docs"}


def concrete(path: str) -> str:
    return (
        path.replace("{e164}", NUMBER)
        .replace("{request_id}", str(uuid.uuid4()))
        .replace("{event_id}", str(uuid.uuid4()))
        .replace("{incident_id}", str(uuid.uuid4()))
        .replace("{ref}", "RQ-2345-6789-ABCD")
        .replace("{endpoint_id}", str(uuid.uuid4()))
    )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["type"].startswith("urn:consentdesk:problem:")
    return body


def post(client: httpx.Client, path: str, record: Any) -> httpx.Response:
    return client.post(path, content=json.dumps(to_jsonable(record)))


def snapshot(api: Api) -> tuple[int, ...]:
    return tuple(api.count(t) for t in ("entries", "requests", "subjects"))


# --- identity and roles on every route ------------------------------------------------


def test_route_table_is_complete() -> None:
    app = create_app(make_engine("sqlite://"), catalogue=CATALOGUE, scripts=SCRIPTS)
    # Read from the published document: it lists every route the app serves.
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path not in PUBLIC
    }
    assert found == set(ROUTES)


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer cdt_not-a-real-token", "Basic YWxpY2U6c2VjcmV0", "Bearer"],
    ids=["none", "unknown-token", "basic", "empty"],
)
def test_every_route_needs_a_valid_token(
    api: Api, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with api.client() as client:
        response = client.request(method, concrete(path), headers=headers, content=b"{}")
    body = assert_problem(response, 401)
    assert body["title"] == "Sign-in required"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_every_route_refuses_a_disabled_account(api: Api, method: str, path: str) -> None:
    with api.client("dora") as client:
        response = client.request(method, concrete(path), content=b"{}")
    assert assert_problem(response, 403)["type"].endswith(":account-disabled")


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in ROUTES.items() if v == REVIEWERS))
def test_agents_cannot_open_the_review(api: Api, method: str, path: str) -> None:
    with api.client("alice") as client:
        response = client.request(method, concrete(path))
    assert assert_problem(response, 403)["title"] == "Not allowed"


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in ROUTES.items() if v == ADMINS))
@pytest.mark.parametrize("user", ["alice", "lena"])
def test_only_admins_manage_integrations(api: Api, method: str, path: str, user: str) -> None:
    with api.client(user) as client:
        response = client.request(method, concrete(path), content=b"{}")
    assert assert_problem(response, 403)["title"] == "Not allowed"


@pytest.mark.parametrize("user", ["lena", "adam"])
def test_leads_and_admins_open_the_review(api: Api, user: str) -> None:
    with api.client(user) as client:
        assert client.get("/v1/review/actions").status_code == 200
        assert client.get("/v1/review/read-log").status_code == 200


def test_me_names_the_token_owner(api: Api) -> None:
    with api.client("lena") as client:
        assert client.get("/v1/me").json() == {"name": "lena", "role": "lead", "team": "red"}


def test_health_needs_no_token(api: Api) -> None:
    with api.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_reports_an_unreachable_database() -> None:
    from server_support import ThreadServer

    engine = make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    app = create_app(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
    with ThreadServer(app) as server, httpx.Client(base_url=server.url) as client:
        body = assert_problem(client.get("/readyz"), 503)
        assert "cannot reach the database" in body["detail"]
        assert client.get("/healthz").status_code == 200


# --- consent events -----------------------------------------------------------------


def test_capture_is_idempotent_by_event_id(api: Api) -> None:
    event = consent(agent="alice")
    with api.client("alice") as client:
        first = post(client, "/v1/consents", event)
        again = post(client, "/v1/consents", event)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json() | {"duplicate": True} == again.json()
    assert first.json()["seq"] == 1 and first.json()["duplicate"] is False
    assert api.count("entries") == 1


def test_same_event_id_with_other_content_is_a_conflict(api: Api) -> None:
    event = consent(agent="alice")
    with api.client("alice") as client:
        post(client, "/v1/consents", event)
        before = snapshot(api)
        changed = to_jsonable(event) | {"state": "refused"}
        response = client.post("/v1/consents", content=json.dumps(changed))
    assert assert_problem(response, 409)["type"].endswith(":duplicate-conflict")
    assert snapshot(api) == before


def test_a_token_records_only_in_its_own_name(api: Api) -> None:
    with api.client("alice") as client:
        response = post(client, "/v1/consents", consent(agent="bert"))
    assert assert_problem(response, 403)["type"].endswith(":agent-mismatch")
    assert api.count("entries") == 0


def test_status_and_history_show_captures(api: Api) -> None:
    given = consent(agent="alice")
    withdrawn = consent(agent="alice", state=ConsentState.WITHDRAWN)
    with api.client("alice") as client:
        post(client, "/v1/consents", given)
        post(client, "/v1/consents", withdrawn)
        post(client, "/v1/consents", consent(OTHER, agent="alice"))
        status = client.get(f"/v1/subjects/{NUMBER}/status").json()
        history = client.get(f"/v1/subjects/{NUMBER}/history").json()
    cell = next(
        c for c in status["cells"] if c["purpose"] == "marketing-offers" and c["channel"] == "phone"
    )
    assert cell["state"] == "withdrawn"
    assert [e["event_id"] for e in history] == [str(given.event_id), str(withdrawn.event_id)]
    assert all(
        c["state"] == "unknown" for c in status["cells"] if c["purpose"] != "marketing-offers"
    )


def test_a_correction_voids_the_corrected_event(api: Api) -> None:
    given = consent(agent="alice")
    void = consent(
        agent="alice", state=ConsentState.VOID, corrects=given.event_id, reason="wrong caller"
    )
    with api.client("alice") as client:
        post(client, "/v1/consents", given)
        assert post(client, "/v1/consents", void).status_code == 201
        cells = client.get(f"/v1/subjects/{NUMBER}/status").json()["cells"]
        stray = consent(
            OTHER,
            agent="alice",
            state=ConsentState.VOID,
            corrects=given.event_id,
            reason="other subject",
        )
        response = post(client, "/v1/consents", stray)
    assert all(c["state"] == "unknown" for c in cells)
    assert "correction" in assert_problem(response, 422)["detail"]


def test_chain_verifies_after_writes(api: Api) -> None:
    from consentdesk.server.store import Store

    with api.client("alice") as client:
        for _ in range(5):
            post(client, "/v1/consents", consent(agent="alice"))
        post(client, "/v1/requests", new_request(agent="alice"))
    report = Store(api.engine, catalogue=CATALOGUE, scripts=SCRIPTS).verify()
    assert report.ok and report.checked == 6


def test_a_batch_is_appended_in_order_and_answered_per_record(api: Api) -> None:
    first = consent(agent="alice")
    new = new_request(agent="alice")
    foreign = consent(agent="bert")
    unknown = to_jsonable(consent(agent="alice")) | {"purpose": "telepathy"}
    records = [
        {"kind": "consent", "record": to_jsonable(first)},
        {"kind": "request", "record": to_jsonable(new)},
        {"kind": "request-change", "record": to_jsonable(verify(new.request_id, agent="alice"))},
        {"kind": "consent", "record": to_jsonable(first)},
        {"kind": "consent", "record": to_jsonable(foreign)},
        {"kind": "consent", "record": unknown},
        {"kind": "telepathy", "record": {}},
        {"kind": "consent", "record": to_jsonable(first) | {"state": "refused"}},
    ]
    with api.client("alice") as client:
        response = client.post("/v1/batch", content=json.dumps({"records": records}))
        history = client.get(f"/v1/subjects/{NUMBER}/history").json()
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 201, 200, 403, 422, 422, 409]
    assert results[0]["body"]["seq"] == 1 and results[3]["body"] == results[0]["body"] | {
        "duplicate": True
    }
    assert results[2]["body"]["status"] == "verifying"
    assert results[4]["body"]["type"].endswith(":agent-mismatch")
    assert [e["event_id"] for e in history] == [str(first.event_id)]
    assert api.count("entries") == 3


@pytest.mark.parametrize(
    "body",
    [{"records": "all"}, {"records": [], "extra": 1}, {"records": [{}] * 101}],
    ids=["not-a-list", "extra-key", "too-many"],
)
def test_a_malformed_batch_is_refused_whole(api: Api, body: Any) -> None:
    with api.client("alice") as client:
        assert_problem(client.post("/v1/batch", content=json.dumps(body)), 422)


# --- privacy requests -------------------------------------------------------------------


def test_request_lifecycle(api: Api) -> None:
    new = new_request(agent="alice", type=RequestType.ERASURE)
    rid = new.request_id
    with api.client("alice") as client:
        created = post(client, "/v1/requests", new)
        repeat = post(client, "/v1/requests", new)
        assert created.status_code == 201 and repeat.status_code == 200
        assert created.json() == repeat.json()
        assert created.json()["status"] == "received"
        assert (
            post(client, f"/v1/requests/{rid}/changes", verify(rid, agent="alice")).status_code
            == 201
        )
        moved = post(
            client,
            f"/v1/requests/{rid}/changes",
            move(rid, RequestStatus.IN_PROGRESS, agent="alice"),
        ).json()
        assert moved["status"] == "in-progress" and len(moved["verifications"]) == 1
        by_ref = client.get(f"/v1/requests/by-reference/{new.reference.lower().replace('-', ' ')}")
        assert by_ref.json() == moved
        assert client.get(f"/v1/requests/{rid}").json() == moved
        events = client.get(f"/v1/requests/{rid}/events").json()
        assert events["created"] == to_jsonable(new) and len(events["changes"]) == 2
        assert [
            r["request_id"] for r in client.get("/v1/requests", params={"number": NUMBER}).json()
        ] == [str(rid)]
        assert client.get("/v1/requests", params={"number": OTHER}).json() == []
        done = post(
            client, f"/v1/requests/{rid}/changes", move(rid, RequestStatus.COMPLETED, agent="alice")
        ).json()
        assert done["status"] == "completed"
        assert client.get("/v1/requests", params={"open": "true"}).json() == []
        assert len(client.get("/v1/requests").json()) == 1


def test_an_illegal_request_move_changes_nothing(api: Api) -> None:
    new = new_request(agent="alice")
    with api.client("alice") as client:
        post(client, "/v1/requests", new)
        before = snapshot(api)
        response = post(
            client,
            f"/v1/requests/{new.request_id}/changes",
            move(new.request_id, RequestStatus.COMPLETED, agent="alice"),
        )
    assert "cannot move" in assert_problem(response, 422)["detail"]
    assert snapshot(api) == before


def test_unknown_requests_are_404(api: Api) -> None:
    rid = uuid.uuid4()
    with api.client("alice") as client:
        assert_problem(client.get(f"/v1/requests/{rid}"), 404)
        assert_problem(client.get(f"/v1/requests/by-reference/{new_reference()}"), 404)
        assert_problem(client.get("/v1/requests/by-reference/RQ-2345-6789-ABCD"), 422)
        response = post(
            client, f"/v1/requests/{rid}/changes", move(rid, RequestStatus.WITHDRAWN, agent="alice")
        )
        assert_problem(response, 404)


def test_a_change_names_the_request_in_its_path(api: Api) -> None:
    new = new_request(agent="alice")
    with api.client("alice") as client:
        post(client, "/v1/requests", new)
        response = post(
            client,
            f"/v1/requests/{uuid.uuid4()}/changes",
            move(new.request_id, RequestStatus.WITHDRAWN, agent="alice"),
        )
    assert_problem(response, 422)


def test_a_reference_or_request_id_is_used_once(api: Api) -> None:
    first = new_request(agent="alice")
    same_ref = new_request(agent="alice")
    same_ref = type(same_ref)(**{**to_dict(same_ref), "reference": first.reference})
    with api.client("alice") as client:
        post(client, "/v1/requests", first)
        assert_problem(post(client, "/v1/requests", same_ref), 409)
    assert api.count("requests") == 1


def to_dict(record: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


# --- subjects --------------------------------------------------------------------------


def test_profile_is_reference_data(api: Api) -> None:
    with api.client("alice") as client:
        first = Subject(NUMBER, customer_ref="C-1001", display_name="Erika Mustermann")
        assert (
            client.put(
                f"/v1/subjects/{NUMBER}/profile", content=json.dumps(to_jsonable(first))
            ).status_code
            == 200
        )
        second = Subject(NUMBER, customer_ref="C-1001", display_name="Erika Musterfrau")
        client.put(f"/v1/subjects/{NUMBER}/profile", content=json.dumps(to_jsonable(second)))
        status = client.get(f"/v1/subjects/{NUMBER}/status").json()
        wrong = client.put(f"/v1/subjects/{OTHER}/profile", content=json.dumps(to_jsonable(first)))
    assert status["subject"] == to_jsonable(second)
    assert_problem(wrong, 422)


def test_an_unknown_subject_has_every_cell_unknown(api: Api) -> None:
    with api.client("alice") as client:
        status = client.get(f"/v1/subjects/{OTHER}/status").json()
    expected = sum(len(p.channels) for p in CATALOGUE)
    assert len(status["cells"]) == expected
    assert {c["state"] for c in status["cells"]} == {"unknown"} and status["requests"] == []


@pytest.mark.parametrize(
    "number", ["015112345678", "+49", "+4915112345678x", "+999123456789", "%2B49151"]
)
def test_an_invalid_number_is_a_clear_422(api: Api, number: str) -> None:
    with api.client("alice") as client:
        body = assert_problem(client.get(f"/v1/subjects/{number}/status"), 422)
    assert body["detail"]
    assert api.count("read_log") == 0


# --- reference data ---------------------------------------------------------------------


def test_catalogue_and_scripts_are_the_published_ones(api: Api) -> None:
    with api.client("bert") as client:
        assert client.get("/v1/catalogue").json() == to_jsonable(CATALOGUE)
        assert client.get("/v1/scripts").json() == to_jsonable(SCRIPTS)


# --- the read-access log ----------------------------------------------------------------


def test_reads_are_logged_and_leads_see_their_team(api: Api) -> None:
    with api.client("alice", **{"X-Call-Id": "call-42"}) as alice:
        alice.get(f"/v1/subjects/{NUMBER}/status")
        alice.get(f"/v1/subjects/{NUMBER}/history")
    with api.client("bert") as bert:
        bert.get(f"/v1/subjects/{OTHER}/status")
    with api.client("lena") as lena:
        team = lena.get("/v1/review/read-log").json()
        mine = lena.get("/v1/review/read-log", params={"subject": NUMBER, "limit": 1}).json()
    with api.client("adam") as adam:
        everyone = adam.get("/v1/review/read-log").json()
        older = adam.get("/v1/review/read-log", params={"before": everyone[0]["seq"]}).json()
    assert [(e["read"]["reader"], e["read"]["what"], e["read"]["call_id"]) for e in team] == [
        ("alice", "detail", "call-42"),
        ("alice", "status", "call-42"),
    ]
    assert all(e["read"]["subject"] == NUMBER for e in team)
    assert len(mine) == 1
    assert {e["read"]["reader"] for e in everyone} == {"alice", "bert"}
    assert older == everyone[1:]


def test_a_call_id_is_held_to_the_text_limits(api: Api) -> None:
    with api.client("alice", **{"X-Call-Id": "c" * 201}) as client:
        assert_problem(client.get(f"/v1/subjects/{NUMBER}/status"), 422)
    assert api.count("read_log") == 0


# --- review --------------------------------------------------------------------------------


def test_review_lists_team_actions_masked_and_paged(api: Api) -> None:
    with api.client("alice") as alice:
        for _ in range(3):
            post(alice, "/v1/consents", consent(agent="alice"))
        post(alice, "/v1/requests", new_request(agent="alice"))
    with api.client("bert") as bert:
        post(bert, "/v1/consents", consent(OTHER, agent="bert"))
    with api.client("lena") as lena:
        first = lena.get("/v1/review/actions", params={"limit": 2}).json()
        second = lena.get("/v1/review/actions", params={"limit": 2, "after": first["next"]}).json()
        third = lena.get("/v1/review/actions", params={"limit": 2, "after": second["next"]}).json()
        consents = lena.get("/v1/review/actions", params={"action": "consent"}).json()
        foreign = lena.get("/v1/review/actions", params={"team": "blue"})
        detail = lena.get(f"/v1/review/actions/{first['rows'][0]['event_id']}").json()
        blue_event = None
    with api.client("adam") as adam:
        everything = adam.get("/v1/review/actions").json()
        blue_event = next(r for r in everything["rows"] if r["agent"] == "bert")["event_id"]
        by_agent = adam.get("/v1/review/actions", params={"agent": "bert"}).json()
    with api.client("lena") as lena:
        hidden = lena.get(f"/v1/review/actions/{blue_event}")
        log = lena.get("/v1/review/read-log").json()
    rows = first["rows"] + second["rows"]
    assert [r["seq"] for r in rows] == [4, 3, 2, 1] and third["rows"] == []
    assert {r["agent"] for r in rows} == {"alice"}
    assert all(re.fullmatch(r"•+678", r["subject"]) for r in rows)
    assert rows[0]["kind"] == "request" and rows[1]["kind"] == "consent"
    assert len(consents["rows"]) == 3
    assert_problem(foreign, 403)
    assert detail["row"]["subject"] == NUMBER and detail["record"]["subject"] == NUMBER
    assert len(everything["rows"]) == 5 and len(by_agent["rows"]) == 1
    assert_problem(hidden, 404)
    assert log[0]["read"]["what"] == "detail" and log[0]["read"]["about"] == rows[0]["event_id"]


def test_review_rejects_bad_paging(api: Api) -> None:
    with api.client("adam") as client:
        assert_problem(client.get("/v1/review/actions", params={"limit": 0}), 422)
        assert_problem(client.get("/v1/review/actions", params={"after": "!!"}), 422)
        assert_problem(
            client.get("/v1/review/actions", params={"since": "2025-01-01T00:00:00"}), 422
        )
        assert_problem(client.get("/v1/review/actions", params={"sort": "subject"}), 422)


# --- problems for everything that goes wrong ------------------------------------------------


def test_unknown_route_and_method_are_problems(api: Api) -> None:
    with api.client("alice") as client:
        assert assert_problem(client.get("/v1/nothing-here"), 404)["title"] == "Not Found"
        assert assert_problem(client.delete("/v1/consents"), 405)["title"] == "Method Not Allowed"


def test_a_crash_is_a_500_problem_without_details(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consentdesk.server.store import Store

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail +4915112345678")

    monkeypatch.setattr(Store, "history_json", boom)
    with api.client("alice") as client:
        body = assert_problem(client.get(f"/v1/subjects/{NUMBER}/history"), 500)
    assert "secret" not in json.dumps(body) and body["title"] == "Internal server error"


def test_malformed_json_is_400(api: Api) -> None:
    with api.client("alice") as client:
        for raw in (b"{not json", b"", b"\xff\xfe", b"[" * 100_00):
            assert (
                assert_problem(client.post("/v1/consents", content=raw), 400)["title"]
                == "Malformed JSON"
            )
    assert api.count("entries") == 0


@pytest.mark.parametrize("route", ["/v1/consents", "/v1/requests"])
def test_an_oversized_body_is_413_before_parsing(api: Api, route: str) -> None:
    big = b'{"note": "' + b"x" * (70 * 1024) + b'"}'
    with api.client("alice") as client:
        declared = client.post(route, content=big)

        def chunks() -> Any:
            for i in range(0, len(big), 4096):
                yield big[i : i + 4096]

        chunked = client.post(route, content=chunks())
    assert assert_problem(declared, 413)["title"] == "Request body too large"
    assert "transfer-encoding" not in declared.request.headers
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert_problem(chunked, 413)
    assert api.count("entries") == 0


def test_an_unknown_purpose_is_refused(api: Api) -> None:
    body = to_jsonable(consent(agent="alice")) | {"purpose": "telepathy"}
    with api.client("alice") as client:
        response = client.post("/v1/consents", content=json.dumps(body))
    assert "telepathy" in assert_problem(response, 422)["detail"]
    assert api.count("entries") == 0


def test_a_notice_must_hash_to_its_text(api: Api) -> None:
    body = to_jsonable(consent(agent="alice"))
    body["notice"]["text"] += " (edited afterwards)"
    with api.client("alice") as client:
        response = client.post("/v1/consents", content=json.dumps(body))
    assert "sha256" in assert_problem(response, 422)["detail"]


WRONG_TYPES = [
    ("subject", 4915112345678),
    ("purpose", ["marketing-offers"]),
    ("channel", 1),
    ("state", True),
    ("at", 1700000000),
    ("event_id", 12),
    ("notice", "read to the customer"),
    ("agent", None),
    ("call_id", {"id": 1}),
    ("valid_until", False),
    ("surprise", "extra field"),
]


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_wrong_types_are_422_with_the_field_named(api: Api, field: str, value: Any) -> None:
    body = to_jsonable(consent(agent="alice")) | {field: value}
    with api.client("alice") as client:
        response = client.post("/v1/consents", content=json.dumps(body))
    problem = assert_problem(response, 422)
    assert field in {e["field"] for e in problem["errors"]}
    assert api.count("entries") == 0


@pytest.mark.parametrize("body", [[], "text", 42, None], ids=["list", "string", "number", "null"])
def test_a_body_that_is_not_an_object_is_422(api: Api, body: Any) -> None:
    with api.client("alice") as client:
        assert_problem(client.post("/v1/requests", content=json.dumps(body)), 422)


SQL_META = "'; DROP TABLE entries; -- \" \\ %_ ) OR 1=1 /*"
LONG_UNICODE = "Ünïcødé 𝔘 🙂 " * 1900  # ~24,700 characters, under the byte limit


def _text_fields(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _text_fields(v, f"{path}.{k}" if path else k)]
    return [path] if isinstance(value, str) else []


def _set(body: dict[str, Any], path: str, value: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        body = body[key]
    body[last] = value


def _records() -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, route, body) for each record type the API accepts, all text fields filled."""
    event = to_jsonable(consent(agent="alice"))
    event.update(recording_ref="rec-1")
    new = to_jsonable(new_request(agent="alice", note="caller asked twice"))
    new["verification"] = to_jsonable(verify(uuid.uuid4(), agent="alice").verification)
    profile = to_jsonable(Subject(NUMBER, customer_ref="C-1", display_name="Erika"))
    return [
        ("consent", "/v1/consents", event),
        ("request", "/v1/requests", new),
        ("profile", f"/v1/subjects/{NUMBER}/profile", profile),
    ]


BAD_TEXT_CASES = [
    (kind, route, body, field, payload)
    for kind, route, body in _records()
    for field in _text_fields(body)
    for payload in (SQL_META, LONG_UNICODE)
]


@pytest.mark.parametrize(
    ("kind", "route", "body", "field", "payload"),
    BAD_TEXT_CASES,
    ids=[f"{c[0]}-{c[3]}-{'sql' if c[4] == SQL_META else 'long'}" for c in BAD_TEXT_CASES],
)
def test_hostile_text_in_every_field(
    api: Api, kind: str, route: str, body: dict[str, Any], field: str, payload: str
) -> None:
    """Refused with a 4xx problem and nothing written, or (free text) kept verbatim."""
    body = json.loads(json.dumps(body))
    _set(body, field, payload)
    if field == "notice.text":  # keep the hash honest so the text itself is what is judged
        import hashlib

        body["notice"]["sha256"] = hashlib.sha256(payload.encode()).hexdigest()
    before = snapshot(api)
    with api.client("alice") as client:
        method = client.put if kind == "profile" else client.post
        response = method(route, content=json.dumps(body, ensure_ascii=False).encode())
        if response.status_code >= 400:
            assert 400 <= response.status_code < 500
            assert_problem(response, response.status_code)
            assert snapshot(api) == before
            return
        assert response.status_code in (200, 201), response.text
        stored = _read_back(client, kind, body)
    assert _get(stored, field) == payload
    assert payload == SQL_META  # text this long is never stored


def _read_back(client: httpx.Client, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    if kind == "consent":
        history = client.get(f"/v1/subjects/{body['subject']}/history").json()
        return next(e for e in history if e["event_id"] == body["event_id"])
    if kind == "request":
        return client.get(f"/v1/requests/{body['request_id']}/events").json()["created"]
    status = client.get(f"/v1/subjects/{body['number']}/status").json()
    return status["subject"]


def _get(body: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        body = body[key]
    return body


# --- the committed OpenAPI document ----------------------------------------------------------


def test_openapi_document_is_committed_and_current() -> None:
    from server_support import REPO

    app = create_app(make_engine("sqlite://"), catalogue=CATALOGUE, scripts=SCRIPTS)
    committed = json.loads((REPO / "resources" / "openapi.json").read_text(encoding="utf-8"))
    assert committed == app.openapi(), (
        "resources/openapi.json is stale: regenerate it with "
        "`consentdesk serve --openapi > resources/openapi.json`"
    )


def test_openapi_is_served(api: Api) -> None:
    with api.client() as client:
        doc = client.get("/v1/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert doc["paths"]["/v1/consents"]["post"]["requestBody"]["content"]["application/json"]
    assert "ConsentEvent" in doc["components"]["schemas"]
