"""Properties of the consent status fold (consentdesk.domain.status.current_status)."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    Jurisdiction,
    LawfulBasis,
    Notice,
    PrivacyRequest,
    Purpose,
    RequestStatus,
    RequestType,
)
from consentdesk.domain.status import current_status, effective_events

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
NOTICE = Notice("consent-general", "1", "en", "0" * 64, "text")
PURPOSES = (
    Purpose(
        "marketing", "Marketing", "d", LawfulBasis.CONSENT, (Channel.PHONE, Channel.EMAIL), "m"
    ),
    Purpose("survey", "Survey", "d", LawfulBasis.CONSENT, (Channel.SMS,), "f"),
)
CELLS = [(p.id, ch) for p in PURPOSES for ch in p.channels]
RECORDED = [ConsentState.GIVEN, ConsentState.REFUSED, ConsentState.WITHDRAWN]


def event(
    purpose: str,
    channel: Channel,
    state: ConsentState,
    *,
    valid_until: datetime | None = None,
    corrects: uuid.UUID | None = None,
    at: datetime = NOW - timedelta(days=1),
) -> ConsentEvent:
    return ConsentEvent(
        subject="+4915112345678",
        purpose=purpose,
        channel=channel,
        state=state,
        jurisdiction=Jurisdiction.GDPR,
        lawful_basis=LawfulBasis.CONSENT,
        notice=NOTICE,
        agent="a",
        valid_until=valid_until,
        corrects=corrects,
        correction_reason="mistake" if corrects else None,
        at=at,
    )


@st.composite
def plain_events(draw: st.DrawFn) -> ConsentEvent:
    purpose, channel = draw(st.sampled_from([*CELLS, ("unlisted", Channel.POST)]))
    state = draw(st.sampled_from(RECORDED))
    offset = draw(st.none() | st.integers(-1000, 1000))
    valid_until = NOW + timedelta(minutes=offset) if offset is not None else None
    at = NOW - timedelta(minutes=draw(st.integers(0, 100_000)))
    return event(purpose, channel, state, valid_until=valid_until, at=at)


histories = st.lists(plain_events(), max_size=25)


def expected_state(e: ConsentEvent, now: datetime) -> ConsentState:
    if e.state == ConsentState.GIVEN and e.valid_until is not None and now >= e.valid_until:
        return ConsentState.EXPIRED
    return e.state


@given(histories)
def test_every_catalogue_cell_once_in_catalogue_order(events: list[ConsentEvent]) -> None:
    cells = current_status(events, PURPOSES, NOW)
    assert [(c.purpose, c.channel) for c in cells] == CELLS


def latest(events: list[ConsentEvent]) -> ConsentEvent:
    """The event a cell's history leaves standing: latest time, then withdrawal/refusal."""
    rank = {ConsentState.GIVEN: 0, ConsentState.REFUSED: 1, ConsentState.WITHDRAWN: 2}
    return max(events, key=lambda e: (e.at, rank[e.state], str(e.event_id)))


@given(histories)
def test_latest_event_time_wins(events: list[ConsentEvent]) -> None:
    for cell in current_status(events, PURPOSES, NOW):
        mine = [e for e in events if (e.purpose, e.channel) == (cell.purpose, cell.channel)]
        if not mine:
            assert cell.state == ConsentState.UNKNOWN and cell.event is None
            continue
        assert cell.event is latest(mine)  # event time, not ledger order
        assert cell.state == expected_state(latest(mine), NOW)


@settings(deadline=None, max_examples=60)  # up to 200 orders each: no per-example deadline
@given(st.lists(plain_events(), max_size=7), st.randoms(use_true_random=False))
def test_every_arrival_order_gives_the_same_status(
    events: list[ConsentEvent], rnd: random.Random
) -> None:
    expected = current_status(events, PURPOSES, NOW)
    for order in itertools.islice(itertools.permutations(events), 200):
        assert current_status(list(order), PURPOSES, NOW) == expected
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert current_status(shuffled, PURPOSES, NOW) == expected


@given(st.sampled_from(CELLS), st.sampled_from([ConsentState.REFUSED, ConsentState.WITHDRAWN]))
def test_at_equal_time_refusal_and_withdrawal_beat_given(
    cell: tuple[str, Channel], state: ConsentState
) -> None:
    given_event, other = event(*cell, ConsentState.GIVEN), event(*cell, state)
    for history in ([given_event, other], [other, given_event]):
        (c,) = [c for c in current_status(history, PURPOSES, NOW) if (c.purpose, c.channel) == cell]
        assert c.state == state


