"""Disclosure scripts: parsing, rendering, selection, and the published-text registry."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentdesk.domain import rules
from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.model import Channel, DomainError, Jurisdiction, RequestType
from consentdesk.domain.scripts import (
    PLACEHOLDERS,
    Block,
    Script,
    ScriptKind,
    covers,
    date_phrase,
    list_phrase,
    load_scripts,
    parse_script,
    placeholders,
    render,
    script_by_id,
    script_context,
    select_script,
)

REGISTRY = Path(__file__).with_name("script_hashes.toml")
REGISTRY_SHOWN = "tests/core/script_hashes.toml"
CONTEXT = {
    "company": "Example Energy GmbH",
    "agent_name": "Sam Meyer",
    "customer_name": "Alex Doe",
    "purposes": "Offers and news from us",
    "purpose_details": "Offers and news from us: We contact you about our tariffs.",
    "channels": "phone and email",
    "reference": "RQ-7KX4-9MPT-3HWC",
    "due_date": "29 February 2024",
}

SIMPLE = """---
version = "2"
kind = "consent"
purposes = ["marketing-offers"]
effective_from = 2024-01-01
---
Hello, this is {{agent_name}} from {{company}}.

::: verbatim
Do you agree to {{purposes}} by {{channels}}?

Please answer yes or no.
:::

