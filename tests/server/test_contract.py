"""One contract for every backend: what the desk may rely on, whoever stores the records.

Backends under test:

- ``embedded``: the SQLite ledger in a temporary folder;
- ``http-sqlite`` / ``http-postgres``: :class:`HttpBackend` → a ``consentdesk serve``
  subprocess → SQLite / PostgreSQL, syncing its outbox after every write (a desk
  with a steady network);
- ``http-pending``: the same client that never syncs during the test, so every
  answer comes from the server's state merged with the waiting outbox (a desk
  whose captures have not reached the server yet).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from server_records import CATALOGUE, NUMBER, OTHER, SCRIPTS, consent, move, new_request, verify
from server_support import ServerProcess, seed_users, sqlite_url, wipe

from consentdesk.domain.backend import Backend, NotFound
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    DomainError,
    Jurisdiction,
    NewRequest,
    PrivacyRequest,
    Receipt,
    RequestChange,
    RequestStatus,
    RequestType,
    Subject,
    privacy_request_from_json,
    receipt_from_json,
    utcnow,
)
from consentdesk.domain.references import new_reference
from consentdesk.server import db
from consentdesk.stores.http_backend import HttpBackend, SyncReport
from consentdesk.stores.ledger import EmbeddedLedger
from consentdesk.stores.outbox import Outbox

AGENT = "alice"


class SyncedHttp:
    """An HttpBackend that syncs after every write and answers with the server's result."""

    def __init__(self, inner: HttpBackend) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _synced(self, key: uuid.UUID | None, decode: Callable[[Any], Any], fallback: Any) -> Any:
        report: SyncReport = self.inner.sync_once()
        assert report.error is None, report.error
        if report.rejected:
            raise DomainError(report.rejected[0][1])
        for item, answer in report.sent:
            if key is not None and item.key == key:
                return decode(answer)
        return fallback

    def capture(self, event: ConsentEvent) -> Receipt:
        pending = self.inner.capture(event)
        return self._synced(event.event_id, receipt_from_json, pending)

    def create_request(self, request: NewRequest) -> PrivacyRequest:
        local = self.inner.create_request(request)
        return self._synced(request.event_id, privacy_request_from_json, local)

    def update_request(self, change: RequestChange) -> PrivacyRequest:
        local = self.inner.update_request(change)
        return self._synced(change.event_id, privacy_request_from_json, local)

    def save_subject(self, subject: Subject) -> None:
        self.inner.save_subject(subject)
        self._synced(None, lambda a: a, None)


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    path = tmp_path_factory.mktemp("contract") / "server.db"
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
    proc = ServerProcess(pg_url, tmp_path_factory.mktemp("contract-pg")).start()
    yield proc
    proc.stop()


def _http(server: ServerProcess, tmp_path: Path) -> HttpBackend:
    engine = db.make_engine(server.database_url)
    try:
        wipe(engine)
        tokens = seed_users(engine)
    finally:
        engine.dispose()
    outbox = Outbox.for_server(tmp_path / "desk", server.url)
    return HttpBackend(server.url, tokens[AGENT], outbox=outbox)


