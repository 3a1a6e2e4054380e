"""HttpBackend on its own (httpx.MockTransport): URL policy, TLS, errors, outbox and sync."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import truststore
from server_records import CATALOGUE, NUMBER, SCRIPTS, consent

from consentdesk.domain.backend import NotFound, Unavailable
from consentdesk.domain.model import (
    Channel,
    ConsentState,
    DomainError,
    Receipt,
    SubjectStatus,
    to_jsonable,
    utcnow,
)
from consentdesk.domain.review import Forbidden
from consentdesk.domain.status import current_status
from consentdesk.stores.http_backend import (
    AuthError,
    HttpBackend,
    InsecureServer,
    check_server_url,
    ssl_context,
)
from consentdesk.stores.outbox import Outbox

URL = "https://ledger.example.org"
Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, title: str, slug: str = "x", detail: str = "") -> httpx.Response:
    body = {"type": f"urn:consentdesk:problem:{slug}", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


class FakeServer:
    """Answers like the team server for the few routes a test needs; can go down.

    ``consent_answer(record)`` gives ``(status, body)`` for one consent, whether it
    came alone or in a batch; ``batches`` False makes it an older server without
    ``/v1/batch``.
    """

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.down = False
        self.batches = True
        self.consent_answer: Callable[[dict[str, Any]], tuple[int, Any]] = self.receipt
        self.history: list[dict[str, Any]] = []
        self.seq = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/v1/me":
            return httpx.Response(200, json={"name": "alice", "role": "agent", "team": "red"})
        if path == "/v1/catalogue":
            return httpx.Response(200, json=to_jsonable(CATALOGUE))
        if path == "/v1/scripts":
            return httpx.Response(200, json=to_jsonable(SCRIPTS))
        if path.endswith("/status"):
            return httpx.Response(200, json=to_jsonable(self._status()))
        if path.endswith("/history"):
            return httpx.Response(200, json=self.history)
        if path == "/v1/consents":
            status, body = self.consent_answer(json.loads(request.content))
            return httpx.Response(status, json=body)
        if path == "/v1/batch" and self.batches:
            results = []
            for item in json.loads(request.content)["records"]:
                status, body = self.consent_answer(item["record"])
                results.append({"status": status, "body": body})
            return httpx.Response(200, json={"results": results})
        return problem(404, "Not found")

    def _status(self) -> SubjectStatus:
        from consentdesk.domain.model import Subject, event_from_json

        events = [event_from_json(e) for e in self.history]
        return SubjectStatus(Subject(NUMBER), current_status(events, CATALOGUE, utcnow()), ())

    def receipt(self, body: dict[str, Any]) -> tuple[int, Any]:
        if all(e["event_id"] != body["event_id"] for e in self.history):
            self.history.append(body)
        self.seq += 1
        receipt = Receipt(body["event_id"], self.seq, "ab" * 32, utcnow())
        return 201, to_jsonable(receipt)

    def posted_event_ids(self) -> list[str]:
        ids = []
        for r in self.seen:
            if r.method == "POST" and r.url.path == "/v1/consents":
                ids.append(json.loads(r.content)["event_id"])
            elif r.method == "POST" and r.url.path == "/v1/batch" and self.batches:
                ids += [i["record"]["event_id"] for i in json.loads(r.content)["records"]]
        return ids

    def posts(self) -> list[httpx.Request]:
        return [r for r in self.seen if r.method == "POST"]


def problem_body(status: int, title: str, slug: str = "x", detail: str = "") -> dict[str, Any]:
    body = {"type": f"urn:consentdesk:problem:{slug}", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return body


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def make(tmp_path: Path, server: FakeServer) -> Iterator[Callable[..., HttpBackend]]:
    made: list[HttpBackend] = []

    def build(handler: Handler | None = None, url: str = URL) -> HttpBackend:
        outbox = Outbox.for_server(tmp_path, url)
        backend = HttpBackend(
            url, "cdt_token", outbox=outbox, transport=httpx.MockTransport(handler or server)
        )
        made.append(backend)
        return backend

    yield build
    for backend in made:
        backend.close()


# --- where the desk may talk to -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://ledger.example.org/",
        "http://127.0.0.1:8765",
        "http://localhost:8765",
        "http://[::1]:8765",
        "https://10.0.0.5",
    ],
)
def test_https_anywhere_and_http_to_this_computer(url: str) -> None:
    assert check_server_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://ledger.example.org", "plain http"),
        ("http://10.0.0.5:8765", "plain http"),
        ("http://127.0.0.1.example.org", "plain http"),
        ("ftp://ledger.example.org", "not a server address"),
        ("ledger.example.org", "not a server address"),
        ("https://user:secret@ledger.example.org", "must not carry"),
        ("https://ledger.example.org/?token=abc", "must not carry"),
    ],
)
def test_other_addresses_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(InsecureServer, match=reason):
        check_server_url(url)


def test_the_backend_refuses_plain_http_to_a_remote_host(tmp_path: Path) -> None:
    with pytest.raises(InsecureServer, match="Use https://"):
        HttpBackend("http://ledger.example.org", "t", outbox=Outbox(tmp_path / "o.sqlite3"))


def test_tls_uses_the_system_trust_store_and_checks_names() -> None:
    ctx = ssl_context()
    assert isinstance(ctx, truststore.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_a_missing_ca_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InsecureServer, match="CA bundle"):
        ssl_context(tmp_path / "missing.pem")


def test_client_timeouts_and_retries(tmp_path: Path) -> None:
    backend = HttpBackend(URL, "t", outbox=Outbox(tmp_path / "o.sqlite3"))
    try:
        timeout = backend._client.timeout
        assert (timeout.connect, timeout.read) == (2.0, 5.0)
        transport = backend._client._transport
        assert isinstance(transport, httpx.HTTPTransport)
        assert transport._pool._retries == 2
    finally:
        backend.close()


def test_an_empty_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthError):
        HttpBackend(URL, "  ", outbox=Outbox(tmp_path / "o.sqlite3"))


# --- what goes on the wire ---------------------------------------------------------------


def test_requests_carry_the_token_and_the_call_id_on_reads(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    backend.call_id = "call-7"
    backend.status(NUMBER)
    backend.catalogue()
    read = next(r for r in server.seen if r.url.path.endswith("/status"))
    catalogue = next(r for r in server.seen if r.url.path == "/v1/catalogue")
    assert read.headers["authorization"] == "Bearer cdt_token"
    assert read.headers["x-call-id"] == "call-7"
    assert read.headers["user-agent"].startswith("consentdesk/")
    assert read.url.path == f"/v1/subjects/{NUMBER}/status"
    assert "x-call-id" not in catalogue.headers


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (problem(401, "Sign-in required", detail="the token is not valid"), AuthError, "sign-in"),
        (problem(403, "Not allowed", detail="only leads"), Forbidden, "only leads"),
        (problem(404, "Not found"), NotFound, "Not found"),
        (problem(409, "Conflict"), DomainError, "Conflict"),
        (problem(422, "Invalid request", detail="bad purpose"), DomainError, "bad purpose"),
        (problem(503, "Service unavailable"), Unavailable, "cannot answer right now"),
        (httpx.Response(200, text="<html>proxy login</html>"), Unavailable, "not JSON"),
    ],
)
def test_problems_become_the_backend_errors(
    make: Callable[..., HttpBackend], answer: httpx.Response, error: type, text: str
) -> None:
    backend = make(lambda request: answer)
    with pytest.raises(error, match=text):
        backend.history(NUMBER)


@pytest.mark.parametrize(
    ("failure", "text"),
    [(httpx.ConnectError, "cannot reach"), (httpx.ReadTimeout, "did not answer in time")],
)
def test_network_failures_are_unavailable(
    make: Callable[..., HttpBackend], failure: type[httpx.TransportError], text: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure("down", request=request)

    with pytest.raises(Unavailable, match=text):
        make(fail).history(NUMBER)


# --- offline-safe capture -----------------------------------------------------------------


def test_capture_is_recorded_locally_at_once(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    server.down = True
    event = consent(agent="alice")
    receipt = backend.capture(event)
    assert receipt.pending and receipt.event_id == event.event_id and receipt.seq == 0
    assert backend.capture(event).duplicate
    assert backend.pending_count() == 1
    assert server.posts() == []


def test_sync_sends_in_order_and_resumes_after_an_outage(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    events = [consent(agent="alice") for _ in range(5)]
    server.down = True
    for e in events:
        backend.capture(e)
    report = backend.sync_once()
    assert report.error and "cannot reach" in report.error and report.pending == 5
    server.down = False
    report = backend.sync_once()
    assert report.error is None and report.pending == 0 and len(report.sent) == 5
    assert server.posted_event_ids() == [str(e.event_id) for e in events]
    assert [r.url.path for r in server.posts()] == ["/v1/batch"]  # one request for all five


def test_a_busy_server_stops_the_pass_and_keeps_the_rest(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    for _ in range(3):
        backend.capture(consent(agent="alice"))
    calls = iter([None, (503, problem_body(503, "Service unavailable"))])

    def flaky(record: dict[str, Any]) -> tuple[int, Any]:
        answer = next(calls, None)
        return answer if answer is not None else server.receipt(record)

    server.consent_answer = flaky
    report = backend.sync_once()
    assert len(report.sent) == 1 and report.pending == 2 and "right now" in (report.error or "")
    assert backend.outbox.pending()[0].attempts == 1
    assert backend.sync_once().pending == 0


def test_an_older_server_without_batches_gets_one_record_per_request(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    server.batches = False
    backend = make()
    events = [consent(agent="alice") for _ in range(3)]
    for e in events:
        backend.capture(e)
    assert backend.sync_once().pending == 0
    paths = [r.url.path for r in server.posts()]
    assert paths == ["/v1/batch", "/v1/consents", "/v1/consents", "/v1/consents"]
    assert server.posted_event_ids() == [str(e.event_id) for e in events]


def test_a_big_backlog_goes_in_batches_under_the_size_limit(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    events = [consent(agent="alice") for _ in range(250)]
    for e in events:
        backend.capture(e)
    assert backend.sync_once().pending == 0
    batches = [r for r in server.posts() if r.url.path == "/v1/batch"]
    assert len(batches) >= 3 and all(len(r.content) <= 64 * 1024 for r in batches)
    assert server.posted_event_ids() == [str(e.event_id) for e in events]


def test_a_refused_record_is_kept_with_the_reason(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    bad, good = consent(agent="alice"), consent(agent="alice")
    backend.capture(bad)
    backend.capture(good)

    def judge(record: dict[str, Any]) -> tuple[int, Any]:
        if record["event_id"] == str(bad.event_id):
            return 422, problem_body(422, "Invalid request", detail="unknown purpose")
        return server.receipt(record)

    server.consent_answer = judge
    report = backend.sync_once()
    assert [i.key for i, _ in report.rejected] == [bad.event_id]
    assert [i.key for i, _ in report.sent] == [good.event_id]
    (kept,) = backend.rejected()
    assert kept.key == bad.event_id and "unknown purpose" in (kept.last_error or "")
    assert backend.pending_count() == 0


def test_a_refused_token_stops_sync_without_losing_anything(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    backend.me()
    backend.capture(consent(agent="alice"))
    server.consent_answer = lambda record: (401, problem_body(401, "Sign-in required"))
    report = backend.sync_once()
    assert report.error and "sign-in" in report.error
    assert backend.pending_count() == 1 and backend.rejected() == []


def test_a_capture_in_another_agents_name_is_refused(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    assert backend.me().name == "alice"
    with pytest.raises(DomainError, match="signed in to the team server as alice"):
        backend.capture(consent(agent="bert"))
    assert backend.pending_count() == 0


def test_identity_and_catalogue_are_remembered_for_offline_use(
    make: Callable[..., HttpBackend], server: FakeServer, tmp_path: Path
) -> None:
    first = make()
    first.me()
    first.catalogue()
    first.scripts()
    first.close()
    server.down = True
    again = make()
    assert again.identity is not None and again.identity.name == "alice"
    assert again.catalogue() == CATALOGUE and tuple(again.scripts()) == SCRIPTS
    with pytest.raises(DomainError, match="telepathy"):
        from consentdesk.domain.model import ConsentEvent

        event = consent(agent="alice")
        again.capture(ConsentEvent(**{**_fields(event), "purpose": "telepathy"}))


def test_offline_status_merges_waiting_captures_over_the_last_answer(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    earlier = consent(agent="alice", channel=Channel.EMAIL)
    server.history.append(to_jsonable(earlier))
    assert (
        backend.status(NUMBER).cell("marketing-offers", Channel.EMAIL).state == ConsentState.GIVEN
    )
    backend.history(NUMBER)
    server.down = True
    withdrawn = consent(agent="alice", state=ConsentState.WITHDRAWN, channel=Channel.EMAIL)
    phone = consent(agent="alice")
    backend.capture(withdrawn)
    backend.capture(phone)
    status = backend.status(NUMBER)
    assert status.cell("marketing-offers", Channel.EMAIL).state == ConsentState.WITHDRAWN
    assert status.cell("marketing-offers", Channel.PHONE).state == ConsentState.GIVEN
    assert [e.event_id for e in backend.history(NUMBER)] == [
        earlier.event_id,
        withdrawn.event_id,
        phone.event_id,
    ]
    server.down = False
    backend.sync_once()
    server.down = True  # synced, then offline again: still shown from memory
    assert (
        backend.status(NUMBER).cell("marketing-offers", Channel.PHONE).state == ConsentState.GIVEN
    )


def test_online_status_also_shows_what_has_not_synced_yet(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    backend.capture(consent(agent="alice"))
    assert (
        backend.status(NUMBER).cell("marketing-offers", Channel.PHONE).state == ConsentState.GIVEN
    )
    assert server.posts() == []


def test_offline_without_an_earlier_answer_is_unavailable(
    make: Callable[..., HttpBackend], server: FakeServer
) -> None:
    backend = make()
    server.down = True
    with pytest.raises(Unavailable):
        backend.status(NUMBER)


def cell_state(backend: HttpBackend, channel: Channel) -> ConsentState:
    return backend.status(NUMBER).cell("marketing-offers", channel).state


def _fields(record: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
