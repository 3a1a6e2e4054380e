"""Building consent events and privacy requests from agent input."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from consentdesk.domain import rules
from consentdesk.domain.capture import consent_event, privacy_request
from consentdesk.domain.catalogue import Catalogue, load_catalogue
from consentdesk.domain.model import (
    Channel,
    CollectionMethod,
    ConsentState,
    DomainError,
    Jurisdiction,
    LawfulBasis,
    RequestType,
    Verification,
    VerificationResult,
)
from consentdesk.domain.references import is_valid_reference, new_reference
from consentdesk.domain.scripts import (
    RenderedScript,
    Script,
    ScriptKind,
    load_scripts,
    parse_script,
    render,
    script_context,
    select_script,
)

NOW = datetime(2024, 3, 4, 10, 30, tzinfo=UTC)
SUBJECT = "+4915112345678"
GDPR, CCPA = Jurisdiction.GDPR, Jurisdiction.CCPA


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def scripts() -> tuple[Script, ...]:
    return load_scripts()


def rendered(
    scripts: tuple[Script, ...],
    catalogue: Catalogue,
    kind: ScriptKind,
    purpose: str = "marketing-offers",
    channel: Channel = Channel.PHONE,
    language: str = "en",
) -> RenderedScript:
    script = select_script(scripts, kind=kind, language=language, on=NOW.date())
    context = script_context(
        language=language,
        company="Example Energy GmbH",
        agent_name="Sam",
        purposes=[catalogue.get(purpose)],
        channels=[channel],
    )
    return render(script, context)


def request_script(
    scripts: tuple[Script, ...], t: RequestType, j: Jurisdiction, reference: str
) -> RenderedScript:
    script = select_script(
        scripts, kind=ScriptKind.REQUEST, language="en", request_type=t, jurisdiction=j
    )
    due = rules.due_date(j, t, NOW.date())
    context = script_context(
        language="en", company="Example Energy GmbH", agent_name="Sam", reference=reference, due=due
    )
    return render(script, context)


def test_consent_given_records_the_notice_basis_and_validity(
    scripts: tuple[Script, ...], catalogue: Catalogue
) -> None:
    notice = rendered(scripts, catalogue, ScriptKind.CONSENT)
    event = consent_event(
        catalogue=catalogue,
        purpose="marketing-offers",
        channel=Channel.PHONE,
        state=ConsentState.GIVEN,
        rendered=notice,
        agent=" agent-7 ",
        jurisdiction=GDPR,
        call_id="call-1",
        subject=SUBJECT,
        now=NOW,
    )
    assert event.lawful_basis == LawfulBasis.CONSENT
    assert event.valid_until == NOW + timedelta(days=730)
    assert event.notice == notice.notice()
    assert event.notice.sha256 == notice.sha256
    assert event.agent == "agent-7" and event.call_id == "call-1"
    assert event.method == CollectionMethod.VERBAL_CALL
    assert event.at == NOW and event.corrects is None


def test_refusal_and_purposes_without_validity_have_no_expiry(
    scripts: tuple[Script, ...], catalogue: Catalogue
) -> None:
    refused = consent_event(
        catalogue=catalogue,
        purpose="marketing-offers",
        channel=Channel.PHONE,
        state=ConsentState.REFUSED,
        rendered=rendered(scripts, catalogue, ScriptKind.CONSENT),
        agent="a",
        jurisdiction=GDPR,
        subject=SUBJECT,
        now=NOW,
    )
    assert refused.valid_until is None
    recording = consent_event(
        catalogue=catalogue,
        purpose="call-recording",
        channel=Channel.PHONE,
        state=ConsentState.GIVEN,
        rendered=rendered(scripts, catalogue, ScriptKind.CONSENT, "call-recording"),
        agent="a",
        jurisdiction=GDPR,
        subject=SUBJECT,
        now=NOW,
    )
    assert recording.valid_until is None


def test_withdrawal_needs_the_withdrawal_script(
    scripts: tuple[Script, ...], catalogue: Catalogue
) -> None:
    consent = rendered(scripts, catalogue, ScriptKind.CONSENT)
    withdrawal = rendered(scripts, catalogue, ScriptKind.WITHDRAWAL, language="de")
    common = {
        "catalogue": catalogue,
        "purpose": "marketing-offers",
        "channel": Channel.PHONE,
        "agent": "a",
        "jurisdiction": GDPR,
        "subject": SUBJECT,
        "now": NOW,
    }
    event = consent_event(state=ConsentState.WITHDRAWN, rendered=withdrawal, **common)  # type: ignore[arg-type]
    assert event.state == ConsentState.WITHDRAWN and event.notice.language == "de"
    with pytest.raises(DomainError, match="needs a withdrawal script"):
        consent_event(state=ConsentState.WITHDRAWN, rendered=consent, **common)  # type: ignore[arg-type]
    with pytest.raises(DomainError, match="needs a consent script"):
        consent_event(state=ConsentState.GIVEN, rendered=withdrawal, **common)  # type: ignore[arg-type]


def test_consent_checks(scripts: tuple[Script, ...], catalogue: Catalogue) -> None:
    notice = rendered(scripts, catalogue, ScriptKind.CONSENT)

    def capture(**overrides: object) -> None:
        args: dict[str, object] = {
            "catalogue": catalogue,
            "purpose": "marketing-offers",
            "channel": Channel.PHONE,
            "state": ConsentState.GIVEN,
            "rendered": notice,
            "agent": "a",
            "jurisdiction": GDPR,
            "subject": SUBJECT,
            "now": NOW,
        }
        args.update(overrides)
        consent_event(**args)  # type: ignore[arg-type]

    with pytest.raises(DomainError, match="unknown purpose"):
        capture(purpose="lottery")
    with pytest.raises(DomainError, match="does not apply to channel online"):
        capture(channel=Channel.ONLINE)
    with pytest.raises(DomainError, match="does not apply under gdpr"):
        capture(purpose="sale-sharing", channel=Channel.ONLINE)
    with pytest.raises(DomainError, match=r"E\.164"):
        capture(subject="0151 12345678")
    with pytest.raises(DomainError, match="agent is required"):
        capture(agent="  ")
    with pytest.raises(DomainError, match="timezone-aware"):
        capture(now=datetime(2024, 3, 4, 10, 30))
    with pytest.raises(DomainError, match="only be recorded as a correction"):
        capture(state=ConsentState.VOID)
    with pytest.raises(DomainError, match="cannot be recorded"):
        capture(state=ConsentState.EXPIRED, corrects=uuid.uuid4(), reason="x")
    with pytest.raises(DomainError, match="only recorded with a correction"):
        capture(reason="typo")
    with pytest.raises(DomainError, match="correction needs a reason"):
        capture(corrects=uuid.uuid4(), reason=" ")
    access = request_script(scripts, RequestType.ACCESS, GDPR, new_reference())
    with pytest.raises(DomainError, match="for privacy requests, not consent"):
        capture(rendered=access)


def test_script_must_cover_purpose_and_jurisdiction(catalogue: Catalogue) -> None:
    text = """---
