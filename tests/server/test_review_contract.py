"""One ReviewSource contract: the embedded ledger and the team server (through the
HTTP client, on SQLite and PostgreSQL) give the same rows, paging and figures for
the same records.

The records go in through each store's own front door (``Backend.capture`` on
the desk's ledger; the agents' own tokens on the server), exactly as desks
write them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from server_records import NUMBER, OTHER, THIRD, consent, move, new_request, verify
from server_support import ServerProcess, seed_users, sqlite_url, wipe

from consentdesk.domain.model import ConsentState, RequestStatus, to_jsonable, utcnow
from consentdesk.domain.review import (
    ActionKind,
    Page,
    ReviewFilter,
    ReviewSource,
    Role,
    SortKey,
    Viewer,
    parse_search,
)
from consentdesk.server import db
from consentdesk.stores.http_backend import HttpBackend
from consentdesk.stores.http_review import HttpReviewSource
from consentdesk.stores.ledger import EmbeddedLedger, open_ledger
from consentdesk.stores.outbox import Outbox
from consentdesk.stores.review_sql import SqlReviewSource

LENA = Viewer("lena", Role.LEAD, "red")
ADAM = Viewer("adam", Role.ADMIN)
TEAMS = {"alice": "red", "lena": "red", "dora": "red", "bert": "blue"}
BERLIN = ZoneInfo("Europe/Berlin")


def records() -> list[tuple[str, Any]]:
    """The same history for every store: ``(kind, record)`` in the order written."""
    now = utcnow()
    given = consent(NUMBER, agent="alice", now=now - timedelta(days=3))
    refused = consent(OTHER, agent="alice", state=ConsentState.REFUSED, now=now - timedelta(days=2))
    corrected = consent(
        OTHER,
        agent="alice",
        corrects=refused.event_id,
        reason="the caller said yes, not no",
        now=now - timedelta(days=1, hours=2),
    )
    withdrawn = consent(
        NUMBER, agent="alice", state=ConsentState.WITHDRAWN, now=now - timedelta(days=1)
    )
    blue = consent(THIRD, agent="bert", call_id="call-7", now=now - timedelta(days=2))
    access = new_request(NUMBER, agent="alice")
    blue_request = new_request(THIRD, agent="bert")
    return [
        ("consent", given),
        ("consent", refused),
        ("consent", blue),
        ("consent", corrected),
        ("consent", withdrawn),
        ("request", access),
        ("request", blue_request),
        ("change", verify(access.request_id, agent="alice")),
        ("change", move(access.request_id, RequestStatus.IN_PROGRESS, agent="lena")),
        ("change", move(access.request_id, RequestStatus.COMPLETED, agent="lena")),
    ]


@dataclass
class Stores:
    """One history written to every store, and a review source per viewer."""

    name: str
    sources: dict[str, ReviewSource]


def _write_embedded(ledger: EmbeddedLedger, history: list[tuple[str, Any]]) -> None:
    for kind, record in history:
        if kind == "consent":
            ledger.capture(record)
        elif kind == "request":
            ledger.create_request(record)
        else:
            ledger.update_request(record)


def _write_http(server: ServerProcess, tokens: dict[str, str], history: list[Any]) -> None:
    paths = {"consent": "/v1/consents", "request": "/v1/requests"}
    for kind, record in history:
        path = paths.get(kind) or f"/v1/requests/{record.request_id}/changes"
        response = httpx.post(
            server.url + path,
            content=json.dumps(to_jsonable(record)),
            headers={"Authorization": f"Bearer {tokens[record.agent]}"},
            timeout=10.0,
        )
        assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def history() -> list[tuple[str, Any]]:
    return records()


@pytest.fixture(scope="module")
def embedded(
    history: list[tuple[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stores]:
    ledger = open_ledger(tmp_path_factory.mktemp("contract-embedded"))
    _write_embedded(ledger, history)
    sources: dict[str, ReviewSource] = {
        v.name: SqlReviewSource(ledger, v, teams=TEAMS) for v in (ADAM, LENA)
    }
    yield Stores("embedded", sources)
    ledger.close()


def _http_stores(name: str, database_url: str, history: list[Any], tmp: Path) -> Iterator[Stores]:
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine)
        wipe(engine)
        tokens = seed_users(engine)
    finally:
        engine.dispose()
    server = ServerProcess(database_url, tmp).start()
    backends: list[HttpBackend] = []
    try:
        _write_http(server, tokens, history)
        sources: dict[str, ReviewSource] = {}
        for viewer in (ADAM, LENA):
            outbox = Outbox.for_server(tmp / viewer.name, server.url)
            backends.append(HttpBackend(server.url, tokens[viewer.name], outbox=outbox))
            sources[viewer.name] = HttpReviewSource(backends[-1], viewer)
        yield Stores(name, sources)
    finally:
        for backend in backends:
            backend.close()
        server.stop()


@pytest.fixture(scope="module")
def http_sqlite(
    history: list[tuple[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stores]:
    tmp = tmp_path_factory.mktemp("contract-sqlite")
    yield from _http_stores("http-sqlite", sqlite_url(tmp / "server.db"), history, tmp)


@pytest.fixture(scope="module")
def http_postgres(
    history: list[tuple[str, Any]], pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stores]:
    tmp = tmp_path_factory.mktemp("contract-pg")
    yield from _http_stores("http-postgres", pg_url, history, tmp)


@pytest.fixture(params=["http_sqlite", pytest.param("http_postgres", marks=pytest.mark.postgres)])
def pair(request: pytest.FixtureRequest, embedded: Stores) -> tuple[Stores, Stores]:
    """The embedded ledger and one server, holding the same history."""
    return embedded, request.getfixturevalue(request.param)


def _all_pages(source: ReviewSource, flt: ReviewFilter, page: Page) -> list[list[Any]]:
    pages = []
    while True:
        result = source.actions(flt, page)
        pages.append([to_jsonable(row) for row in result.rows])
        if result.next is None:
            return pages
        page = Page(limit=page.limit, sort=page.sort, descending=page.descending, after=result.next)


def _days() -> tuple[date, date]:
    today = utcnow().astimezone(BERLIN).date()
    return today - timedelta(days=6), today


@pytest.mark.parametrize("viewer", ["adam", "lena"])
@pytest.mark.parametrize(
    "flt",
    [
        ReviewFilter(),
        ReviewFilter(kinds=(ActionKind.CONSENT, ActionKind.CORRECTION)),
        ReviewFilter(agent="alice"),
        ReviewFilter(purpose="marketing-offers"),
    ],
    ids=["all", "consents", "alice", "purpose"],
)
@pytest.mark.parametrize("sort", [SortKey.TIME, SortKey.AGENT])
def test_the_same_rows_in_the_same_pages(
    pair: tuple[Stores, Stores], viewer: str, flt: ReviewFilter, sort: SortKey
) -> None:
    desk, server = pair
    page = Page(limit=2, sort=sort)
    expected = _all_pages(desk.sources[viewer], flt, page)
    assert sum(len(p) for p in expected) > 0
    got = _all_pages(server.sources[viewer], flt, page)
    if got != expected:  # name the first field that differs
        for a_page, b_page in zip(got, expected, strict=False):
            for a, b in zip(a_page, b_page, strict=False):
                diff = {
                    k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)
                }
                assert not diff, (server.name, diff)
    assert got == expected


def test_scope_holds_the_same_way(pair: tuple[Stores, Stores]) -> None:
    for stores in pair:
        everyone = stores.sources["adam"].actions(ReviewFilter(), Page()).rows
        red = stores.sources["lena"].actions(ReviewFilter(), Page()).rows
        assert len(everyone) == 10, stores.name
        assert {r.agent for r in red} == {"alice", "lena"}, stores.name


@pytest.mark.parametrize("viewer", ["adam", "lena"])
def test_the_same_figures(pair: tuple[Stores, Stores], viewer: str) -> None:
    first, last = _days()
    desk, server = pair
    expected = desk.sources[viewer].figures(first, last, tz=BERLIN)
    assert server.sources[viewer].figures(first, last, tz=BERLIN) == expected
    rates = {r.purpose: (r.given, r.refused, r.withdrawn) for r in expected.purpose_rates}
    # The refusal was corrected to a consent: it counts as given, once.
    given = 3 if viewer == "adam" else 2
    assert rates["marketing-offers"] == (given, 0, 1)
    assert sum(f.opened for f in expected.request_flow) == (2 if viewer == "adam" else 1)
    assert sum(f.closed for f in expected.request_flow) == 1
    assert expected.open_requests == (1 if viewer == "adam" else 0)


@pytest.mark.parametrize("viewer", ["adam", "lena"])
def test_the_same_request_queue(pair: tuple[Stores, Stores], viewer: str) -> None:
    today = utcnow().astimezone(BERLIN).date()
    desk, server = pair

    def queue(source: ReviewSource) -> list[tuple[str, str, int]]:
        return [
            (q.request.reference, q.bucket.value, q.days_left) for q in source.request_queue(today)
        ]

    assert queue(server.sources[viewer]) == queue(desk.sources[viewer])


def test_a_reference_or_its_start_finds_the_same_rows(
    pair: tuple[Stores, Stores], history: list[tuple[str, Any]]
) -> None:
    reference = next(r for kind, r in history if kind == "request").reference
    desk, server = pair
    for typed in (reference, reference[:7]):
        flt = ReviewFilter(search=parse_search(typed, region="DE"))
        expected = _all_pages(desk.sources["adam"], flt, Page(limit=2))
        assert {row["reference"] for page in expected for row in page} == {reference}
        assert sum(len(p) for p in expected) == 4  # the request and its three moves
        assert _all_pages(server.sources["adam"], flt, Page(limit=2)) == expected
