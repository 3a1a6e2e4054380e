"""Review, QA flags and incident mode through the HTTP clients, against real servers.

``consentdesk serve`` runs as a subprocess on SQLite and on PostgreSQL; the
clients are :mod:`consentdesk.stores.http_review` over a real HttpBackend, so
every scope asserted here is the server's, not the client's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_records import NUMBER, OTHER, consent, new_request
from server_support import ServerProcess, seed_users, sqlite_url, wipe

from consentdesk.domain.backend import NotFound
from consentdesk.domain.incident import AuthorityNotified, CallTag, IncidentClosed, IncidentOpened
from consentdesk.domain.model import (
    ConsentEvent,
    ConsentState,
    DomainError,
    RequestStatus,
    to_jsonable,
    utcnow,
)
from consentdesk.domain.review import (
    ActionKind,
    FlagAction,
    FlagNote,
    Forbidden,
    Page,
    ReadAccess,
    ReadKind,
    ReadLogFilter,
    ReviewFilter,
    Role,
    Viewer,
    lead_move,
    raise_flag,
    resolve_flag,
)
from consentdesk.server import db
from consentdesk.stores.http_backend import HttpBackend
from consentdesk.stores.http_review import HttpIncidents, HttpReviewSource
from consentdesk.stores.outbox import Outbox

LENA = Viewer("lena", Role.LEAD, "red")
ADAM = Viewer("adam", Role.ADMIN)
ALICE = Viewer("alice", Role.AGENT, "red")
BERT = Viewer("bert", Role.AGENT, "blue")


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    path = tmp_path_factory.mktemp("review-http") / "server.db"
    engine = db.make_engine(sqlite_url(path))
    db.upgrade(engine)
    engine.dispose()
    proc = ServerProcess(sqlite_url(path), path.parent).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def postgres_server(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = ServerProcess(pg_url, tmp_path_factory.mktemp("review-http-pg")).start()
    yield proc
    proc.stop()


class Team:
    """A server on a fresh database, a signed-in backend per user, and raw posting."""

    def __init__(self, server: ServerProcess, tmp_path: Path) -> None:
        engine = db.make_engine(server.database_url)
        try:
            wipe(engine)
            self.tokens = seed_users(engine)
        finally:
            engine.dispose()
        self.server = server
        self.tmp_path = tmp_path
        self.backends: list[HttpBackend] = []

    def backend(self, user: str) -> HttpBackend:
        outbox = Outbox.for_server(self.tmp_path / user, self.server.url)
        backend = HttpBackend(self.server.url, self.tokens[user], outbox=outbox)
        self.backends.append(backend)
        return backend

    def review(self, viewer: Viewer) -> HttpReviewSource:
        return HttpReviewSource(self.backend(viewer.name), viewer)

    def incidents(self, viewer: Viewer) -> HttpIncidents:
        return HttpIncidents(self.backend(viewer.name), viewer)

    def post(self, user: str, path: str, record: Any) -> httpx.Response:
        return httpx.post(
            self.server.url + path,
            content=json.dumps(to_jsonable(record)),
            headers={"Authorization": f"Bearer {self.tokens[user]}"},
            timeout=10.0,
        )

    def capture(self, event: ConsentEvent) -> ConsentEvent:
        response = self.post(event.agent, "/v1/consents", event)
        assert response.status_code == 201, response.text
        return event

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def team(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Team]:
    server = request.getfixturevalue(f"{request.param}_server")
    made = Team(server, tmp_path)
    yield made
    made.close()


def test_a_lead_sees_their_teams_captures_and_not_another_teams(team: Team) -> None:
    red = team.capture(consent(NUMBER, agent="alice"))
    blue = team.capture(consent(OTHER, agent="bert", call_id="call-2"))
    lena = team.review(LENA)

    rows = lena.actions(ReviewFilter(), Page()).rows
    assert [r.event_id for r in rows] == [red.event_id]
    assert rows[0].subject != NUMBER and rows[0].subject.endswith(NUMBER[-2:])  # masked
    with pytest.raises(Forbidden):
        lena.actions(ReviewFilter(team="blue"), Page())
    with pytest.raises(NotFound):
        lena.action(blue.event_id)
    with pytest.raises(NotFound):
        lena.reveal_number(blue.event_id)

    assert lena.reveal_number(red.event_id, call_id="call-9") == NUMBER
    detail = lena.action(red.event_id)
    assert detail.row.subject == NUMBER and detail.record == red
    assert detail.script_check.ok, detail.script_check.message
    assert [r.event_id for r in detail.history] == [red.event_id]
    reads = lena.read_log(ReadLogFilter(subject=NUMBER))
    assert [e.read.what for e in reads][:2] == [ReadKind.DETAIL, ReadKind.NUMBER]
    assert reads[1].read.call_id == "call-9" and reads[1].read.about == red.event_id
    assert lena.agents() == ("alice", "dora", "lena") and lena.teams() == ("red",)

    adam = team.review(ADAM)
    assert {r.event_id for r in adam.actions(ReviewFilter(), Page()).rows} == {
        red.event_id,
        blue.event_id,
    }
    assert adam.teams() == ("blue", "red")


def test_an_agent_gets_403_from_the_server_on_every_review_route(team: Team) -> None:
    event = team.capture(consent(NUMBER, agent="alice"))
    with pytest.raises(Forbidden):
        team.review(ALICE)  # refused before asking
    # A client that claims a lead's role still holds an agent's token: the server says no.
    forged = HttpReviewSource(team.backend("alice"), Viewer("alice", Role.LEAD, "red"))
    today = utcnow().date()
    calls: list[Callable[[], object]] = [
        lambda: forged.actions(ReviewFilter(), Page()),
        lambda: forged.action(event.event_id),
        lambda: forged.reveal_number(event.event_id),
        lambda: list(forged.export_actions(ReviewFilter())),
        lambda: forged.agents(),
        lambda: forged.flags(),
        lambda: forged.record_flag(raise_flag(event.event_id, "wrong purpose", by="alice")),
        lambda: forged.figures(today, today, tz=UTC),
        lambda: forged.read_log(ReadLogFilter()),
        lambda: forged.verify(),
        lambda: forged.log_read(ReadAccess("alice", event.subject, ReadKind.EXPORT)),
        lambda: forged.call_tags(uuid.uuid4()),
        lambda: forged.record_incident(opened("alice")),
    ]
    for call in calls:
        with pytest.raises(Forbidden):
            call()


def opened(by: str) -> IncidentOpened:
    return IncidentOpened(
        incident_id=uuid.uuid4(),
        title="Mailing list exposed",
        what_happened="A contractor's export of the offers list was sent to a wrong address.",
        aware_at=utcnow() - timedelta(hours=2),
        purposes=("marketing-offers",),
        regions=("DE",),
        script="We are aware of an incident affecting marketing emails. " * 10,
        by=by,
    )


def test_an_incident_from_open_to_close(team: Team) -> None:
    lena = team.incidents(LENA)
    alice = team.incidents(ALICE)
    bert = team.incidents(BERT)
    note = opened("lena")
    with pytest.raises(Forbidden):
        alice.record_incident(opened("alice"))

    incident = lena.record_incident(note)
    assert incident.opened == note and incident.is_open
    assert lena.record_incident(note) == incident  # a resend records nothing new
    assert [i.incident_id for i in alice.incidents(open_only=True)] == [note.incident_id]

    tag = alice.tag_call(CallTag(note.incident_id, "call-7", "alice"))
    again = alice.tag_call(CallTag(note.incident_id, "call-7", "alice", at=utcnow()))
    assert again == tag  # one click or two: one record
    bert.tag_call(CallTag(note.incident_id, "call-8", "bert"))
    with pytest.raises(Forbidden):
        alice.call_tags(note.incident_id)

    assert lena.call_tags(note.incident_id) == (tag,)  # her team's calls only
    assert len(team.incidents(ADAM).call_tags(note.incident_id)) == 2
    hour = tag.at.replace(minute=0, second=0, microsecond=0)
    counts = lena.calls_per_hour(
        note.incident_id, hour - timedelta(hours=1), hour + timedelta(hours=1)
    )
    assert [(c.start, c.count) for c in counts] == [(hour - timedelta(hours=1), 0), (hour, 1)]

    notified = AuthorityNotified(note.incident_id, utcnow(), "BfDI", "lena", authority_ref="X-1")
    assert lena.record_incident(notified).notified == notified
    closed = IncidentClosed(note.incident_id, "Recipient confirmed deletion.", "lena")
    assert lena.record_incident(closed).closed == closed
    assert alice.incidents(open_only=True) == ()
    assert [i.closed for i in alice.incidents()] == [closed]  # the record stays
    with pytest.raises(DomainError):
        alice.tag_call(CallTag(note.incident_id, "call-9", "alice"))
    with pytest.raises(NotFound):
        alice.tag_call(CallTag(uuid.uuid4(), "call-9", "alice"))


def test_flags_are_appended_to_the_chain(team: Team) -> None:
    red = team.capture(consent(NUMBER, agent="alice"))
    blue = team.capture(consent(OTHER, agent="bert", call_id="call-2"))
    lena = team.review(LENA)
    note = raise_flag(red.event_id, "the purpose was not read out", by="lena")

    flag = lena.record_flag(note)
    assert lena.record_flag(note) == flag  # idempotent by record id
    assert not flag.resolved and flag.raised_by == "lena"
    with pytest.raises(NotFound):
        lena.record_flag(raise_flag(blue.event_id, "not her team", by="lena"))
    with pytest.raises(DomainError):  # the same record id with other content
        lena.record_flag(
            FlagNote(
                note.flag_id, red.event_id, FlagAction.RAISE, "lena", "x", record_id=note.record_id
            )
        )
    flagged = lena.actions(ReviewFilter(flagged=True), Page()).rows
    assert [(r.event_id, r.flagged) for r in flagged] == [(red.event_id, True)]
    assert lena.actions(ReviewFilter(flagged=False), Page()).rows == ()

    resolved = lena.record_flag(resolve_flag(flag, "coached; script reread", by="lena"))
    assert resolved.resolved and resolved.resolution == "coached; script reread"
    assert lena.flags() == ()
    assert lena.flags(open_only=False) == (resolved,)
    assert lena.action(red.event_id).flags == (resolved,)
    report = lena.verify()
    assert report.ok and report.checked == 4, report  # two captures, raise, resolve


def test_export_figures_and_the_request_queue(team: Team) -> None:
    red = team.capture(consent(NUMBER, agent="alice"))
    refused = team.capture(consent(NUMBER, agent="alice", state=ConsentState.REFUSED))
    team.capture(consent(OTHER, agent="bert", call_id="call-2"))
    mine = new_request(NUMBER, agent="alice")
    other = new_request(OTHER, agent="bert")
    for request in (mine, other):
        assert team.post(request.agent, "/v1/requests", request).status_code == 201
    lena = team.review(LENA)

    exported = list(lena.export_actions(ReviewFilter()))
    assert [r.event_id for r in exported] == [red.event_id, refused.event_id, mine.event_id]
    assert {r.subject for r in exported} == {NUMBER}  # full numbers
    assert list(lena.export_events(ReviewFilter(kinds=(ActionKind.CONSENT,)))) == [red]
    assert lena.read_log(ReadLogFilter(limit=1))[0].read.what == ReadKind.EXPORT

    today = utcnow().date()
    figures = lena.figures(today - timedelta(days=1), today, tz=UTC)
    assert [(d.day, d.agent, d.count) for d in figures.agent_days] == [(today, "alice", 3)]
    rates = {p.purpose: (p.given, p.refused) for p in figures.purpose_rates}
    assert rates == {"marketing-offers": (1, 1)}
    assert [(f.day, f.opened) for f in figures.request_flow] == [
        (today - timedelta(days=1), 0),
        (today, 1),
    ]
    assert figures.open_requests == 1

    queue = lena.request_queue(date.today())
    assert [q.request.request_id for q in queue] == [mine.request_id]
    change = lead_move(queue[0].request, RequestStatus.VERIFYING, by="lena")
    assert lena.move_request(change).status == RequestStatus.VERIFYING