version = "1"
kind = "consent"
purposes = ["call-recording"]
jurisdiction = "ccpa"
effective_from = 2024-01-01
---
::: verbatim
May we record this call?
:::
"""
    notice = render(parse_script(text, script_id="consent-recording", language="en"), {})

    def capture(purpose: str, jurisdiction: Jurisdiction) -> None:
        consent_event(
            catalogue=catalogue,
            purpose=purpose,
            channel=Channel.PHONE,
            state=ConsentState.GIVEN,
            rendered=notice,
            agent="a",
            jurisdiction=jurisdiction,
            subject=SUBJECT,
            now=NOW,
        )

    capture("call-recording", CCPA)
    with pytest.raises(DomainError, match="does not cover purpose 'marketing-offers'"):
        capture("marketing-offers", CCPA)
    with pytest.raises(DomainError, match="is for ccpa, not gdpr"):
        capture("call-recording", GDPR)


def test_correction_names_the_event_and_reason(
    scripts: tuple[Script, ...], catalogue: Catalogue
) -> None:
    notice = rendered(scripts, catalogue, ScriptKind.CONSENT)
    wrong = uuid.uuid4()
    event = consent_event(
        catalogue=catalogue,
        purpose="marketing-offers",
        channel=Channel.PHONE,
        state=ConsentState.VOID,
        rendered=notice,
        agent="lead-1",
        jurisdiction=GDPR,
        subject=SUBJECT,
        now=NOW,
        corrects=wrong,
        reason=" recorded on the wrong caller ",
    )
    assert event.corrects == wrong
    assert event.correction_reason == "recorded on the wrong caller"
    assert event.valid_until is None


def test_privacy_request_defaults(scripts: tuple[Script, ...]) -> None:
    new = privacy_request(
        subject=SUBJECT, type=RequestType.ACCESS, jurisdiction=GDPR, agent="a", now=NOW
    )
    assert is_valid_reference(new.reference)
    assert new.received == NOW.astimezone().date()
    assert new.at == NOW and new.notice is None and new.verification is None
    other = privacy_request(
        subject=SUBJECT, type=RequestType.ACCESS, jurisdiction=GDPR, agent="a", now=NOW
    )
    assert other.reference != new.reference and other.request_id != new.request_id


def test_privacy_request_with_script_reference_and_verification(
    scripts: tuple[Script, ...],
) -> None:
    reference = new_reference()
    notice = request_script(scripts, RequestType.ERASURE, CCPA, reference)
    check = Verification("name, address, date of birth", VerificationResult.PASSED, "a", NOW)
    new = privacy_request(
        subject=SUBJECT,
        type=RequestType.ERASURE,
        jurisdiction=CCPA,
        agent="a",
        received=date(2024, 3, 1),
        call_id=" call-9 ",
        note="  wants written confirmation  ",
        verification=check,
        rendered=notice,
        reference=reference.lower().replace("-", " "),
        now=NOW,
    )
    assert new.reference == reference
    assert new.notice == notice.notice()
    assert reference in new.notice.text
    assert new.call_id == "call-9" and new.note == "wants written confirmation"
    assert new.verification == check and new.received == date(2024, 3, 1)


def test_privacy_request_checks(scripts: tuple[Script, ...]) -> None:
    def create(**overrides: object) -> None:
        args: dict[str, object] = {
            "subject": SUBJECT,
            "type": RequestType.ACCESS,
            "jurisdiction": GDPR,
            "agent": "a",
            "now": NOW,
        }
        args.update(overrides)
        privacy_request(**args)  # type: ignore[arg-type]

    with pytest.raises(DomainError, match="not a request under EU GDPR"):
        create(type=RequestType.OPT_OUT_SALE)
    with pytest.raises(DomainError, match="not a request under California"):
        create(type=RequestType.OBJECTION, jurisdiction=CCPA)
    with pytest.raises(DomainError, match="is in the future"):
        create(received=NOW.date() + timedelta(days=2))
    with pytest.raises(DomainError, match="over 2000 characters"):
        create(note="x" * 2001)
    with pytest.raises(DomainError, match=r"E\.164"):
        create(subject="+49 151")
    not_required = Verification("none", VerificationResult.NOT_REQUIRED, "a", NOW)
    with pytest.raises(DomainError, match="needs identity verification"):
        create(verification=not_required)
    create(type=RequestType.OPT_OUT_SALE, jurisdiction=CCPA, verification=not_required)
    reference = new_reference()
    access = request_script(scripts, RequestType.ACCESS, GDPR, reference)
    with pytest.raises(DomainError, match="not a script for erasure requests"):
        create(type=RequestType.ERASURE, rendered=access, reference=reference)
    with pytest.raises(DomainError, match="carries a different reference"):
        create(rendered=access)
    with pytest.raises(DomainError, match="carries a different reference"):
        create(rendered=access, reference=new_reference())
    with pytest.raises(DomainError, match="check character"):
        create(rendered=access, reference=reference[:-1] + ("A" if reference[-1] != "A" else "B"))
    ccpa_access = request_script(scripts, RequestType.ACCESS, CCPA, reference)
    with pytest.raises(DomainError, match="is for ccpa, not gdpr"):
        create(rendered=ccpa_access, reference=reference)
    create(rendered=access, reference=reference)


def test_german_script_reads_german_purpose_titles() -> None:
    from consentdesk.domain.catalogue import load_catalogue
    from consentdesk.domain.scripts import script_context

    purpose = load_catalogue().get("call-recording")
    de = script_context(language="de", company="ACME", agent_name="Eva", purposes=(purpose,))
    en = script_context(language="en", company="ACME", agent_name="Eva", purposes=(purpose,))
    assert "Gesprächsaufzeichnung" in de["purposes"]
    assert en["purposes"] == purpose.title
