"""The team server judges request days on the controller's calendar (its
``general.timezone`` and region), counts holidays and tracks the CCPA confirmation
clock: a real ``consentdesk serve`` process on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from server_support import ServerProcess, postgres_database, seed_users

from consentdesk.domain import capture
from consentdesk.domain.model import (
    Jurisdiction,
    NewRequest,
    RequestChange,
    RequestStatus,
    RequestType,
    to_jsonable,
)
from consentdesk.domain.references import new_reference
from consentdesk.server import db

pytestmark = pytest.mark.postgres

# UTC+14 and UTC-11: at every instant their dates differ by one day.
AHEAD, BEHIND = "Pacific/Kiritimati", "Pacific/Pago_Pago"
NUMBER = "+14155552671"


@pytest.fixture
def database() -> Iterator[tuple[str, dict[str, str]]]:
    with postgres_database("cdrules") as url:
        engine = db.make_engine(url)
        db.upgrade(engine)
        tokens = seed_users(engine)
        engine.dispose()
        yield url, tokens


@pytest.fixture
def serve(
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., ServerProcess]:
    """Start ``consentdesk serve`` with a site config naming a time zone and region."""

    def start(url: str, *, timezone: str, region: str = "US") -> ServerProcess:
        site = tmp_path / f"site-{timezone.replace('/', '-')}.toml"
        site.write_text(f'[general]\ntimezone = "{timezone}"\nregion = "{region}"\n', "utf-8")
        monkeypatch.setenv("CONSENTDESK_SITE_CONFIG", str(site))
        return server_process(url)

    return start


def post(server: ServerProcess, token: str, path: str, record: Any) -> httpx.Response:
    return httpx.post(
        server.url + path,
        content=json.dumps(to_jsonable(record)),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )


def request(t: RequestType, received: date, j: Jurisdiction = Jurisdiction.CCPA) -> NewRequest:
    return capture.privacy_request(
        subject=NUMBER,
        type=t,
        jurisdiction=j,
        agent="alice",
        received=received,
        reference=new_reference(),
        tz=ZoneInfo(AHEAD),  # the furthest-ahead zone: no received date is in its future
    )


def extend(rid: uuid.UUID) -> RequestChange:
    return RequestChange(
        request_id=rid, agent="alice", status=RequestStatus.EXTENDED, reason="a processor's data"
    )


def test_extension_on_the_last_day_is_judged_in_the_server_time_zone(
    database: tuple[str, dict[str, str]], serve: Callable[..., ServerProcess]
) -> None:
    url, tokens = database
    behind = serve(url, timezone=BEHIND)
    ahead = serve(url, timezone=AHEAD)
    today_behind = datetime.now(UTC).astimezone(ZoneInfo(BEHIND)).date()
    received = today_behind - timedelta(days=45)  # 45 calendar days: due today in Pago Pago

    in_time = request(RequestType.ERASURE, received)
    created = post(behind, tokens["alice"], "/v1/requests", in_time)
    assert created.status_code == 201, created.text
    assert created.json()["due"] == today_behind.isoformat()
    moved = post(behind, tokens["alice"], f"/v1/requests/{in_time.request_id}/changes",
                 extend(in_time.request_id))  # fmt: skip
    assert moved.status_code == 201, moved.text
    assert moved.json()["due"] == (received + timedelta(days=90)).isoformat()

    too_late = request(RequestType.ERASURE, received)
    assert post(ahead, tokens["alice"], "/v1/requests", too_late).status_code == 201
    refused = post(ahead, tokens["alice"], f"/v1/requests/{too_late.request_id}/changes",
                   extend(too_late.request_id))  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert f"must be noted by {today_behind.isoformat()}" in refused.json()["detail"]


def test_server_dates_skip_holidays_and_track_the_confirmation(
    database: tuple[str, dict[str, str]], serve: Callable[..., ServerProcess]
) -> None:
    url, tokens = database
    server = serve(url, timezone="America/Los_Angeles")
    token = tokens["alice"]
    # Received the day after Thanksgiving: 10 business days skip California holidays.
    new = request(RequestType.ACCESS, date(2024, 11, 29))
    state = post(server, token, "/v1/requests", new).json()
    assert (state["due"], state["acknowledge_by"]) == ("2025-01-13", "2024-12-13")
    assert "confirmed_at" not in state

    rid = new.request_id
    confirm = RequestChange(request_id=rid, agent="alice", confirmation="letter")
    confirmed = post(server, token, f"/v1/requests/{rid}/changes", confirm)
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json()["confirmed_how"] == "letter"
    assert confirmed.json()["status"] == "received"  # a clock of its own, not a status
    fetched = httpx.get(
        f"{server.url}/v1/requests/{rid}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert fetched["confirmed_at"] == confirmed.json()["confirmed_at"]

    twice = RequestChange(request_id=rid, agent="alice", confirmation="email")
    again = post(server, token, f"/v1/requests/{rid}/changes", twice)
    assert again.status_code == 422 and "already confirmed" in again.json()["detail"]

    gdpr = request(RequestType.ACCESS, date(2024, 11, 29), Jurisdiction.GDPR)
    assert post(server, token, "/v1/requests", gdpr).status_code == 201
    needless = RequestChange(request_id=gdpr.request_id, agent="alice", confirmation="email")
    refused = post(server, token, f"/v1/requests/{gdpr.request_id}/changes", needless)
    assert refused.status_code == 422 and "needs no confirmation" in refused.json()["detail"]
