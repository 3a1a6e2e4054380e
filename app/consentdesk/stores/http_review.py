"""Review, QA flags and incident mode over the team server's HTTP API.

:class:`HttpReviewSource` and :class:`HttpIncidents` speak the same protocols
as the embedded ledger's (``ReviewSource``, ``IncidentSource``) through the
signed-in client of an :class:`~consentdesk.stores.http_backend.HttpBackend`. The
server enforces every scope (leads: own team; admins: all; agents: 403 on the
review); the checks here only fail early with the same answer. Reads the
server logs itself (details, revealed numbers, exports) are not logged twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, tzinfo
from typing import Any
from urllib.parse import quote

import httpx

from consentdesk.domain.backend import Unavailable
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.incident import (
    AuthorityNotified,
    CallTag,
    HourCount,
    Incident,
    IncidentNote,
    IncidentOpened,
)
from consentdesk.domain.model import (
    ConsentEvent,
    DomainError,
    NewRequest,
    PrivacyRequest,
    RequestChange,
    event_from_json,
    new_request_from_json,
    privacy_request_from_json,
    request_change_from_json,
    to_jsonable,
    utcnow,
)
from consentdesk.domain.review import (
    MAX_PAGE,
    ActionDetail,
    ActionKind,
    ActionRow,
    Cursor,
    Figures,
    Flag,
    FlagNote,
    Forbidden,
    IntegrityReport,
    Page,
    PageResult,
    QueueItem,
    ReadAccess,
    ReadLogEntry,
    ReadLogFilter,
    ReviewFilter,
    Role,
    Search,
    SearchKind,
    SortKey,
    Viewer,
    check_notice,
    day_bounds,
    from_jsonable,
    request_queue,
)
from consentdesk.domain.scripts import Script
from consentdesk.stores.http_backend import HttpBackend, _problem_error, _transport_error

# httpx query parameters; list is invariant, so the element type is httpx's own.
Params = list[tuple[str, str | int | float | bool | None]]
_CONSENT_KINDS = frozenset(
    {ActionKind.CONSENT, ActionKind.REFUSAL, ActionKind.WITHDRAWAL, ActionKind.CORRECTION}
)


class _Api:
    """Requests through a backend's signed-in client, errors mapped as the backend maps them."""

    def __init__(self, backend: HttpBackend) -> None:
        self._backend = backend

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        record: object | None = None,
        call_id: str | None = None,
    ) -> Any:
        headers: dict[str, str] = {}
        content: bytes | None = None
        if record is not None:
            content = json.dumps(to_jsonable(record), ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        # Only the call a read is for: the backend's current caller is not the
        # reason a lead opens a record in the review.
        if call_id:
            headers["X-Call-Id"] = call_id
        try:
            response = self._backend._client.request(
                method,
                path,
                params=params,
                content=content,
                headers=headers,
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, self._backend.base_url) from None
        if response.status_code >= 400:
            raise _problem_error(response)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise Unavailable("the team server sent an answer that is not JSON") from None


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _when(value: datetime) -> str:
    return value.isoformat()


def filter_params(flt: ReviewFilter, page: Page) -> Params:
    """The query parameters of ``/v1/review/actions`` and ``/v1/review/export``."""
    params: Params = []
    for name in ("agent", "team", "purpose"):
        value = getattr(flt, name)
        if value is not None:
            params.append((name, str(value)))
    if flt.since is not None:
        params.append(("since", _when(flt.since)))
    if flt.until is not None:
        params.append(("until", _when(flt.until)))
    params += [("action", kind.value) for kind in flt.kinds]
    if flt.channel is not None:
        params.append(("channel", flt.channel.value))
    if flt.jurisdiction is not None:
        params.append(("jurisdiction", flt.jurisdiction.value))
    if flt.flagged is not None:
        params.append(("flagged", _flag(flt.flagged)))
    if flt.search is not None:
        params += [("search_kind", flt.search.kind.value), ("search", flt.search.value)]
    params += [
        ("sort", page.sort.value),
        ("descending", _flag(page.descending)),
        ("limit", str(page.limit)),
    ]
    if page.after is not None:
        params.append(("after", page.after.token()))
    if page.offset:
        params.append(("offset", str(page.offset)))
    return params


def _page(data: Any) -> PageResult:
    rows = tuple(from_jsonable(ActionRow, r) for r in data["rows"])
    token = data["next"]
    return PageResult(rows=rows, next=Cursor.from_token(token) if token else None)


def _record(kind: ActionKind, data: Any) -> ConsentEvent | NewRequest | RequestChange:
    if kind in _CONSENT_KINDS:
        return event_from_json(data)
    if kind == ActionKind.REQUEST:
        return new_request_from_json(data)
    return request_change_from_json(data)


class HttpIncidents:
    """:class:`~consentdesk.domain.incident.IncidentSource` on the team server: every
    user reads incidents and tags calls; leads and admins open, notify and close."""

    def __init__(self, backend: HttpBackend, viewer: Viewer) -> None:
        self._api = _Api(backend)
        self._viewer = viewer

    def incidents(self, *, open_only: bool = False) -> Sequence[Incident]:
        found = self._api.call("GET", "/v1/incidents", params=[("open", _flag(open_only))])
        return tuple(from_jsonable(Incident, i) for i in found)

    def record_incident(self, note: IncidentNote) -> Incident:
        if isinstance(note, IncidentOpened):
            path = "/v1/incidents"
        elif isinstance(note, AuthorityNotified):
            path = f"/v1/incidents/{note.incident_id}/notify"
        else:
            path = f"/v1/incidents/{note.incident_id}/close"
        return from_jsonable(Incident, self._api.call("POST", path, record=note))

    def tag_call(self, tag: CallTag) -> CallTag:
        if tag.agent != self._viewer.name:
            raise Forbidden("calls are tagged in the signed-in user's name")
        path = f"/v1/incidents/{tag.incident_id}/calls"
        return from_jsonable(CallTag, self._api.call("POST", path, record=tag))

    def call_tags(self, incident_id: uuid.UUID) -> Sequence[CallTag]:
        found = self._api.call("GET", f"/v1/incidents/{incident_id}/calls")
        return tuple(from_jsonable(CallTag, t) for t in found)

    def calls_per_hour(
        self, incident_id: uuid.UUID, since: datetime, until: datetime
    ) -> Sequence[HourCount]:
        """Tagged calls per UTC hour in ``[since, until)``, counted by the server."""
        found = self._api.call(
            "GET",
            f"/v1/incidents/{incident_id}/calls/per-hour",
            params=[("since", _when(since)), ("until", _when(until))],
        )
        return tuple(from_jsonable(HourCount, h) for h in found)


class HttpReviewSource(HttpIncidents):
    """:class:`~consentdesk.domain.review.ReviewSource` on the team server for a lead
    or admin. Shares *backend* (its client and sign-in) and does not close it."""

    def __init__(self, backend: HttpBackend, viewer: Viewer) -> None:
        viewer.require_reviewer()
        super().__init__(backend, viewer)
        self._backend = backend
        self._scripts: tuple[Script, ...] | None = None

    @property
    def viewer(self) -> Viewer:
        return self._viewer

    def catalogue(self) -> Catalogue:
        return self._backend.catalogue()

    def scripts(self) -> Sequence[Script]:
        if self._scripts is None:
            self._scripts = tuple(self._backend.scripts())
        return self._scripts

    # -- actions

    def actions(self, flt: ReviewFilter, page: Page) -> PageResult:
        data = self._api.call("GET", "/v1/review/actions", params=filter_params(flt, page))
        return _page(data)

    def reveal_number(self, event_id: uuid.UUID, *, call_id: str | None = None) -> str:
        path = f"/v1/review/actions/{event_id}/number"
        return str(self._api.call("GET", path, call_id=call_id)["number"])

    def action(self, event_id: uuid.UUID) -> ActionDetail:
        data = self._api.call("GET", f"/v1/review/actions/{event_id}")
        row = from_jsonable(ActionRow, data["row"])
        record = _record(row.kind, data["record"])
        notice = record.notice if isinstance(record, ConsentEvent | NewRequest) else None
        # The detail row carries the full number: the customer's history and
        # the call's other actions come from the same scoped listing.
        history = self._all_rows(ReviewFilter(search=Search(SearchKind.NUMBER, row.subject)))
        call_actions = (
            self._all_rows(ReviewFilter(search=Search(SearchKind.CALL, row.call_id)))
            if row.call_id
            else ()
        )
        request = None
        if isinstance(record, NewRequest | RequestChange):
            found = self._api.call("GET", f"/v1/requests/{record.request_id}")
            request = privacy_request_from_json(found)
        return ActionDetail(
            row=row,
            record=record,
            notice=notice,
            script_check=check_notice(notice, self.scripts()),
            ledger_hash=str(data["ledger_hash"]),
            call_actions=call_actions,
            history=history,
            flags=tuple(f for f in self.flags(open_only=False) if f.event_id == event_id),
            request=request,
        )

    def _all_rows(self, flt: ReviewFilter) -> tuple[ActionRow, ...]:
        rows: list[ActionRow] = []
        page = Page(limit=MAX_PAGE, descending=False)
        while True:
            result = self.actions(flt, page)
            rows += result.rows
            if result.next is None:
                return tuple(rows)
            page = Page(limit=MAX_PAGE, descending=False, after=result.next)

    def _export(self, flt: ReviewFilter) -> Iterator[tuple[ActionRow, Any]]:
        page = Page(limit=MAX_PAGE, sort=SortKey.TIME, descending=False)
        while True:
            data = self._api.call("GET", "/v1/review/export", params=filter_params(flt, page))
            result = _page(data)
            yield from zip(result.rows, data["records"], strict=True)
            if result.next is None:
                return
            page = Page(limit=MAX_PAGE, sort=SortKey.TIME, descending=False, after=result.next)

    def export_actions(self, flt: ReviewFilter) -> Iterator[ActionRow]:
        for row, _record_data in self._export(flt):
            yield row

    def export_events(self, flt: ReviewFilter) -> Iterator[ConsentEvent]:
        for row, record in self._export(flt):
            if row.kind in _CONSENT_KINDS:
                yield event_from_json(record)

    def customer_history(self, number: str) -> Sequence[ConsentEvent]:
        found = self._api.call("GET", f"/v1/subjects/{quote(number)}/history")
        return tuple(event_from_json(e) for e in found)

    def _people(self) -> Any:
        return self._api.call("GET", "/v1/review/people")

    def agents(self) -> Sequence[str]:
        return tuple(str(a) for a in self._people()["agents"])

    def teams(self) -> Sequence[str]:
        return tuple(str(t) for t in self._people()["teams"])

    # -- flags

    def record_flag(self, note: FlagNote) -> Flag:
        if note.by != self._viewer.name:
            raise Forbidden("flags are recorded in the signed-in user's name")
        return from_jsonable(Flag, self._api.call("POST", "/v1/review/flags", record=note))

    def flags(self, *, open_only: bool = True) -> Sequence[Flag]:
        found = self._api.call("GET", "/v1/review/flags", params=[("open", _flag(open_only))])
        return tuple(from_jsonable(Flag, f) for f in found)

    # -- privacy requests

    def request_queue(self, today: date) -> Sequence[QueueItem]:
        found = self._api.call("GET", "/v1/requests", params=[("open", "true")])
        pending = [privacy_request_from_json(r) for r in found]
        if self._viewer.role == Role.LEAD:
            team = set(self.agents())
            pending = [r for r in pending if r.agent in team]
        return request_queue(pending, today)

    def move_request(self, change: RequestChange) -> PrivacyRequest:
        if change.agent != self._viewer.name:
            raise Forbidden("status moves are recorded in the signed-in user's name")
        path = f"/v1/requests/{change.request_id}/changes"
        return privacy_request_from_json(self._api.call("POST", path, record=change))

    # -- figures, read log, integrity

    def figures(self, first_day: date, last_day: date, *, tz: tzinfo) -> Figures:
        if last_day < first_day:
            raise DomainError("the date range ends before it starts")
        days = day_bounds(first_day, last_day, tz)
        edges = [start for _day, start, _end in days] + [days[-1][2]]
        params: Params = [("first", first_day.isoformat())]
        params += [("edge", _when(e)) for e in edges]
        params.append(("today", utcnow().astimezone(tz).date().isoformat()))
        return from_jsonable(Figures, self._api.call("GET", "/v1/review/figures", params=params))

    def log_read(self, read: ReadAccess) -> None:
        if read.reader != self._viewer.name:
            raise Forbidden("reads are logged in the signed-in user's name")
        self._api.call("POST", "/v1/review/read-log", record=read)

    def read_log(self, flt: ReadLogFilter) -> Sequence[ReadLogEntry]:
        params: Params = [("limit", str(max(1, min(flt.limit, MAX_PAGE))))]
        if flt.reader is not None:
            params.append(("reader", flt.reader))
        if flt.subject is not None:
            params.append(("subject", flt.subject))
        if flt.since is not None:
            params.append(("since", _when(flt.since)))
        if flt.until is not None:
            params.append(("until", _when(flt.until)))
        if flt.before_seq is not None:
            params.append(("before", str(flt.before_seq)))
        found = self._api.call("GET", "/v1/review/read-log", params=params)
        return tuple(from_jsonable(ReadLogEntry, e) for e in found)

    def verify(self) -> IntegrityReport:
        return from_jsonable(IntegrityReport, self._api.call("GET", "/v1/review/integrity"))

    def close(self) -> None:
        """Nothing of its own to close: the backend's client is the caller's."""
