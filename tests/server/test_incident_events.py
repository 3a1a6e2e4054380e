"""Incident changes pushed by long poll: GET /v1/incidents/events?after=V.

In-process servers on SQLite and PostgreSQL, and two ``consentdesk serve``
processes on one PostgreSQL database (LISTEN/NOTIFY carries the change from
the process that recorded it to the one a desk is waiting on).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_support import Api, postgres_database, seed_users
from test_review_api import opened

from consentdesk.domain.incident import IncidentClosed
from consentdesk.domain.model import to_jsonable
from consentdesk.server import db
from consentdesk.server.incident_watch import LISTEN_RECHECK_S


def post(client: httpx.Client, path: str, record: Any) -> httpx.Response:
    return client.post(path, content=json.dumps(to_jsonable(record)))


class Waiting(threading.Thread):
    """One long poll from a desk, answered on its own thread."""

    def __init__(self, client: httpx.Client, after: int, wait: float) -> None:
        super().__init__(daemon=True)
        self.client, self.params = client, {"after": after, "wait": wait}
        self.answer: httpx.Response | None = None

    def run(self) -> None:
        self.answer = self.client.get("/v1/incidents/events", params=self.params, timeout=60)

    def version(self) -> int:
        self.join(60)
        assert self.answer is not None and self.answer.status_code == 200, self.answer
        return int(self.answer.json()["version"])


def test_a_waiting_desk_hears_of_an_incident_opened_and_closed(api: Api) -> None:
    with api.client("alice") as alice, api.client("lena") as lena:
        first = alice.get("/v1/incidents/events")  # no version yet: answered at once
        assert first.status_code == 200
        v0 = first.json()["version"]
        # Nothing changes: the hold ends with the same version.
        same = alice.get("/v1/incidents/events", params={"after": v0, "wait": 0.3})
        assert same.json() == {"version": v0}

        waiting = Waiting(alice, v0, wait=20)
        waiting.start()
        note = opened()
        assert post(lena, "/v1/incidents", note).status_code == 201
        v1 = waiting.version()  # answered by the change, not by the 20 s hold
        assert v1 > v0

        waiting = Waiting(alice, v1, wait=20)
        waiting.start()
        closed = IncidentClosed(note.incident_id, "All letters recalled.", "lena")
        assert post(lena, f"/v1/incidents/{note.incident_id}/close", closed).status_code == 201
        assert waiting.version() > v1
        assert alice.get("/v1/incidents", params={"open": "true"}).json() == []


def test_the_hold_is_bounded_and_needs_a_token(api: Api) -> None:
    with api.client() as anonymous:
        assert anonymous.get("/v1/incidents/events").status_code == 401
    with api.client("alice") as alice:
        assert alice.get("/v1/incidents/events", params={"wait": 600}).status_code == 422
        assert alice.get("/v1/incidents/events", params={"after": -1}).status_code == 422


@pytest.mark.postgres
def test_a_change_recorded_by_another_server_process_reaches_the_waiting_one(
    server_process: Any, tmp_path: Path
) -> None:
    with postgres_database() as url:
        engine = db.make_engine(url)
        db.upgrade(engine)
        tokens = seed_users(engine)
        engine.dispose()
        a, b = server_process(url), server_process(url)
        auth = {"Authorization": f"Bearer {tokens['alice']}"}
        lead = {"Authorization": f"Bearer {tokens['lena']}"}
        with (
            httpx.Client(base_url=a.url, headers=auth) as desk,
            httpx.Client(base_url=b.url, headers=lead) as other,
        ):
            v0 = desk.get("/v1/incidents/events").json()["version"]
            # Held for less than the watcher's fallback re-read: only the
            # notification can answer it with a new version in time.
            waiting = Waiting(desk, v0, wait=LISTEN_RECHECK_S * 0.6)
            waiting.start()
            assert post(other, "/v1/incidents", opened()).status_code == 201
            assert waiting.version() > v0
            a.stop()
            b.stop()