Record the answer.
"""


def script(
    *,
    id: str = "consent-general",
    version: str = "1",
    language: str = "en",
    kind: ScriptKind = ScriptKind.CONSENT,
    jurisdiction: Jurisdiction | None = None,
    request_type: RequestType | None = None,
    effective_from: date = date(2024, 1, 1),
) -> Script:
    return Script(
        id=id,
        version=version,
        language=language,
        kind=kind,
        purposes=(),
        jurisdiction=jurisdiction,
        effective_from=effective_from,
        template=f"{id} {version} {language}",
        request_type=request_type,
    )


# --- parsing -----------------------------------------------------------------------


def test_parse_script_reads_front_matter_and_body() -> None:
    s = parse_script(SIMPLE, script_id="consent-x", language="en")
    assert s.id == "consent-x" and s.language == "en" and s.version == "2"
    assert s.kind == ScriptKind.CONSENT
    assert s.purposes == ("marketing-offers",)
    assert s.jurisdiction is None and s.request_type is None
    assert s.effective_from == date(2024, 1, 1)
    assert s.template.startswith("Hello, this is") and s.template.endswith("Record the answer.")
    assert placeholders(s) == {"agent_name", "company", "purposes", "channels"}


def test_template_hash_ignores_line_endings_bom_and_trailing_spaces() -> None:
    base = parse_script(SIMPLE, script_id="c", language="en")
    windows = "\ufeff" + SIMPLE.replace("\n", "  \r\n")
    assert parse_script(windows, script_id="c", language="en").template_sha256 == (
        base.template_sha256
    )
    edited = SIMPLE.replace("yes or no", "yes or no, please")
    assert parse_script(edited, script_id="c", language="en").template_sha256 != (
        base.template_sha256
    )


def test_request_script_and_general_purposes() -> None:
    text = SIMPLE.replace('kind = "consent"', 'kind = "request"\nrequest_type = "access"')
    text = text.replace('purposes = ["marketing-offers"]', 'jurisdiction = "ccpa"')
    s = parse_script(text, script_id="request-x", language="de")
    assert s.kind == ScriptKind.REQUEST and s.request_type == RequestType.ACCESS
    assert s.jurisdiction == Jurisdiction.CCPA
    general = parse_script(
        SIMPLE.replace('["marketing-offers"]', '["*"]'), script_id="c", language="en"
    )
    assert general.purposes == ()
    assert covers(general, "anything")
    specific = parse_script(SIMPLE, script_id="c", language="en")
    assert covers(specific, "marketing-offers") and not covers(specific, "call-recording")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter", "must start with front matter"),
        ('---\nversion = "1"\nHello', "no closing '---'"),
        (SIMPLE.replace('version = "2"', "version = ["), "not valid TOML"),
        (SIMPLE.replace('version = "2"\n', ""), "needs 'version'"),
        (SIMPLE.replace('version = "2"', 'version = "v2"'), "version must look like"),
        (SIMPLE.replace('kind = "consent"', 'kind = "promo"'), "kind must be one of"),
        (SIMPLE.replace("2024-01-01", '"soon"'), "effective_from must be a date"),
        (SIMPLE.replace("kind =", 'title = "x"\nkind ='), "unknown front matter key"),
        (SIMPLE.replace('purposes = ["marketing-offers"]\n', ""), "needs purposes"),
        (SIMPLE.replace('["marketing-offers"]', '["*", "x"]'), "cannot be combined"),
        (SIMPLE.replace('["marketing-offers"]', "[]"), "non-empty list"),
        (SIMPLE.replace('kind = "consent"', 'kind = "request"'), "request_type is required"),
        (SIMPLE.replace("kind =", 'request_type = "access"\nkind ='), "request_type is required"),
        (
            SIMPLE.replace('kind = "consent"', 'kind = "consent"\njurisdiction = "eu"'),
            "jurisdiction",
        ),
        (SIMPLE.replace("{{company}}", "{{compnay}}"), r"unknown placeholder \{\{compnay\}\}"),
        (SIMPLE.replace("{{company}}", "{{company}"), "malformed placeholder"),
        (SIMPLE.replace("{{company}}", "{{ }}"), "malformed placeholder"),
        (SIMPLE.replace("Record the answer.", "::: verbatim\nunclosed"), "opened on line 9"),
        (SIMPLE.replace("Record the answer.", ":::"), "closes no verbatim block"),
        (SIMPLE.replace("Please answer", "::: verbatim\nPlease answer"), "cannot be nested"),
        (SIMPLE.replace("::: verbatim", "::: verbatum"), "unknown block marker"),
        ("---\n" + SIMPLE.split("---\n")[1] + "---\n\n  \n", "has no text"),
    ],
)
def test_load_time_errors(text: str, message: str) -> None:
    with pytest.raises(DomainError, match=message):
        parse_script(text, script_id="consent-x", language="en")


@pytest.mark.parametrize(
    ("script_id", "language"), [("Consent", "en"), ("a b", "en"), ("c", "eng")]
)
def test_bad_ids_and_languages(script_id: str, language: str) -> None:
    with pytest.raises(DomainError):
        parse_script(SIMPLE, script_id=script_id, language=language)


def test_load_scripts_from_a_folder(tmp_path: Path) -> None:
    (tmp_path / "consent-x").mkdir()
    (tmp_path / "consent-x" / "en.md").write_text(SIMPLE, encoding="utf-8")
    (tmp_path / "consent-x" / "notes.txt").write_text("ignored", encoding="utf-8")
    (tmp_path / "README.md").write_text("ignored", encoding="utf-8")
    (loaded,) = load_scripts(tmp_path)
    assert (loaded.id, loaded.language) == ("consent-x", "en")
    (tmp_path / "consent-x" / "de.md").write_bytes(b"\xff\xfe bad")
    with pytest.raises(DomainError, match="cannot read script"):
        load_scripts(tmp_path)
    with pytest.raises(DomainError, match="does not exist"):
        load_scripts(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DomainError, match="no scripts"):
        load_scripts(empty)


# --- rendering ---------------------------------------------------------------------


def test_render_fills_placeholders_and_marks_verbatim_blocks() -> None:
    s = parse_script(SIMPLE, script_id="consent-x", language="en")
    r = render(s, CONTEXT)
    assert r.blocks == (
        Block("Hello, this is Sam Meyer from Example Energy GmbH.", False),
        Block("Do you agree to Offers and news from us by phone and email?", True),
        Block("Please answer yes or no.", True),
        Block("Record the answer.", False),
    )
    assert r.text == "\n\n".join(b.text for b in r.blocks)
    assert ":::" not in r.text and "{{" not in r.text
    assert r.sha256 == hashlib.sha256(r.text.encode()).hexdigest()
    notice = r.notice()
    assert (notice.script_id, notice.version, notice.language) == ("consent-x", "2", "en")
    assert notice.sha256 == r.sha256 and notice.text == r.text


def test_missing_value_is_a_render_error() -> None:
    s = parse_script(SIMPLE, script_id="consent-x", language="en")
    context = {k: v for k, v in CONTEXT.items() if k != "channels"}
    with pytest.raises(DomainError, match=r"needs a value for \{\{channels\}\}"):
        render(s, context)
    with pytest.raises(DomainError, match=r"needs a value for \{\{channels\}\}"):
        render(s, {**CONTEXT, "channels": " \t\u200b "})


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Evil\nCorp", "Evil Corp"),
        ("Evil\n\n::: verbatim", None),
        ("{{agent_name}}", None),
        ("Acme {{", None),
        ("}} Acme", None),
        ("Acme ::: Corp", None),
        ("Ac\u202eme\u200b Corp\x00\x1b[31m", "Acme Corp[31m"),
        ("  lots   of\tspace  ", "lots of space"),
        ("x" * 1001, None),
    ],
)
def test_hostile_values_are_plain_text_or_refused(value: str, shown: str | None) -> None:
    s = parse_script(SIMPLE, script_id="consent-x", language="en")
    if shown is None:
        with pytest.raises(DomainError, match="company"):
            render(s, {**CONTEXT, "company": value})
        return
    r = render(s, {**CONTEXT, "company": value})
    assert r.blocks[0].text == f"Hello, this is Sam Meyer from {shown}."
    assert len(r.blocks) == 4


@given(st.text(max_size=200))
def test_no_value_can_change_the_script_structure(value: str) -> None:
    s = parse_script(SIMPLE, script_id="consent-x", language="en")
    try:
        r = render(s, dict.fromkeys(CONTEXT, value))
    except DomainError:
        return
    assert [b.verbatim for b in r.blocks] == [False, True, True, False]
    assert r.text.count("\n\n") == 3
    assert "{{" not in r.text and ":::" not in r.text
    assert all("\n" not in b.text for b in r.blocks)


def test_script_context_phrases() -> None:
    catalogue = load_catalogue()
    purposes = [catalogue.get("marketing-offers"), catalogue.get("customer-survey")]
    en = script_context(
        language="en",
        company="Example Energy GmbH",
        agent_name="Sam",
        purposes=purposes,
        channels=[Channel.PHONE, Channel.SMS, Channel.EMAIL],
        due=date(2024, 3, 4),
    )
    assert en["purposes"] == "Offers and news from us and Customer surveys"
    assert en["channels"] == "phone, text message and email"
    assert en["due_date"] == "4 March 2024"
    assert en["purpose_details"].startswith("Offers and news from us: We contact you")
    assert "reference" not in en and "customer_name" not in en
    de = script_context(
        language="de", company="X", agent_name="Y", channels=[Channel.EMAIL, Channel.POST]
    )
    assert de["channels"] == "E-Mail und Post"
    assert date_phrase(date(2024, 3, 4), "de") == "4. März 2024"
    assert date_phrase(date(2024, 3, 4), "fr") == "2024-03-04"
    assert list_phrase([], "en") == "" and list_phrase(["a"], "de") == "a"


# --- selection ---------------------------------------------------------------------


def test_select_prefers_language_then_fallback_order() -> None:
    scripts = [script(language="en"), script(language="fr")]
    assert select_script(scripts, kind=ScriptKind.CONSENT, language="fr").language == "fr"
    assert select_script(scripts, kind=ScriptKind.CONSENT, language="de").language == "en"
    picked = select_script(scripts, kind=ScriptKind.CONSENT, language="de", fallback=("fr", "en"))
    assert picked.language == "fr"


def test_missing_language_without_fallback_is_a_clear_error() -> None:
    scripts = [script(language="en")]
    with pytest.raises(DomainError, match="no consent script in de or fr effective on 2024-06-01"):
        select_script(
            scripts, kind=ScriptKind.CONSENT, language="de", fallback=("fr",), on=date(2024, 6, 1)
        )


def test_select_newest_version_effective_on_the_day() -> None:
    scripts = [
        script(version="1", effective_from=date(2024, 1, 1)),
        script(version="10", effective_from=date(2024, 6, 1)),
        script(version="9", effective_from=date(2024, 3, 1)),
    ]
    pick = select_script
    assert pick(scripts, kind=ScriptKind.CONSENT, language="en", on=date(2024, 2, 1)).version == "1"
    assert pick(scripts, kind=ScriptKind.CONSENT, language="en", on=date(2024, 5, 1)).version == "9"
    assert (
        pick(scripts, kind=ScriptKind.CONSENT, language="en", on=date(2024, 6, 1)).version == "10"
    )
    with pytest.raises(DomainError, match="effective on 2023-12-31"):
        pick(scripts, kind=ScriptKind.CONSENT, language="en", on=date(2023, 12, 31))


def test_select_request_script_by_type_and_jurisdiction() -> None:
    kind = ScriptKind.REQUEST
    scripts = [
        script(id="request-access", kind=kind, request_type=RequestType.ACCESS),
        script(
            id="request-access-ccpa",
            kind=kind,
            request_type=RequestType.ACCESS,
            jurisdiction=Jurisdiction.CCPA,
        ),
        script(id="request-erasure", kind=kind, request_type=RequestType.ERASURE),
    ]

    def pick(t: RequestType, j: Jurisdiction | None) -> str:
        return select_script(scripts, kind=kind, language="en", request_type=t, jurisdiction=j).id

    assert pick(RequestType.ACCESS, Jurisdiction.CCPA) == "request-access-ccpa"
    assert pick(RequestType.ACCESS, Jurisdiction.GDPR) == "request-access"
    assert pick(RequestType.ACCESS, None) == "request-access"
    assert pick(RequestType.ERASURE, Jurisdiction.CCPA) == "request-erasure"
    with pytest.raises(DomainError, match="no portability request script under gdpr in en"):
        pick(RequestType.PORTABILITY, Jurisdiction.GDPR)


def test_script_by_id() -> None:
    scripts = [
        script(id="a", version="1", language="en"),
        script(id="a", version="2", language="en"),
        script(id="a", version="1", language="de"),
        script(id="b", language="de"),
    ]
    assert script_by_id(scripts, "a", "en").version == "2"
    assert script_by_id(scripts, "a", "de").language == "de"
    assert script_by_id(scripts, "a", "fr").language == "en"
    with pytest.raises(DomainError, match="unknown script 'c'"):
        script_by_id(scripts, "c", "en")
    with pytest.raises(DomainError, match="script b has no version in en effective"):
        script_by_id(scripts, "b", "en")


# --- the shipped scripts -----------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> tuple[Script, ...]:
    return load_scripts()


def test_every_shipped_script_is_registered_with_its_hash(shipped: tuple[Script, ...]) -> None:
    with REGISTRY.open("rb") as fh:
        registry: Mapping[str, Mapping[str, Mapping[str, str]]] = tomllib.load(fh)
    problems = []
    for s in shipped:
        known = registry.get(s.id, {}).get(s.language, {})
        where = f"resources/scripts/{s.id}/{s.language}.md"
        if s.version not in known:
            problems.append(
                f"{where} version {s.version} is not registered: add\n"
                f'    ["{s.id}".{s.language}]\n    "{s.version}" = "{s.template_sha256}"\n'
                f"  to {REGISTRY_SHOWN} once the text is final"
            )
        elif known[s.version] != s.template_sha256:
            problems.append(
                f"{where} was edited but is still version {s.version}. A published text "
                f"is evidence and never changes: bump `version` in its front matter "
                f'(and effective_from), then add "<new version>" = "{s.template_sha256}" '
                f'under ["{s.id}".{s.language}] in {REGISTRY_SHOWN}, keeping the old line.'
            )
    assert not problems, "\n".join(problems)


def test_shipped_scripts_cover_every_capture_kind_in_english_and_german(
    shipped: tuple[Script, ...],
) -> None:
    for language in ("en", "de"):
        for kind in (ScriptKind.CONSENT, ScriptKind.WITHDRAWAL):
            s = select_script(shipped, kind=kind, language=language, fallback=())
            assert s.purposes == ()  # general: usable for every purpose
        for j in Jurisdiction:
            for t in rules.rule_for(j).request_types:
                s = select_script(
                    shipped,
                    kind=ScriptKind.REQUEST,
                    language=language,
                    fallback=(),
                    request_type=t,
                    jurisdiction=j,
                )
                assert s.jurisdiction in (None, j)


def test_shipped_scripts_render_and_have_verbatim_passages(shipped: tuple[Script, ...]) -> None:
    catalogue = load_catalogue()
    purpose_ids = {p.id for p in catalogue}
    by_id: dict[str, set[str]] = {}
    for s in shipped:
        by_id.setdefault(s.id, set()).add(s.language)
        assert set(s.purposes) <= purpose_ids
        r = render(s, CONTEXT)
        assert any(b.verbatim for b in r.blocks), s.id
        assert placeholders(s) <= PLACEHOLDERS
        if s.kind == ScriptKind.REQUEST:
            assert s.request_type is not None and s.jurisdiction is not None
            assert s.request_type in rules.rule_for(s.jurisdiction).request_types
            assert "reference" in placeholders(s) and "due_date" in placeholders(s)
        else:
            assert {"purposes", "channels"} <= placeholders(s)
    assert all(langs == {"en", "de"} for langs in by_id.values()), by_id
