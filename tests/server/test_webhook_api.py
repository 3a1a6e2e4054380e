"""/v1/admin/webhooks and /v1/changes over HTTP (SQLite and PostgreSQL): answers,
problems for bad input, and the feed's paging and cursor."""

from __future__ import annotations

import json
import uuid

from server_records import NUMBER, consent
from server_support import Api

from consentdesk.domain.model import ConsentState, to_jsonable


def test_endpoint_lifecycle_over_http(api: Api) -> None:
    with api.client("adam") as admin:
        made = admin.post(
            "/v1/admin/webhooks",
            json={"url": "https://crm.example.org/h", "events": ["request.changed"]},
        )
        assert made.status_code == 201, made.text
        endpoint = made.json()
        assert endpoint["secret"].startswith("whsec_") and endpoint["enabled"] is True
        listed = {e["id"]: e for e in admin.get("/v1/admin/webhooks").json()}
        assert list(listed) == [endpoint["id"]]
        assert "secret" not in listed[endpoint["id"]]
        assert listed[endpoint["id"]]["include_numbers"] is False

        base = f"/v1/admin/webhooks/{endpoint['id']}"
        rotated = admin.post(f"{base}/rotate-secret").json()
        assert rotated["secret"] not in (endpoint["secret"], "")
        assert admin.post(f"{base}/disable").json()["enabled"] is False
        assert admin.post(f"{base}/enable").json()["enabled"] is True
        assert admin.post(f"{base}/replay").json() == {"replayed": 0}
        assert admin.get("/v1/admin/webhooks/dead-letters").status_code == 200

        for body in (
            {"url": "ftp://x.example/h", "events": ["consent.changed"]},
            {"url": "https://x.example/h", "events": ["consent.deleted"]},
            {"url": "https://x.example/h", "events": "consent.changed"},
            {"url": "https://x.example/h", "events": ["consent.changed"], "extra": 1},
            [],
        ):
            answer = admin.post("/v1/admin/webhooks", json=body)
            assert answer.status_code == 422, (body, answer.text)
        assert admin.post("/v1/admin/webhooks", content=b"{").status_code == 422
        assert admin.post(f"{base}/replay", json={"ids": ["1"]}).status_code == 422
        missing = f"/v1/admin/webhooks/{uuid.uuid4()}"
        assert admin.post(f"{missing}/disable").status_code == 404
        assert admin.post(f"{missing}/rotate-secret").status_code == 404


def test_the_feed_pages_and_resumes(api: Api) -> None:
    with api.client("alice") as alice, api.client("adam") as admin:
        head = admin.get("/v1/changes").json()["next"]
        for state in (ConsentState.GIVEN, ConsentState.WITHDRAWN, ConsentState.GIVEN):
            record = consent(agent="alice", state=state)
            answer = alice.post("/v1/consents", content=json.dumps(to_jsonable(record)))
            assert answer.status_code == 201
        pages, after = [], head
        while True:
            page = admin.get("/v1/changes", params={"after": after, "limit": 1}).json()
            if page["next"] == after:
                break
            pages += page["changes"]
            after = page["next"]
        assert [c["data"]["state"] for c in pages] == ["given", "withdrawn", "given"]
        assert NUMBER not in json.dumps(pages)
        assert len({c["data"]["subject_id"] for c in pages}) == 1
        # Waiting with nothing new comes back empty with the same cursor.
        idle = admin.get("/v1/changes", params={"after": after, "wait": 1}).json()
        assert idle == {"changes": [], "next": after}
        for bad in ({"after": "x"}, {"wait": 61}, {"limit": 0}):
            assert admin.get("/v1/changes", params=bad).status_code == 422
