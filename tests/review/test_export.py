"""Exports: CSV that cannot inject formulas, 27560 records and Kantara receipts that
validate against the schemas in resources/schemas."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from review_support import (
    ANNA_CUSTOMER,
    CATALOGUE,
    T0,
    consent,
)

from consentdesk.domain.export import (
    CSV_COLUMNS,
    KANTARA_SCHEMA,
    TS27560_SCHEMA,
    Controller,
    ExportError,
    csv_safe,
    kantara_receipt,
    load_schema,
    ts27560_records,
    validate,
    write_actions_csv,
    write_json,
)
from consentdesk.domain.model import Channel, ConsentState, Jurisdiction
from consentdesk.domain.review import ActionKind, ActionRow
from consentdesk.platform.config import Config

BERLIN = ZoneInfo("Europe/Berlin")
CONTROLLER = Controller.from_config(Config.load(site_files=[]))


@pytest.mark.parametrize(
    "payload",
    [
        '=HYPERLINK("http://evil","x")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A2)",
        "\t=1",
        "\r=1",
        "＝1+1",
    ],
)
def test_cells_that_would_run_as_formulas_are_made_text(payload: str) -> None:
    safe = csv_safe(payload)
    assert safe == "'" + payload
    assert csv_safe("plain text, with comma") == "plain text, with comma"
    assert csv_safe(None) == ""


def _row(agent: str, call_id: str | None = "call-1") -> ActionRow:
    return ActionRow(
        seq=7,
        event_id=uuid.uuid4(),
        kind=ActionKind.CONSENT,
        at=T0,
        agent=agent,
        subject="+4915112345678",
        purpose="marketing-offers",
        channel=Channel.PHONE,
        jurisdiction=Jurisdiction.GDPR,
        script_id="consent-general",
        script_version="1",
        call_id=call_id,
    )


def test_csv_round_trips_hostile_text_without_formulas() -> None:
    hostile = '=cmd|"/C calc"!A0,\n"quoted"'
    out = io.StringIO()
    count = write_actions_csv([_row(hostile), _row("anna", call_id="@x")], out, tz=BERLIN)
    assert count == 2
    text = out.getvalue()
    assert text.startswith("\ufeff")  # the byte order mark Excel needs to read UTF-8
    parsed = list(csv.reader(io.StringIO(text[1:])))
    assert tuple(parsed[0]) == CSV_COLUMNS
    first = dict(zip(CSV_COLUMNS, parsed[1], strict=True))
    assert first["agent"] == "'" + hostile  # intact, and inert in a spreadsheet
    assert first["number"] == "'+4915112345678"  # a leading + would start a formula
    assert first["time_local"] == "2025-03-03 10:00:00 CET"
    second = dict(zip(CSV_COLUMNS, parsed[2], strict=True))
    assert second["call_id"] == "'@x"
    for line in parsed[1:]:
        assert not any(cell[:1] in ("=", "+", "-", "@") for cell in line)


def test_schemas_are_valid_json_schemas() -> None:
    for name in (TS27560_SCHEMA, KANTARA_SCHEMA):
        jsonschema.Draft202012Validator.check_schema(load_schema(name))


def _history() -> list:
    given_ = consent(at=T0)
    wrong = consent(channel=Channel.EMAIL, at=T0 + timedelta(minutes=1))
    fixed = consent(
        channel=Channel.EMAIL,
        state=ConsentState.REFUSED,
        at=T0 + timedelta(minutes=2),
        corrects=wrong.event_id,
        reason="customer said no",
    )
    withdrawn = consent(
        purpose="customer-survey", state=ConsentState.WITHDRAWN, at=T0 + timedelta(days=1)
    )
    return [given_, wrong, fixed, withdrawn]


def test_27560_records_validate_and_group_by_consent() -> None:
    events = _history()
    doc = ts27560_records(events, CATALOGUE, CONTROLLER, view="day 2025-03-03")
    validate(doc, TS27560_SCHEMA)
    assert doc["export"]["record_count"] == len(doc["records"]) == 3
    email = next(r for r in doc["records"] if r["processing"]["purposes"][0]["channel"] == "email")
    states = [e["event_state"] for e in email["events"]]
    assert states == ["dpv:ConsentGiven", "dpv:ConsentRefused"]
    assert email["events"][1]["corrects"] == f"urn:uuid:{events[1].event_id}"
    assert email["header"]["pii_principal_id"] == f"tel:{ANNA_CUSTOMER}"
    assert email["processing"]["purposes"][0]["lawful_basis"] == "dpv:Consent"
    assert {p["party_role"] for p in email["parties"]} == {"dpv:DataController", "dpv:DataSubject"}
    # The same consent gets the same record id in every export.
    again = ts27560_records(events, CATALOGUE, CONTROLLER)
    assert [r["header"]["record_id"] for r in again["records"]] == [
        r["header"]["record_id"] for r in doc["records"]
    ]


def test_27560_validation_catches_a_broken_document() -> None:
    doc = ts27560_records(_history(), CATALOGUE, CONTROLLER)
    doc["records"][0]["events"][0]["event_state"] = "dpv:ConsentMaybe"
    with pytest.raises(ExportError, match="event_state"):
        validate(doc, TS27560_SCHEMA)
    del doc["records"][0]["header"]["pii_principal_id"]
    with pytest.raises(ExportError):
        write_json(doc, io.StringIO(), schema_name=TS27560_SCHEMA)


_purposes = st.sampled_from([(p.id, ch) for p in CATALOGUE for ch in p.channels])


@settings(max_examples=40, deadline=None)
@given(
    choices=st.lists(
        st.tuples(_purposes, st.sampled_from(list(ConsentState)[:3]), st.integers(0, 10_000)),
        min_size=1,
        max_size=12,
    ),
    agent=st.text(min_size=1, max_size=30).filter(lambda s: s.strip() != ""),
)
def test_every_27560_export_validates(
    choices: list[tuple[tuple[str, Channel], ConsentState, int]], agent: str
) -> None:
    events = [
        consent(purpose=p, channel=ch, state=state, at=T0 + timedelta(minutes=m), agent=agent)
        for (p, ch), state, m in choices
    ]
    out = io.StringIO()
    write_json(ts27560_records(events, CATALOGUE, CONTROLLER), out, schema_name=TS27560_SCHEMA)
    assert json.loads(out.getvalue())["export"]["record_count"] >= 1


def test_kantara_receipt_lists_consents_in_force() -> None:
    events = _history()
    receipt = kantara_receipt(
        ANNA_CUSTOMER, events, CATALOGUE, CONTROLLER, now=T0 + timedelta(days=2)
    )
    validate(receipt, KANTARA_SCHEMA)
    (service,) = receipt["services"]
    # Phone consent stands; the e-mail one was corrected to a refusal; the survey was withdrawn.
    assert [p["piiCategory"] for p in service["purposes"]] == [["telephone number"]]
    assert receipt["consentTimestamp"] == int(T0.timestamp())
    assert receipt["piiPrincipalId"] == ANNA_CUSTOMER
    assert receipt["version"] == "KI-CR-v1.1.0"


def test_kantara_names_third_parties_when_configured() -> None:
    config = Config.load(site_files=[])
    config.set("privacy.third_parties", ["Partner Versicherung AG"])
    controller = Controller.from_config(config)
    receipt = kantara_receipt(ANNA_CUSTOMER, _history(), CATALOGUE, controller, now=T0)
    validate(receipt, KANTARA_SCHEMA)
    purpose = receipt["services"][0]["purposes"][0]
    assert purpose["thirdPartyDisclosure"] is True
    assert purpose["thirdPartyName"] == "Partner Versicherung AG"


def test_kantara_refuses_what_it_cannot_receipt() -> None:
    withdrawn = [consent(state=ConsentState.WITHDRAWN)]
    with pytest.raises(ExportError, match="no consent in force"):
        kantara_receipt(ANNA_CUSTOMER, withdrawn, CATALOGUE, CONTROLLER, now=T0)
    config = Config.load(site_files=[])
    config.set("privacy.controller_email", "")
    with pytest.raises(ExportError, match=r"privacy\.controller_email"):
        kantara_receipt(
            ANNA_CUSTOMER, _history(), CATALOGUE, Controller.from_config(config), now=T0
        )
    # A consent past its validity is not in force either.
    with pytest.raises(ExportError, match="no consent in force"):
        kantara_receipt(
            ANNA_CUSTOMER, [consent(at=T0)], CATALOGUE, CONTROLLER, now=T0 + timedelta(days=800)
        )
