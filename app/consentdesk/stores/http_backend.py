"""The desk's backend against the team ledger server, safe to use offline.

Reads go to the server (``/v1``); every capture goes first into the durable
:class:`~consentdesk.stores.outbox.Outbox` and is sent by :meth:`HttpBackend.sync_once`
(or the background sync worker) with its event id as the idempotency key.
Until the server has them, the agent's own waiting captures are merged over
the server's answer, and over the last answer seen when the server cannot be
reached. One long-lived httpx client: connect 2 s / read 5 s, retries on
connection failures, TLS verified against the system trust store (plus an
optional CA bundle); plain http only to this computer.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import logging
import ssl
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import truststore

from consentdesk import __version__
from consentdesk.domain.admission import check_consent, check_new_request, check_subject
from consentdesk.domain.backend import BackendError, NotFound, Unavailable
from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    ConsentEvent,
    DomainError,
    NewRequest,
    PrivacyRequest,
    Receipt,
    RequestChange,
    Subject,
    SubjectStatus,
    event_from_json,
    new_request_from_json,
    privacy_request_from_json,
    request_change_from_json,
    subject_from_json,
    subject_status_from_json,
    utcnow,
)
from consentdesk.domain.references import normalize_reference
from consentdesk.domain.requests import check_change, fold_request
from consentdesk.domain.review import Forbidden, Viewer, from_jsonable
from consentdesk.domain.scripts import Script
from consentdesk.domain.status import current_status
from consentdesk.stores.outbox import (
    ItemKind,
    Outbox,
    OutboxItem,
)

log = logging.getLogger("consentdesk.http")

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0
RETRIES = 2  # extra attempts when a connection cannot be made
CACHE_SUBJECTS = 64  # last server answers kept in memory for offline use
AGENT_MISMATCH = "urn:consentdesk:problem:agent-mismatch"
_META_CATALOGUE = "catalogue"
_META_SCRIPTS = "scripts"
_META_IDENTITY = "identity"


class InsecureServer(BackendError):
    """The server URL is unusable or would send the token in the clear."""


class AuthError(BackendError):
    """The server does not accept the token: sign in again."""


def check_server_url(url: str) -> str:
    """The base URL without a trailing slash; https, or plain http to loopback only."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InsecureServer(f"not a server address: {text!r} (use https://host[:port])")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InsecureServer("the server address must not carry a user, password, query or #")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InsecureServer(
            "plain http sends the token unencrypted; it is allowed only to this computer "
            "(localhost). Use https:// for the team server"
        )
    return text.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ssl_context(ca_bundle: str | Path | None = None) -> ssl.SSLContext:
    """The system trust store (truststore), plus the CA bundle IT may configure."""
    ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_bundle:
        try:
            ctx.load_verify_locations(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise InsecureServer(f"cannot use the CA bundle {ca_bundle}: {exc}") from None
    return ctx


def _client(
    base_url: str,
    token: str,
    *,
    ca_bundle: str | Path | None,
    transport: httpx.BaseTransport | None,
) -> httpx.Client:
    if transport is None:
        transport = httpx.HTTPTransport(verify=ssl_context(ca_bundle), retries=RETRIES)
    return httpx.Client(
        base_url=base_url,
        headers={
            "Authorization": f"Bearer {token.strip()}",
            "User-Agent": f"consentdesk/{__version__}",
            "Accept": "application/json",
        },
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        transport=transport,
        follow_redirects=False,
    )


def probe_server(
    base_url: str,
    token: str,
    *,
    ca_bundle: str | Path | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Viewer:
    """Reach the server, check it is ready and that *token* works: who it belongs to.

    For sign-in and "test connection"; touches no outbox and stores nothing.
    """
    url = check_server_url(base_url)
    if not token.strip():
        raise AuthError("no sign-in token")
    with _client(url, token, ca_bundle=ca_bundle, transport=transport) as client:
        try:
            ready = client.get("/readyz")
            if ready.status_code != 200:
                raise _problem_error(ready)
            me = client.get("/v1/me")
        except httpx.TransportError as exc:
            raise _transport_error(exc, url) from None
        if me.status_code != 200:
            raise _problem_error(me)
        try:
            return from_jsonable(Viewer, me.json())
        except ValueError:
            raise Unavailable("the team server sent an answer that is not JSON") from None


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one pass of the sync worker did."""

    sent: tuple[tuple[OutboxItem, Any], ...] = ()  # item, the server's answer
    rejected: tuple[tuple[OutboxItem, str], ...] = ()  # item, the server's reason
    pending: int = 0  # still waiting afterwards
    error: str | None = None  # why the pass stopped early (offline, sign-in)


@dataclass
class _Snapshot:
    """The server's last answer for one subject, and what was sent since."""

    status: SubjectStatus | None = None
    history: list[ConsentEvent] | None = None
    sent_since: list[OutboxItem] = field(default_factory=list)


class HttpBackend:
    """:class:`~consentdesk.domain.backend.Backend` over HTTP with an offline outbox."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        outbox: Outbox,
        ca_bundle: str | Path | None = None,
        transport: httpx.BaseTransport | None = None,
        calendar: Calendar = DEFAULT_CALENDAR,
    ) -> None:
        self.base_url = check_server_url(base_url)
        self._calendar = calendar
        if not token.strip():
            raise AuthError("no sign-in token")
        self.outbox = outbox
        self.call_id: str | None = None  # sent with reads, for the server's read log
        self._client = _client(self.base_url, token, ca_bundle=ca_bundle, transport=transport)
        # A second client for the incident long poll, which waits on another thread.
        self._new_client: Callable[[], httpx.Client] = functools.partial(
            _client, self.base_url, token, ca_bundle=ca_bundle, transport=transport
        )
        self._lock = threading.Lock()  # caches; the review window reads from its own threads
        self._sync_lock = threading.Lock()
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        self._requests: dict[str, tuple[NewRequest, list[RequestChange]]] = {}
        self._catalogue: Catalogue | None = None
        self._scripts: tuple[Script, ...] | None = None
        self._identity: Viewer | None = _identity_from(outbox.meta(_META_IDENTITY))
        self._batching = True

    def event_client(self) -> httpx.Client:
        """A client of its own for a thread that waits (the incident long poll)."""
        return self._new_client()

    # --- HTTP -----------------------------------------------------------------

    def _send(
        self, method: str, path: str, *, body: str | None = None, read: bool = False
    ) -> httpx.Response:
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if read and self.call_id:
            headers["X-Call-Id"] = self.call_id
        try:
            return self._client.request(
                method,
                path,
                content=body.encode("utf-8") if body is not None else None,
                headers=headers,
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, self.base_url) from None

    def _json(self, method: str, path: str, *, body: str | None = None, read: bool = False) -> Any:
        response = self._send(method, path, body=body, read=read)
        if response.status_code >= 400:
            raise _problem_error(response)
        try:
            return response.json()
        except ValueError:
            raise Unavailable("the team server sent an answer that is not JSON") from None

    # --- identity ---------------------------------------------------------------

    def me(self) -> Viewer:
        """Who the token belongs to (remembered for offline captures)."""
        viewer = from_jsonable(Viewer, self._json("GET", "/v1/me"))
        with self._lock:
            self._identity = viewer
        self.outbox.set_meta(_META_IDENTITY, json.dumps([viewer.name, viewer.role, viewer.team]))
        return viewer

    @property
    def identity(self) -> Viewer | None:
        return self._identity

    def test_connection(self) -> Viewer:
        """Reach the server, check it is ready and that the token works."""
        response = self._send("GET", "/readyz")
        if response.status_code != 200:
            raise _problem_error(response)
        return self.me()

    def cosign(self, document: dict[str, Any]) -> dict[str, Any]:
        """Have the server witness the desk ledger's checkpoint (see stores/witness.py)."""
        answer: dict[str, Any] = self._json("POST", "/v1/log/cosign", body=json.dumps(document))
        return answer

    # --- reference data ---------------------------------------------------------

    def catalogue(self) -> Catalogue:
        try:
            data = self._json("GET", "/v1/catalogue")
        except Unavailable:
            cached = self._cached_catalogue()
            if cached is None:
                raise
            return cached
        catalogue = _catalogue_from(data)
        with self._lock:
            self._catalogue = catalogue
        self.outbox.set_meta(_META_CATALOGUE, json.dumps(data))
        if self._known_scripts() is None:
            # Remembered with the catalogue: captures offline check notices against them.
            with contextlib.suppress(Unavailable):
                self.scripts()
        return catalogue

    def _cached_catalogue(self) -> Catalogue | None:
        with self._lock:
            if self._catalogue is not None:
                return self._catalogue
        raw = self.outbox.meta(_META_CATALOGUE)
        return _catalogue_from(json.loads(raw)) if raw else None

    def _known_catalogue(self) -> Catalogue | None:
        """The catalogue for local checks: remembered, else fetched if reachable."""
        cached = self._cached_catalogue()
        if cached is not None:
            return cached
        try:
            return self.catalogue()
        except Unavailable:
            return None

    def _known_scripts(self) -> Sequence[Script] | None:
        """The scripts for local checks, as last fetched (no network: a capture
        offline must not wait for it); None if never fetched."""
        with self._lock:
            if self._scripts is not None:
                return self._scripts
        raw = self.outbox.meta(_META_SCRIPTS)
        if raw is None:
            return None
        scripts = tuple(from_jsonable(Script, s) for s in json.loads(raw))
        with self._lock:
            self._scripts = scripts
        return scripts

    def scripts(self) -> Sequence[Script]:
        try:
            data = self._json("GET", "/v1/scripts")
            self.outbox.set_meta(_META_SCRIPTS, json.dumps(data))
        except Unavailable:
            raw = self.outbox.meta(_META_SCRIPTS)
            if raw is None:
                raise
            data = json.loads(raw)
        scripts = tuple(from_jsonable(Script, s) for s in data)
        with self._lock:
            self._scripts = scripts
        return scripts

    # --- subjects ---------------------------------------------------------------

    def status(self, number: str) -> SubjectStatus:
        check_subject(number)
        try:
            server = subject_status_from_json(
                self._json("GET", f"/v1/subjects/{quote(number)}/status", read=True)
            )
            with self._lock:
                snap = self._snapshot(number)
                snap.status, snap.sent_since = server, []
                snap.history = None
            since: list[OutboxItem] = []
            if self._cached_catalogue() is None:
                self.catalogue()  # needed to merge waiting captures when offline later
        except Unavailable:
            with self._lock:
                snap = self._snapshots.get(number) or _Snapshot()
                if snap.status is None:
                    raise
                server, since = snap.status, list(snap.sent_since)
        return self._merge_status(server, since)

    def history(self, number: str) -> Sequence[ConsentEvent]:
        check_subject(number)
        try:
            data = self._json("GET", f"/v1/subjects/{quote(number)}/history", read=True)
            events = [event_from_json(e) for e in data]
            with self._lock:
                self._snapshot(number).history = events
            since: list[OutboxItem] = []
        except Unavailable:
            with self._lock:
                snap = self._snapshots.get(number) or _Snapshot()
                if snap.history is None:
                    raise
                events, since = list(snap.history), list(snap.sent_since)
        waiting = [_record(i) for i in [*since, *self.outbox.pending_for(number)]]
        known = {e.event_id for e in events}
        extra = [e for e in waiting if isinstance(e, ConsentEvent) and e.event_id not in known]
        return tuple(events + extra)

    def _snapshot(self, number: str) -> _Snapshot:
        snap = self._snapshots.pop(number, None) or _Snapshot()
        self._snapshots[number] = snap
        while len(self._snapshots) > CACHE_SUBJECTS:
            self._snapshots.popitem(last=False)
        return snap

    def _merge_status(self, server: SubjectStatus, since: list[OutboxItem]) -> SubjectStatus:
        """The server's status with the agent's own not-yet-seen records on top."""
        number = server.subject.number
        items = [*since, *self.outbox.pending_for(number)]
        if not items:
            return server
        records = [_record(i) for i in items]
        events = [r for r in records if isinstance(r, ConsentEvent)]
        subject = server.subject
        for r in records:
            if isinstance(r, Subject):
                subject = r
        cells = server.cells
        local = [self._local_request(r) for r in records if isinstance(r, NewRequest)]
        if events or local:
            if any(e.corrects is not None for e in events):
                base = list(self.history(number))  # corrections need the whole history
            else:
                base = [c.event for c in server.cells if c.event is not None]
            known = {e.event_id for e in base}
            merged = base + [e for e in events if e.event_id not in known]
            catalogue = self._cached_catalogue()
            if catalogue is None:
                catalogue = self.catalogue()
            # Requests that decide cells now, older ones included (the status
            # lists closed requests only for 30 days), and the desk's own.
            ccpa = {c.request.request_id: c.request for c in server.cells if c.request is not None}
            ccpa.update({r.request_id: r for r in (*server.requests, *local)})
            cells = current_status(merged, catalogue, utcnow(), ccpa.values())
        requests = {r.request_id: r for r in server.requests}
        for r in records:
            if isinstance(r, NewRequest) and r.request_id not in requests:
                requests[r.request_id] = self._local_request(r)
        ordered = sorted(requests.values(), key=lambda r: (r.due, r.received, r.reference))
        return SubjectStatus(subject=subject, cells=cells, requests=tuple(ordered))

    # --- captures (always through the outbox) ------------------------------------

    def _check_identity(self, agent: str) -> None:
        identity = self._identity
        if identity is not None and agent != identity.name:
            raise DomainError(
                f"signed in to the team server as {identity.name}; a record cannot name {agent}"
            )

    def capture(self, event: ConsentEvent) -> Receipt:
        self._check_identity(event.agent)
        catalogue, scripts = self._known_catalogue(), self._known_scripts()
        if catalogue is not None and scripts is not None:
            check_consent(event, catalogue, scripts, utcnow())
        else:  # never seen the server: it admits the record when it syncs
            check_subject(event.subject)
        if event.corrects is not None:
            self._check_correction(event)
        item, added = self.outbox.add(
            ItemKind.CONSENT, event.event_id, event, subject=event.subject, agent=event.agent
        )
        return Receipt(
            event_id=event.event_id,
            seq=0,
            hash="",
            recorded_at=item.queued_at,
            duplicate=not added,
            pending=True,
        )

    def _check_correction(self, event: ConsentEvent) -> None:
        """A correction must name a consent event of the same subject (checked
        against what is known here; the server checks again when it syncs)."""
        try:
            known = {e.event_id for e in self.history(event.subject)}
        except Unavailable:
            return
        if event.corrects not in known:
            raise DomainError(
                f"the corrected event {event.corrects} is not a consent event of this subject"
            )

    def create_request(self, request: NewRequest) -> PrivacyRequest:
        self._check_identity(request.agent)
        # Scripts never seen here: the server checks the notice when it syncs.
        check_new_request(request, self._known_scripts(), utcnow())
        self._check_reference_free(request)
        self.outbox.add(
            ItemKind.REQUEST,
            request.event_id,
            request,
            subject=request.subject,
            agent=request.agent,
            ref=str(request.request_id),
        )
        return self._local_request(request)

    def _check_reference_free(self, request: NewRequest) -> None:
        """A reference names one request (the server checks again when it syncs)."""
        for item in self.outbox.pending_of_kind(ItemKind.REQUEST):
            other = _record(item)
            if isinstance(other, NewRequest) and other.reference == request.reference:
                if other.request_id != request.request_id:
                    raise DomainError(f"reference {request.reference} is already in use")
                return
        try:
            data = self._json("GET", f"/v1/requests/by-reference/{quote(request.reference)}")
        except (NotFound, Unavailable):
            return
        if data.get("request_id") != str(request.request_id):
            raise DomainError(f"reference {request.reference} is already in use")

    def update_request(self, change: RequestChange) -> PrivacyRequest:
        self._check_identity(change.agent)
        created, changes = self._request_records(change.request_id)
        if change.event_id in {c.event_id for c in changes}:
            return fold_request(created, changes, self._calendar)
        check_change(fold_request(created, changes, self._calendar), change, self._calendar)
        self.outbox.add(
            ItemKind.CHANGE,
            change.event_id,
            change,
            subject=created.subject,
            agent=change.agent,
            ref=str(change.request_id),
        )
        return fold_request(created, [*changes, change], self._calendar)

    def save_subject(self, subject: Subject) -> None:
        check_subject(subject.number)
        # Profiles are reference data: any signed-in user may send them (agent "").
        self.outbox.add(ItemKind.PROFILE, uuid.uuid4(), subject, subject=subject.number, agent="")

    # --- privacy requests --------------------------------------------------------

    def _waiting_request(self, request_id: str) -> NewRequest | None:
        for item in self.outbox.pending_for_request(request_id):
            if item.kind == ItemKind.REQUEST:
                record = _record(item)
                assert isinstance(record, NewRequest)
                return record
        return None

    def _waiting_changes(self, request_id: str) -> list[RequestChange]:
        return [
            r
            for i in self.outbox.pending_for_request(request_id)
            if isinstance(r := _record(i), RequestChange)
        ]

    def _local_request(self, request: NewRequest) -> PrivacyRequest:
        waiting = self._waiting_changes(str(request.request_id))
        return fold_request(request, waiting, self._calendar)

    def _request_records(self, request_id: uuid.UUID) -> tuple[NewRequest, list[RequestChange]]:
        """Creation and changes of a request: the server's, then the waiting ones."""
        rid = str(request_id)
        created = self._waiting_request(rid)
        changes: list[RequestChange] = []
        if created is None:
            try:
                data = self._json("GET", f"/v1/requests/{rid}/events", read=True)
                created = new_request_from_json(data["created"])
                changes = [request_change_from_json(c) for c in data["changes"]]
                with self._lock:
                    self._requests[rid] = (created, changes)
            except Unavailable:
                with self._lock:
                    known = self._requests.get(rid)
                if known is None:
                    raise
                created, changes = known[0], list(known[1])
        seen = {c.event_id for c in changes}
        changes += [c for c in self._waiting_changes(rid) if c.event_id not in seen]
        return created, changes

    def requests(
        self, *, number: str | None = None, open_only: bool = False
    ) -> Sequence[PrivacyRequest]:
        query: dict[str, str] = {}
        if number is not None:
            query["number"] = check_subject(number)
        if open_only:
            query["open"] = "true"
        path = "/v1/requests" + (f"?{httpx.QueryParams(query)}" if query else "")
        found = {
            r.request_id: r
            for r in (privacy_request_from_json(d) for d in self._json("GET", path, read=True))
        }
        for item in self.outbox.pending_of_kind(ItemKind.REQUEST):
            record = _record(item)
            assert isinstance(record, NewRequest)
            if record.request_id in found or (number is not None and record.subject != number):
                continue
            local = self._local_request(record)
            if local.is_open or not open_only:
                found[record.request_id] = local
        return tuple(sorted(found.values(), key=lambda r: (r.due, r.received, r.reference)))

    def request(self, request_id: uuid.UUID) -> PrivacyRequest:
        waiting = self._waiting_request(str(request_id))
        if waiting is not None:
            return self._local_request(waiting)
        return self._with_waiting_changes(
            privacy_request_from_json(self._json("GET", f"/v1/requests/{request_id}", read=True))
        )

    def find_request(self, reference: str) -> PrivacyRequest:
        wanted = normalize_reference(reference)
        for item in self.outbox.pending_of_kind(ItemKind.REQUEST):
            record = _record(item)
            if isinstance(record, NewRequest) and record.reference == wanted:
                return self._local_request(record)
        data = self._json("GET", f"/v1/requests/by-reference/{quote(wanted)}", read=True)
        return self._with_waiting_changes(privacy_request_from_json(data))

    def _with_waiting_changes(self, request: PrivacyRequest) -> PrivacyRequest:
        if not self._waiting_changes(str(request.request_id)):
            return request
        created, changes = self._request_records(request.request_id)
        return fold_request(created, changes, self._calendar)

    # --- sync -------------------------------------------------------------------

    def pending_count(self) -> int:
        """Records waiting to sync (for "N waiting to sync")."""
        return self.outbox.pending_count()

    def rejected(self) -> list[OutboxItem]:
        """Records the server refused for good, with its reasons."""
        return self.outbox.rejected()

    def sync_once(self) -> SyncReport:
        """Send waiting records in order; stop at the first one the server cannot take now.

        Runs of ledger records go together through ``/v1/batch`` (one request,
        one commit on the server); the server answers each on its own.
        """
        with self._sync_lock:
            sent: list[tuple[OutboxItem, Any]] = []
            rejected: list[tuple[OutboxItem, str]] = []
            error: str | None = None
            try:
                identity = self._identity or self.me()
            except BackendError as exc:
                return SyncReport(pending=self.outbox.pending_count(), error=str(exc))
            # Another agent's captures wait for that agent's sign-in.
            items = [i for i in self.outbox.pending() if not i.agent or i.agent == identity.name]
            pos = 0
            while pos < len(items) and error is None:
                chunk = _chunk(items, pos) if self._batching else [items[pos]]
                try:
                    answers = self._deliver(chunk)
                except Unavailable as exc:
                    self.outbox.note_failure(chunk[0], str(exc))
                    error = str(exc)
                    break
                for item, (code, body) in zip(chunk, answers, strict=False):
                    verdict, reason = _judge(code, body)
                    if verdict == "sent":
                        sent.append((item, body))
                    elif verdict == "rejected":
                        rejected.append((item, reason))
                    else:
                        if code not in (401, 403):
                            self.outbox.note_failure(item, reason)
                        error = reason
                        break
                pos += len(answers)
            self.outbox.settle([i for i, _ in sent], rejected)
            for item, _ in sent:
                self._remember_sent(item)
            if sent:
                log.info("synced %d record(s)", len(sent))
            return SyncReport(
                sent=tuple(sent),
                rejected=tuple(rejected),
                pending=self.outbox.pending_count(),
                error=error,
            )

    def _deliver(self, chunk: list[OutboxItem]) -> list[tuple[int, Any]]:
        """``(status, body)`` for the first items of *chunk*, in order: all of them,
        or just the first when it went alone or the request failed as a whole."""
        if len(chunk) == 1 or not self._batching:
            return [self._deliver_one(chunk[0])]
        body = (
            '{"records":['
            + ",".join(f'{{"kind":"{i.kind.value}","record":{i.body}}}' for i in chunk)
            + "]}"
        )
        response = self._send("POST", "/v1/batch", body=body)
        if response.status_code in (404, 405):
            self._batching = False  # an older server: one record per request from now on
        if response.status_code in (404, 405, 413):
            return [self._deliver_one(chunk[0])]
        if response.status_code != 200:
            return [(response.status_code, _json_or_none(response))]
        data = _json_or_none(response)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list) or len(results) != len(chunk):
            raise Unavailable("the team server sent a malformed batch answer")
        return [(int(r["status"]), r.get("body")) for r in results]

    def _deliver_one(self, item: OutboxItem) -> tuple[int, Any]:
        method = "PUT" if item.kind == ItemKind.PROFILE else "POST"
        response = self._send(method, _route(item), body=item.body)
        return response.status_code, _json_or_none(response)

    def _remember_sent(self, item: OutboxItem) -> None:
        # Until the next fresh read, offline answers still show what was just sent.
        with self._lock:
            snap = self._snapshots.get(item.subject)
            if snap is not None and (snap.status is not None or snap.history is not None):
                snap.sent_since.append(item)

    def close(self) -> None:
        self._client.close()
        self.outbox.close()


# --- helpers ----------------------------------------------------------------------


def _route(item: OutboxItem) -> str:
    if item.kind == ItemKind.CONSENT:
        return "/v1/consents"
    if item.kind == ItemKind.REQUEST:
        return "/v1/requests"
    if item.kind == ItemKind.CHANGE:
        return f"/v1/requests/{item.ref}/changes"
    return f"/v1/subjects/{quote(item.subject)}/profile"


def _record(item: OutboxItem) -> ConsentEvent | NewRequest | RequestChange | Subject:
    data = item.payload()
    if item.kind == ItemKind.CONSENT:
        return event_from_json(data)
    if item.kind == ItemKind.REQUEST:
        return new_request_from_json(data)
    if item.kind == ItemKind.CHANGE:
        return request_change_from_json(data)
    return subject_from_json(data)


def _catalogue_from(data: Any) -> Catalogue:
    try:
        catalogue = from_jsonable(Catalogue, data)
    except DomainError as exc:
        raise Unavailable(f"the team server sent a malformed catalogue ({exc})") from None
    if not catalogue.purposes:
        raise Unavailable("the team server sent an empty catalogue")
    return catalogue


def _identity_from(raw: str | None) -> Viewer | None:
    if not raw:
        return None
    name, role, team = json.loads(raw)
    return from_jsonable(Viewer, {"name": name, "role": role, "team": team})


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


BATCH_RECORDS = 100
BATCH_BYTES = 56 * 1024  # under the server's 64 KiB body limit, with room for the wrapper


def _chunk(items: list[OutboxItem], start: int) -> list[OutboxItem]:
    """The run of ledger records from *start* that fits one batch (a profile goes alone)."""
    if items[start].kind == ItemKind.PROFILE:
        return [items[start]]
    chunk: list[OutboxItem] = []
    size = 0
    for item in items[start:]:
        if item.kind == ItemKind.PROFILE or len(chunk) == BATCH_RECORDS:
            break
        size += len(item.body.encode("utf-8")) + 40
        if chunk and size > BATCH_BYTES:
            break
        chunk.append(item)
    return chunk


def _judge(code: int, body: Any) -> tuple[str, str]:
    """``sent``, ``rejected`` (for good, with the reason) or ``stop`` (try later)."""
    if code in (200, 201):
        return "sent", ""
    data = body if isinstance(body, dict) else {}
    reason = str(_error_for(code, data, None))
    if code in (401, 403) and data.get("type") != AGENT_MISMATCH:
        return "stop", reason
    if code == 429 or code >= 500:
        return "stop", reason
    return "rejected", f"{code} {reason}"


def _problem_error(response: httpx.Response) -> BackendError | DomainError:
    """The exception a problem+json answer stands for, with its human message."""
    return _error_for(response.status_code, _problem(response), response.reason_phrase)


def _error_for(code: int, data: dict[str, Any], phrase: str | None) -> BackendError | DomainError:
    title = str(data.get("title") or phrase or "error")
    detail = data.get("detail")
    message = f"{title}: {detail}" if isinstance(detail, str) and detail else title
    if code == 401:
        return AuthError(f"the team server does not accept this sign-in ({message})")
    if code == 403:
        if data.get("type") == AGENT_MISMATCH:
            return DomainError(message)
        return Forbidden(message)
    if code == 404:
        return NotFound(message)
    if code in (400, 409, 413, 422):
        return DomainError(message)
    if code == 429 or code >= 500:
        return Unavailable(f"the team server cannot answer right now ({message})")
    return BackendError(f"unexpected answer from the team server: {code} {message}")


def _transport_error(exc: httpx.TransportError, base_url: str) -> BackendError:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return InsecureServer(
                f"the team server's certificate is not trusted ({cause.verify_message}); "
                "ask IT for the CA bundle (server.ca_bundle)"
            )
        cause = cause.__cause__ or cause.__context__
    host = urlsplit(base_url).hostname
    if isinstance(exc, httpx.TimeoutException):
        return Unavailable(f"the team server at {host} did not answer in time")
    return Unavailable(f"cannot reach the team server at {host}")


def open_http_backend(
    server_url: str,
    data_dir: Path,
    *,
    ca_bundle: str | Path | None = None,
    token: str | None = None,
    calendar: Calendar = DEFAULT_CALENDAR,
) -> HttpBackend:
    """The desk's backend for *server_url*: token from the keyring (or
    ``CONSENTDESK_TOKEN``), outbox in *data_dir*."""
    from consentdesk.platform.secrets import resolve_token

    url = check_server_url(server_url)
    token = token or resolve_token(url)
    if not token:
        raise AuthError("not signed in to the team server: open Settings and sign in")
    return HttpBackend(
        url, token, outbox=Outbox.for_server(data_dir, url), ca_bundle=ca_bundle, calendar=calendar
    )