def test_an_older_given_synced_after_a_newer_withdrawal_leaves_withdrawn() -> None:
    cell = CELLS[0]
    withdrawn = event(*cell, ConsentState.WITHDRAWN, at=NOW - timedelta(hours=1))
    older_given = event(*cell, ConsentState.GIVEN, at=NOW - timedelta(hours=2))
    (c,) = [
        c
        for c in current_status([withdrawn, older_given], PURPOSES, NOW)
        if c.purpose == cell[0] and c.channel == cell[1]
    ]
    assert c.state == ConsentState.WITHDRAWN and c.event is withdrawn


@given(histories)
def test_never_asked_is_unknown(events: list[ConsentEvent]) -> None:
    assume(not any(e.purpose == "survey" for e in events))
    (survey,) = [c for c in current_status(events, PURPOSES, NOW) if c.purpose == "survey"]
    assert survey.state == ConsentState.UNKNOWN
    assert survey.event is None and survey.expires is None
    assert all(c.state == ConsentState.UNKNOWN for c in current_status([], PURPOSES, NOW))


@given(st.integers(-10_000, 10_000), st.sampled_from(CELLS))
def test_given_consent_expires_at_valid_until(minutes: int, cell: tuple[str, Channel]) -> None:
    until = NOW + timedelta(minutes=minutes)
    given_event = event(*cell, ConsentState.GIVEN, valid_until=until)
    status = current_status([given_event], PURPOSES, NOW)
    (c,) = [c for c in status if (c.purpose, c.channel) == cell]
    assert c.state == (ConsentState.EXPIRED if minutes <= 0 else ConsentState.GIVEN)
    assert c.expires == until
    later = current_status([given_event], PURPOSES, until)
    assert next(s for s in later if (s.purpose, s.channel) == cell).state == ConsentState.EXPIRED


@given(histories, st.data())
def test_corrected_events_drop_out(events: list[ConsentEvent], data: st.DataObject) -> None:
    assume(events)
    target = data.draw(st.sampled_from(events))
    replacement = data.draw(st.sampled_from([*RECORDED, ConsentState.VOID]))
    correction = event(
        target.purpose, target.channel, replacement, corrects=target.event_id, at=NOW
    )
    with_correction = [*events, correction]
    assert target not in effective_events(with_correction)
    # The correction behaves as if the corrected event had never been recorded
    # and the correction (unless void) were the newest event (it is made last).
    without_target = [e for e in events if e is not target]
    if replacement != ConsentState.VOID:
        without_target.append(correction)
    assert current_status(with_correction, PURPOSES, NOW) == current_status(
        without_target, PURPOSES, NOW
    )


@given(histories, st.sampled_from(CELLS), st.sampled_from(RECORDED), st.sampled_from(RECORDED))
def test_the_later_of_two_events_for_one_cell_stands(
    events: list[ConsentEvent],
    cell: tuple[str, Channel],
    first: ConsentState,
    second: ConsentState,
) -> None:
    assume(first != second)
    a = event(*cell, first, at=NOW + timedelta(minutes=1))
    b = event(*cell, second, at=NOW + timedelta(minutes=2))

    def state(history: list[ConsentEvent]) -> ConsentState:
        status = current_status(history, PURPOSES, NOW)
        return next(c.state for c in status if (c.purpose, c.channel) == cell)

    # Whatever the arrival order, the later event stands.
    assert state([*events, a, b]) == second
    assert state([*events, b, a]) == second


@given(histories, plain_events())
def test_events_only_change_their_own_cell(events: list[ConsentEvent], new: ConsentEvent) -> None:
    before = current_status(events, PURPOSES, NOW)
    after = current_status([*events, new], PURPOSES, NOW)
    for old, cur in zip(before, after, strict=True):
        if (cur.purpose, cur.channel) != (new.purpose, new.channel):
            assert old == cur
        else:
            mine = [
                e for e in [*events, new] if (e.purpose, e.channel) == (new.purpose, new.channel)
            ]
            assert cur.event is latest(mine)


# --- CCPA requests take effect -----------------------------------------------------

