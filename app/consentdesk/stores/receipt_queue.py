"""Receipt e-mails to customers: a durable queue in the data folder and its sender.

The queue lives on the desk (``receipts.sqlite3`` beside the ledger): it works
the same with the embedded ledger and the team server, the SMTP password stays
in this desk's OS keyring, and a receipt is on disk before the sidebar says
"queued" — a mail server that is down loses nothing; the sender retries with
backoff for :data:`GIVE_UP_AFTER` and then marks the receipt failed. The
customer's address is stored with the queued receipt and never logged.
"""

from __future__ import annotations

import enum
import logging
import os
import random
import smtplib
import sqlite3
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from consentdesk.domain.backend import BackendError
from consentdesk.domain.export import Settings
from consentdesk.domain.model import utcnow
from consentdesk.domain.receipt_mail import ATTACHMENT, ReceiptMail, check_email
from consentdesk.platform.secrets import smtp_password

log = logging.getLogger("consentdesk.stores.receipts")

FILE_NAME = "receipts.sqlite3"
GIVE_UP_AFTER = timedelta(days=3)
BACKOFF_S = (5.0, 600.0)  # first retry, longest wait
_SCHEMA = """CREATE TABLE IF NOT EXISTS receipts (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    to_addr TEXT NOT NULL,
    message BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    last_error TEXT,
    sent_at TEXT
)"""


class ReceiptState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ReceiptStatus:
    id: str
    state: ReceiptState
    attempts: int
    last_error: str | None  # never holds the address


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 587
    starttls: bool = True
    user: str = ""
    password: str | None = None
    sender: str = ""
    ca_bundle: str = ""
    timeout: float = 20.0

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_bundle or None)


class ReceiptError(BackendError):
    """The queue cannot be used; the message is safe to show."""


def build_message(mail: ReceiptMail, to_addr: str, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to_addr
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["Content-Language"] = mail.language
    msg.set_content(mail.text)
    if mail.attachment is not None:
        msg.add_attachment(
            mail.attachment.encode("utf-8"),
            maintype="application",
            subtype="json",
            filename=ATTACHMENT,
        )
    return msg


class ReceiptQueue:
    """Thread-safe; one per data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        self._lock = threading.Lock()
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():  # owner-only: addresses and receipts
                os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ReceiptError(f"cannot open the receipt queue {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise ReceiptError(f"the receipt queue could not be written: {exc}") from None

    def enqueue(self, mail: ReceiptMail, to_addr: str, sender: str) -> ReceiptStatus:
        """Queue a receipt durably (on disk when this returns)."""
        to_addr = check_email(to_addr)
        # SMTP line ends (CRLF): smtplib sends bytes as they are.
        message = build_message(mail, to_addr, sender).as_bytes(policy=policy.SMTP)
        rid, now = str(uuid.uuid4()), utcnow().isoformat()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO receipts (id, created_at, to_addr, message, state, next_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rid, now, to_addr, message, ReceiptState.QUEUED.value, now),
            )
        log.info("receipt %s queued", rid)
        return self.status(rid)

    def status(self, rid: str) -> ReceiptStatus:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, state, attempts, last_error FROM receipts WHERE id = ?", (rid,)
            ).fetchone()
        if row is None:
            raise ReceiptError("no such receipt")
        return ReceiptStatus(row[0], ReceiptState(row[1]), row[2], row[3])

    def send_due(self, smtp: SmtpSettings, now: datetime | None = None) -> int:
        """Try every receipt that is due; how many went out."""
        now = now or utcnow()
        with self._lock:
            due = self._conn.execute(
                "SELECT id, to_addr, message, attempts, created_at FROM receipts"
                " WHERE state = ? AND next_at <= ? ORDER BY created_at",
                (ReceiptState.QUEUED.value, now.isoformat()),
            ).fetchall()
        sent = 0
        for rid, to_addr, message, attempts, created in due:
            error, permanent = _send(smtp, to_addr, message)
            if error is None:
                self._set(rid, ReceiptState.SENT, attempts + 1, None, now, sent_at=now)
                log.info("receipt %s sent", rid)
                sent += 1
                continue
            gave_up = permanent or now - datetime.fromisoformat(created) >= GIVE_UP_AFTER
            wait = min(BACKOFF_S[1], BACKOFF_S[0] * 2**attempts)
            wait = wait / 2 + random.uniform(0, wait / 2)
            state = ReceiptState.FAILED if gave_up else ReceiptState.QUEUED
            self._set(rid, state, attempts + 1, error, now + timedelta(seconds=wait))
            log.warning("receipt %s not sent (%s)%s", rid, error, "; gave up" if gave_up else "")
            if not permanent:
                break  # the server is away: the others wait for the next round
        return sent

    def _set(
        self,
        rid: str,
        state: ReceiptState,
        attempts: int,
        error: str | None,
        next_at: datetime,
        *,
        sent_at: datetime | None = None,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE receipts SET state = ?, attempts = ?, last_error = ?, next_at = ?,"
                " sent_at = ? WHERE id = ?",
                (
                    state.value,
                    attempts,
                    error,
                    next_at.isoformat(),
                    sent_at.isoformat() if sent_at else None,
                    rid,
                ),
            )

    def retry_now(self) -> None:
        """Make every waiting receipt due (e.g. after the mail settings changed)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE receipts SET next_at = ? WHERE state = ?",
                (utcnow().isoformat(), ReceiptState.QUEUED.value),
            )


def _send(smtp: SmtpSettings, to_addr: str, message: bytes) -> tuple[str | None, bool]:
    """``(error, permanent)``; error texts name no address."""
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            client.ehlo()
            if smtp.starttls:
                client.starttls(context=smtp.context())
                client.ehlo()
            if smtp.user:
                client.login(smtp.user, smtp.password or "")
            client.sendmail(smtp.sender, [to_addr], message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return f"the mail server refused the address (SMTP {codes[0]})", codes[0] >= 500
    except smtplib.SMTPAuthenticationError as exc:
        return f"the mail server refused the sign-in (SMTP {exc.smtp_code})", False
    except smtplib.SMTPResponseException as exc:
        return f"the mail server answered SMTP {exc.smtp_code}", exc.smtp_code >= 500
    except (OSError, smtplib.SMTPException) as exc:
        return f"the mail server cannot be reached ({type(exc).__name__})", False
    return None, False


class ReceiptSender:
    """Sends due receipts in the background (never on the GUI thread)."""

    def __init__(self, queue: ReceiptQueue, smtp: SmtpSettings, *, every: float = 5.0) -> None:
        self.queue, self.smtp, self.every = queue, smtp, every
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consentdesk-receipts", daemon=True)

    def start(self) -> ReceiptSender:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.queue.send_due(self.smtp)
            except ReceiptError as exc:
                log.warning("receipt queue: %s", exc)
            self._wake.wait(self.every)
            self._wake.clear()


def smtp_settings(config: Settings) -> SmtpSettings | None:
    """The site's SMTP settings (None: no mail server configured, so no receipts)."""
    host = str(config.get("mail.smtp_host")).strip()
    if not host:
        return None
    user = str(config.get("mail.smtp_user"))
    sender = str(config.get("mail.sender")) or str(config.get("privacy.controller_email"))
    return SmtpSettings(
        host=host,
        port=int(config.get("mail.smtp_port")),
        starttls=bool(config.get("mail.starttls")),
        user=user,
        password=smtp_password(host, user) if user else None,
        sender=sender,
        ca_bundle=str(config.get("mail.ca_bundle")),
    )