@pytest.fixture(
    params=[
        "embedded",
        "http-sqlite",
        pytest.param("http-postgres", marks=pytest.mark.postgres),
        "http-pending",
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    kind = request.param
    if kind == "embedded":
        store: Any = EmbeddedLedger(tmp_path / "ledger.sqlite3")
    elif kind == "http-postgres":
        store = SyncedHttp(_http(request.getfixturevalue("postgres_server"), tmp_path))
    else:
        http = _http(request.getfixturevalue("sqlite_server"), tmp_path)
        store = SyncedHttp(http) if kind == "http-sqlite" else http
    yield store
    store.close()


def cell(backend: Backend, number: str, purpose: str, channel: Channel) -> ConsentState:
    return backend.status(number).cell(purpose, channel).state


# --- reference data --------------------------------------------------------------------


def test_catalogue_and_scripts_are_the_published_ones(backend: Backend) -> None:
    assert backend.catalogue() == CATALOGUE
    assert tuple(backend.scripts()) == SCRIPTS


def test_backend_protocol(backend: Any) -> None:
    target = backend.inner if isinstance(backend, SyncedHttp) else backend
    assert isinstance(target, Backend)


# --- consent status -------------------------------------------------------------------


def test_a_new_number_is_all_unknown(backend: Backend) -> None:
    status = backend.status(NUMBER)
    assert status.subject == Subject(NUMBER)
    assert len(status.cells) == sum(len(p.channels) for p in CATALOGUE)
    assert {c.state for c in status.cells} == {ConsentState.UNKNOWN}
    assert status.requests == () and tuple(backend.history(NUMBER)) == ()


def test_capture_shows_in_status_and_history(backend: Backend) -> None:
    event = consent(agent=AGENT)
    receipt = backend.capture(event)
    assert receipt.event_id == event.event_id and not receipt.duplicate
    status = backend.status(NUMBER)
    got = status.cell("marketing-offers", Channel.PHONE)
    assert got.state == ConsentState.GIVEN and got.event == event
    assert got.expires == event.valid_until
    assert tuple(backend.history(NUMBER)) == (event,)
    assert {c.state for c in backend.status(OTHER).cells} == {ConsentState.UNKNOWN}


def test_latest_event_wins(backend: Backend) -> None:
    backend.capture(consent(agent=AGENT))
    backend.capture(consent(agent=AGENT, state=ConsentState.WITHDRAWN))
    backend.capture(consent(agent=AGENT, channel=Channel.EMAIL, state=ConsentState.REFUSED))
    assert cell(backend, NUMBER, "marketing-offers", Channel.PHONE) == ConsentState.WITHDRAWN
    assert cell(backend, NUMBER, "marketing-offers", Channel.EMAIL) == ConsentState.REFUSED
    assert len(backend.history(NUMBER)) == 3


def test_an_older_given_arriving_after_a_newer_withdrawal_leaves_withdrawn(
    backend: Backend,
) -> None:
    """Status is by event time: a desk that was offline syncs a consent captured
    at 10:00 after another desk recorded the withdrawal at 11:00."""
    now = utcnow()
    withdrawn = consent(agent=AGENT, state=ConsentState.WITHDRAWN, now=now - timedelta(hours=1))
    older = consent(agent=AGENT, now=now - timedelta(hours=2))
    backend.capture(withdrawn)
    backend.capture(older)
    got = backend.status(NUMBER).cell("marketing-offers", Channel.PHONE)
    assert got.state == ConsentState.WITHDRAWN and got.event == withdrawn
    assert len(backend.history(NUMBER)) == 2


def _ccpa_consent(purpose: str, channel: Channel, **kw: Any) -> ConsentEvent:
    return consent(
        agent=AGENT, purpose=purpose, channel=channel, jurisdiction=Jurisdiction.CCPA, **kw
    )


@pytest.mark.parametrize(
    ("kind", "purpose", "channel"),
    [
        (RequestType.OPT_OUT_SALE, "sale-sharing", Channel.ONLINE),
        (RequestType.LIMIT_SENSITIVE, "personalised-offers", Channel.EMAIL),
    ],
)
def test_a_ccpa_request_stops_its_purposes_at_once(
    backend: Backend, kind: RequestType, purpose: str, channel: Channel
) -> None:
    now = utcnow()
    backend.capture(_ccpa_consent(purpose, channel, now=now - timedelta(days=3)))
    backend.capture(_ccpa_consent("marketing-offers", Channel.EMAIL, now=now - timedelta(days=3)))
    assert cell(backend, NUMBER, purpose, channel) == ConsentState.GIVEN
    request = new_request(agent=AGENT, type=kind, jurisdiction=Jurisdiction.CCPA)
    backend.create_request(request)
    got = backend.status(NUMBER).cell(purpose, channel)
    assert got.state == ConsentState.OPTED_OUT  # received, not yet processed: in effect
    assert got.request is not None and got.request.reference == request.reference
    # Every channel of the purpose, and nothing else.
    for c in backend.status(NUMBER).cells:
        if c.purpose == purpose:
            assert c.state == ConsentState.OPTED_OUT
    assert cell(backend, NUMBER, "marketing-offers", Channel.EMAIL) == ConsentState.GIVEN
    assert cell(backend, OTHER, purpose, channel) == ConsentState.UNKNOWN


def test_a_consent_given_after_an_opt_out_opts_back_in(backend: Backend) -> None:
    request = new_request(
        agent=AGENT, type=RequestType.OPT_OUT_SALE, jurisdiction=Jurisdiction.CCPA
    )
    backend.create_request(request)
    assert cell(backend, NUMBER, "sale-sharing", Channel.ONLINE) == ConsentState.OPTED_OUT
    backend.capture(_ccpa_consent("sale-sharing", Channel.ONLINE))
    assert cell(backend, NUMBER, "sale-sharing", Channel.ONLINE) == ConsentState.GIVEN


def test_a_lapsed_consent_is_expired(backend: Backend) -> None:
    old = consent(agent=AGENT, now=utcnow() - timedelta(days=800))
    backend.capture(old)
    assert cell(backend, NUMBER, "marketing-offers", Channel.PHONE) == ConsentState.EXPIRED


def test_capture_is_idempotent(backend: Backend) -> None:
    event = consent(agent=AGENT)
    first = backend.capture(event)
    again = backend.capture(event)
    assert again.duplicate and again.event_id == first.event_id
    assert (again.seq, again.hash) == (first.seq, first.hash)
    assert len(backend.history(NUMBER)) == 1


def test_same_id_other_content_is_refused(backend: Backend) -> None:
    event = consent(agent=AGENT)
    backend.capture(event)
    changed = ConsentEvent(**{**_fields(event), "state": ConsentState.REFUSED, "valid_until": None})
    with pytest.raises(DomainError):
        backend.capture(changed)
    assert tuple(backend.history(NUMBER)) == (event,)


def test_a_void_correction_clears_the_cell(backend: Backend) -> None:
    given = consent(agent=AGENT)
    backend.capture(given)
    backend.capture(
        consent(agent=AGENT, state=ConsentState.VOID, corrects=given.event_id, reason="misheard")
    )
    assert cell(backend, NUMBER, "marketing-offers", Channel.PHONE) == ConsentState.UNKNOWN
    assert len(backend.history(NUMBER)) == 2


def test_a_correction_names_an_event_of_the_same_subject(backend: Backend) -> None:
    given = consent(agent=AGENT)
    backend.capture(given)
    stray = consent(
        OTHER, agent=AGENT, state=ConsentState.VOID, corrects=given.event_id, reason="wrong"
    )
    with pytest.raises(DomainError):
        backend.capture(stray)
    assert tuple(backend.history(OTHER)) == ()


def test_bad_captures_are_refused(backend: Backend) -> None:
    event = consent(agent=AGENT)
    unknown = ConsentEvent(**{**_fields(event), "purpose": "telepathy"})
    wrong_channel = ConsentEvent(
        **{
            **_fields(event),
            "purpose": "call-recording",
            "channel": Channel.POST,
            "valid_until": None,
        }
    )
    bad_number = ConsentEvent(**{**_fields(event), "subject": "015112345678"})
    for bad in (unknown, wrong_channel, bad_number):
        with pytest.raises(DomainError):
            backend.capture(bad)
    assert tuple(backend.history(NUMBER)) == ()


@pytest.mark.parametrize("number", ["015112345678", "+49 151 12345678", "", "+4915112345678;"])
def test_reads_refuse_a_number_that_is_not_e164(backend: Backend, number: str) -> None:
    with pytest.raises(DomainError):
        backend.status(number)
    with pytest.raises(DomainError):
        backend.history(number)


def test_subject_profile(backend: Backend) -> None:
    backend.save_subject(Subject(NUMBER, customer_ref="C-1001", display_name="Erika"))
    backend.save_subject(Subject(NUMBER, customer_ref="C-1001", display_name="Erika M."))
    assert backend.status(NUMBER).subject == Subject(NUMBER, "C-1001", "Erika M.")


# --- privacy requests ----------------------------------------------------------------------


def test_request_lifecycle(backend: Backend) -> None:
    new = new_request(agent=AGENT, type=RequestType.ERASURE)
    created = backend.create_request(new)
    assert (created.status, created.reference, created.subject) == (
        RequestStatus.RECEIVED,
        new.reference,
        NUMBER,
    )
    assert backend.create_request(new) == created
    assert backend.request(new.request_id) == created
    spaced = new.reference.lower().replace("-", " ")
    assert backend.find_request(spaced) == created
    verified = backend.update_request(verify(new.request_id, agent=AGENT))
    assert verified.status == RequestStatus.VERIFYING and len(verified.verifications) == 1
    working = backend.update_request(move(new.request_id, RequestStatus.IN_PROGRESS, agent=AGENT))
    assert working.status == RequestStatus.IN_PROGRESS
    assert backend.request(new.request_id) == working
    assert backend.status(NUMBER).requests == (working,)
    done = backend.update_request(move(new.request_id, RequestStatus.COMPLETED, agent=AGENT))
    assert not done.is_open
    assert backend.requests(open_only=True) == ()
    assert backend.requests(number=NUMBER) == (done,)
    assert backend.status(NUMBER).requests == (done,)  # recently closed still shows


def test_request_writes_are_idempotent(backend: Backend) -> None:
    new = new_request(agent=AGENT)
    backend.create_request(new)
    change = verify(new.request_id, agent=AGENT)
    once = backend.update_request(change)
    assert backend.update_request(change) == once
    assert len(backend.request(new.request_id).verifications) == 1


def test_illegal_request_moves_are_refused(backend: Backend) -> None:
    new = new_request(agent=AGENT)
    backend.create_request(new)
    with pytest.raises(DomainError):
        backend.update_request(move(new.request_id, RequestStatus.COMPLETED, agent=AGENT))
    with pytest.raises(DomainError):
        backend.update_request(move(new.request_id, RequestStatus.REJECTED, agent=AGENT))
    assert backend.request(new.request_id).status == RequestStatus.RECEIVED


def test_a_reference_is_used_once(backend: Backend) -> None:
    first = new_request(agent=AGENT)
    backend.create_request(first)
    other = NewRequest(**{**_fields(new_request(OTHER, agent=AGENT)), "reference": first.reference})
    with pytest.raises(DomainError):
        backend.create_request(other)
    assert backend.requests(number=OTHER) == ()


def test_unknown_requests_are_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.request(uuid.uuid4())
    with pytest.raises(NotFound):
        backend.find_request(new_reference())
    with pytest.raises(NotFound):
        backend.update_request(move(uuid.uuid4(), RequestStatus.WITHDRAWN, agent=AGENT))
    with pytest.raises(DomainError):
        backend.find_request("RQ-2345-6789-ABCD")  # check character wrong


def test_requests_are_listed_soonest_due_first(backend: Backend) -> None:
    gdpr = backend.create_request(new_request(agent=AGENT))
    ccpa = backend.create_request(
        new_request(
            OTHER, agent=AGENT, type=RequestType.OPT_OUT_SALE, jurisdiction=Jurisdiction.CCPA
        )
    )
    listed = backend.requests()
    assert [r.request_id for r in listed] == sorted(
        [gdpr.request_id, ccpa.request_id],
        key=lambda rid: next(r.due for r in (gdpr, ccpa) if r.request_id == rid),
    )
    assert backend.requests(number=OTHER) == (ccpa,)
    assert backend.status(OTHER).requests == (ccpa,)


def _fields(record: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