SHARING = Purpose(
    "sharing", "Sale", "d", LawfulBasis.CONSENT, (Channel.ONLINE, Channel.EMAIL), "s",
    sale_or_sharing=True,
)  # fmt: skip
SENSITIVE = Purpose(
    "profile", "Profile", "d", LawfulBasis.CONSENT, (Channel.ONLINE,), "p", sensitive=True
)
CCPA_PURPOSES = (*PURPOSES, SHARING, SENSITIVE)


def ccpa_request(
    kind: RequestType, at: datetime, status: RequestStatus = RequestStatus.RECEIVED
) -> PrivacyRequest:
    return PrivacyRequest(
        request_id=uuid.uuid4(),
        reference="RQ-2345-6789-ABCD",
        subject="+4915112345678",
        type=kind,
        jurisdiction=Jurisdiction.CCPA,
        received=at.date(),
        status=status,
        due=at.date() + timedelta(days=21),
        acknowledge_by=None,
        agent="a",
        created_at=at,
        updated_at=at,
    )


def states(events: list[ConsentEvent], requests: list[PrivacyRequest]) -> dict[str, ConsentState]:
    return {
        f"{c.purpose}/{c.channel}": c.state
        for c in current_status(events, CCPA_PURPOSES, NOW, requests)
    }


@pytest.mark.parametrize(
    ("kind", "stopped"),
    [(RequestType.OPT_OUT_SALE, "sharing"), (RequestType.LIMIT_SENSITIVE, "profile")],
)
def test_a_ccpa_request_stops_only_its_purposes(kind: RequestType, stopped: str) -> None:
    given = [
        event(p.id, ch, ConsentState.GIVEN, at=NOW - timedelta(days=2))
        for p in CCPA_PURPOSES
        for ch in p.channels
    ]
    after = states(given, [ccpa_request(kind, NOW - timedelta(days=1))])
    for key, state in after.items():
        expected = ConsentState.OPTED_OUT if key.startswith(stopped + "/") else ConsentState.GIVEN
        assert state == expected, key


def test_a_rejected_or_withdrawn_request_stops_nothing() -> None:
    for status in (RequestStatus.REJECTED, RequestStatus.WITHDRAWN):
        req = ccpa_request(RequestType.OPT_OUT_SALE, NOW - timedelta(days=1), status)
        assert ConsentState.OPTED_OUT not in states([], [req]).values()
    done = ccpa_request(RequestType.OPT_OUT_SALE, NOW - timedelta(days=1), RequestStatus.COMPLETED)
    assert states([], [done])["sharing/online"] == ConsentState.OPTED_OUT


def test_only_a_later_consent_opts_back_in() -> None:
    req = ccpa_request(RequestType.OPT_OUT_SALE, NOW - timedelta(days=1))
    before = event("sharing", Channel.ONLINE, ConsentState.GIVEN, at=NOW - timedelta(days=2))
    same_time = event("sharing", Channel.ONLINE, ConsentState.GIVEN, at=req.created_at)
    later = event("sharing", Channel.ONLINE, ConsentState.GIVEN, at=NOW - timedelta(hours=1))
    assert states([before], [req])["sharing/online"] == ConsentState.OPTED_OUT
    assert states([same_time], [req])["sharing/online"] == ConsentState.OPTED_OUT
    assert states([before, later], [req])["sharing/online"] == ConsentState.GIVEN
    (cell,) = [
        c
        for c in current_status([before], CCPA_PURPOSES, NOW, [req])
        if c.channel == "online" and c.purpose == "sharing"
    ]
    assert cell.request is req and cell.event is None


@settings(deadline=None)
@given(st.lists(plain_events(), max_size=6), st.randoms(use_true_random=False))
def test_requests_and_events_in_any_order_give_the_same_status(
    events: list[ConsentEvent], rnd: random.Random
) -> None:
    requests = [
        ccpa_request(RequestType.OPT_OUT_SALE, NOW - timedelta(minutes=rnd.randrange(100_000))),
        ccpa_request(RequestType.LIMIT_SENSITIVE, NOW - timedelta(minutes=rnd.randrange(100_000))),
    ]
    expected = current_status(events, CCPA_PURPOSES, NOW, requests)
    shuffled, reordered = list(events), list(reversed(requests))
    rnd.shuffle(shuffled)
    assert current_status(shuffled, CCPA_PURPOSES, NOW, reordered) == expected
