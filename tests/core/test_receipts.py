"""Receipt e-mails to a real SMTP server on loopback (aiosmtpd): German text for a
German caller with the Kantara receipt attached, STARTTLS with sign-in, and a
mail server that is down for a while."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import socket
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consentdesk.domain import capture
from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.export import Controller as DataController
from consentdesk.domain.model import Channel, ConsentState, DomainError, Jurisdiction
from consentdesk.domain.receipt_mail import ATTACHMENT, check_email, compose_receipt
from consentdesk.domain.scripts import ScriptKind, covers, load_scripts, render, script_context
from consentdesk.stores.receipt_queue import ReceiptQueue, ReceiptState, SmtpSettings

CATALOGUE = load_catalogue()
SCRIPTS = load_scripts()
NUMBER = "+4915112345678"
ADDRESS = "kundin@example.de"
BERLIN = ZoneInfo("Europe/Berlin")
CONTROLLER = DataController(
    name="Example Energy GmbH",
    address="Musterstraße 1, 10115 Berlin",
    email="privacy@example.com",
    phone="+49 30 1234567",
    contact="Datenschutzbeauftragte",
    url="https://www.example.com",
    policy_url="https://www.example.com/privacy",
    storage_location="EU",
    retention="3 years",
    withdrawal_method="Tell any agent on a call.",
)


def event(state: ConsentState, language: str, channel: Channel = Channel.EMAIL) -> Any:
    purpose = "marketing-offers"
    kind = ScriptKind.WITHDRAWAL if state == ConsentState.WITHDRAWN else ScriptKind.CONSENT
    script = next(
        s for s in SCRIPTS if s.kind == kind and s.language == language and covers(s, purpose)
    )
    context = script_context(
        language=language,
        company="Example Energy GmbH",
        agent_name="Alice",
        purposes=[CATALOGUE.get(purpose)],
        channels=[channel],
        reference="RQ-2345-6789-ABCD",
        due=dt.date(2030, 1, 31),
    )
    return capture.consent_event(
        catalogue=CATALOGUE,
        purpose=purpose,
        channel=channel,
        state=state,
        rendered=render(script, context),
        agent="alice",
        jurisdiction=Jurisdiction.GDPR,
        call_id="call-1",
        subject=NUMBER,
    )


def receipt_for(*events: Any) -> Any:
    return compose_receipt(
        events,
        events,
        CATALOGUE,
        CONTROLLER,
        company="Example Energy GmbH",
        now=dt.datetime.now(dt.UTC),
        tz=BERLIN,
    )


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.content, policy=email.policy.default),
            )
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"desk", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def starttls_server(tls_files: tuple[Path, Path]) -> Iterator[tuple[Controller, Inbox]]:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    server = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    server.start()
    yield server, inbox
    server.stop()


def test_a_german_caller_gets_a_german_receipt_over_starttls_with_the_kantara_json(
    tmp_path: Path,
    starttls_server: tuple[Controller, Inbox],
    tls_files: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="consentdesk")
    server, inbox = starttls_server
    mail = receipt_for(event(ConsentState.GIVEN, "de"))
    assert mail.language == "de"
    queue = ReceiptQueue(tmp_path)
    queued = queue.enqueue(mail, ADDRESS, "privacy@example.com")
    assert queued.state == ReceiptState.QUEUED
    smtp = SmtpSettings(
        host="127.0.0.1",
        port=server.port,
        starttls=True,
        user="desk",
        password="s3cret",
        sender="privacy@example.com",
        ca_bundle=str(tls_files[0]),
    )
    assert queue.send_due(smtp) == 1
    assert queue.status(queued.id).state == ReceiptState.SENT

    ((sender, rcpts, msg),) = inbox.messages
    assert (sender, rcpts) == ("privacy@example.com", [ADDRESS])
    assert msg["Subject"] == "Ihre Einwilligungen bei Example Energy GmbH"
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content()
    assert "Angebote und Neuigkeiten von uns per E-Mail: eingewilligt (gültig bis" in text
    assert "jederzeit widerrufen" in text and "Datenschutzbeauftragte" in text
    (attachment,) = [p for p in msg.walk() if p.get_filename() == ATTACHMENT]
    receipts = json.loads(attachment.get_payload(decode=True))  # one per consent in force
    assert receipts and all(r["version"] == "KI-CR-v1.1.0" for r in receipts)
    assert {r["piiPrincipalId"] for r in receipts} == {NUMBER}
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("consentdesk")]
    assert ours and not [m for m in ours if ADDRESS in m]  # addresses are never logged
    queue.close()


def test_a_mail_server_down_for_a_while_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    queue = ReceiptQueue(tmp_path)
    withdrawn = receipt_for(event(ConsentState.GIVEN, "en"), event(ConsentState.WITHDRAWN, "en"))
    queued = queue.enqueue(withdrawn, ADDRESS, "privacy@example.com")
    smtp = SmtpSettings(host="127.0.0.1", port=port, starttls=False, sender="privacy@example.com")
    assert queue.send_due(smtp) == 0  # nobody listening
    status = queue.status(queued.id)
    assert (status.state, status.attempts) == (ReceiptState.QUEUED, 1)
    assert status.last_error and "cannot be reached" in status.last_error
    queue.close()

    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        reopened = ReceiptQueue(tmp_path)  # what was queued survived the restart
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)
        assert reopened.send_due(smtp, now=later) == 1
        assert reopened.status(queued.id).state == ReceiptState.SENT
        reopened.close()
    finally:
        server.stop()
    ((_, _, msg),) = inbox.messages
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "by e-mail: withdrawn" in text
    assert "No consent to contact you remains in force." in text
    assert not [p for p in msg.walk() if p.get_filename() == ATTACHMENT]


def test_a_refused_address_fails_for_good(tmp_path: Path) -> None:
    class Refusing(Inbox):
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            return "550 no such mailbox"

    server = Controller(Refusing(), hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        queue = ReceiptQueue(tmp_path)
        queued = queue.enqueue(
            receipt_for(event(ConsentState.GIVEN, "en")), ADDRESS, "p@example.com"
        )
        smtp = SmtpSettings(
            host="127.0.0.1", port=server.port, starttls=False, sender="p@example.com"
        )
        queue.send_due(smtp)
        status = queue.status(queued.id)
        assert status.state == ReceiptState.FAILED
        assert status.last_error and "550" in status.last_error and ADDRESS not in status.last_error
        queue.close()
    finally:
        server.stop()


@pytest.mark.parametrize("bad", ["", "kundin", "kundin@", "a b@example.de", "x@-example.de"])
def test_bad_addresses_are_refused_without_repeating_them(tmp_path: Path, bad: str) -> None:
    with pytest.raises(DomainError) as err:
        check_email(bad)
    assert bad == "" or bad not in str(err.value)


def test_smtp_settings_come_from_the_config_and_the_keyring(
    tmp_path: Path, memory_keyring: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consentdesk.platform import secrets
    from consentdesk.platform.config import Config
    from consentdesk.stores.receipt_queue import smtp_settings

    monkeypatch.delenv(secrets.SMTP_PASSWORD_ENV, raising=False)
    config = Config.load(user_file=tmp_path / "config.toml", site_files=[])
    assert smtp_settings(config) is None  # no mail server: no receipts
    config.set("mail.smtp_host", "Mail.Example.org")
    config.set("mail.smtp_user", "desk")
    config.set("mail.smtp_port", 2525)
    secrets.set_smtp_password("mail.example.org", "desk", "s3cret")
    smtp = smtp_settings(config)
    assert smtp is not None
    assert (smtp.port, smtp.starttls, smtp.password) == (2525, True, "s3cret")
    assert smtp.sender == "privacy@example.com"  # the controller's address by default
    with pytest.raises(ValueError):
        config.set("mail.smtp_port", 0)
