"""The receipt e-mail after a capture: an address field, Send, and what became of it.

Shown under the caller's status once a flow recorded consents, refusals or
withdrawals for the caller on screen. Send composes the receipt in the language
the disclosure was read in and queues it durably on this desk (the worker does
every disk and backend step, never the GUI thread); a background sender takes
it to the site's SMTP server. The label shows queued, sent or failed. The
address is stored with the queued receipt and is never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout

from consentdesk.domain.backend import Backend
from consentdesk.domain.model import RECORDED_STATES, ConsentEvent, utcnow
from consentdesk.gui.desk import Desk
from consentdesk.gui.tasks import describe_error
from consentdesk.stores.receipt_queue import (
    ReceiptQueue,
    ReceiptSender,
    ReceiptState,
    ReceiptStatus,
    smtp_settings,
)

POLL_MS = 1000


class ReceiptBox(QFrame):
    """Offer, send and follow one receipt for the caller on screen."""

    def __init__(self, desk: Desk, data_dir: Path, parent: Any = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.data_dir = data_dir
        self.number: str | None = None
        self.events: tuple[ConsentEvent, ...] = ()
        self.receipt_id: str | None = None
        self._queue: ReceiptQueue | None = None
        self._sender: ReceiptSender | None = None
        self.setAccessibleName("Receipt for the customer")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(QLabel("Send the customer a receipt by e-mail:"))
        row = QHBoxLayout()
        self.address = QLineEdit()
        self.address.setPlaceholderText("name@example.com")
        self.address.setAccessibleName("Customer's e-mail address")
        self.address.returnPressed.connect(self.send)
        self.send_button = QPushButton("Send &receipt")
        self.send_button.clicked.connect(self.send)
        row.addWidget(self.address, 1)
        row.addWidget(self.send_button)
        box.addLayout(row)
        self.state_label = QLabel("")
        self.state_label.setWordWrap(True)
        self.state_label.setAccessibleName("Receipt status")
        box.addWidget(self.state_label)
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._refresh)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)
        self.hide()

    # --- offering -------------------------------------------------------------------

    def offer(self, outcome: Any) -> None:
        """After a flow recorded something: offer a receipt for its consent records."""
        events = tuple(e for e in getattr(outcome, "events", ()) if e.state in RECORDED_STATES)
        if not events:
            return
        self.number, self.events, self.receipt_id = events[0].subject, events, None
        self._poll.stop()
        # Only the setting: the keyring (the password) is read on the worker.
        configured = bool(str(self.desk.config.get("mail.smtp_host")).strip())
        self.send_button.setEnabled(configured)
        self.address.setEnabled(configured)
        self.address.clear()
        self.state_label.setText(
            "" if configured else "Receipts need a mail server (mail.smtp_host in the settings)."
        )
        self.show()

    def caller_shown(self, number: str) -> None:
        if number != self.number:
            self.number, self.events = None, ()
            self._poll.stop()
            self.hide()

    # --- sending --------------------------------------------------------------------

    def send(self) -> None:
        if not self.events or not self.send_button.isEnabled():
            return
        address = self.address.text()
        events = self.events
        desk = self.desk
        catalogue = desk.catalogue
        if catalogue is None:
            return
        self.send_button.setEnabled(False)
        self.state_label.setText("Queuing the receipt…")

        def job(backend: Backend) -> ReceiptStatus:
            from consentdesk.domain.export import Controller
            from consentdesk.domain.receipt_mail import compose_receipt
            from consentdesk.domain.review import local_zone

            history = list(backend.history(events[0].subject))
            known = {e.event_id for e in history}
            history += [e for e in events if e.event_id not in known]  # not synced yet
            config = desk.config
            mail = compose_receipt(
                events,
                history,
                catalogue,
                Controller.from_config(config),
                company=desk.company,
                now=max(utcnow(), max(e.at for e in events)),
                tz=local_zone(str(config.get("general.timezone"))),
            )
            smtp = smtp_settings(config)
            if smtp is None:
                raise ValueError("no mail server is set up")
            status = self._queue_for().enqueue(mail, address, smtp.sender)
            self._sender_for().wake()
            return status

        self.desk.runner.call(
            job, on_success=self._queued, on_failure=self._not_queued, label="receipt"
        )

    def _queue_for(self) -> ReceiptQueue:  # worker thread
        if self._queue is None:
            self._queue = ReceiptQueue(self.data_dir)
        return self._queue

    def _sender_for(self) -> ReceiptSender:  # worker thread
        if self._sender is None:
            smtp = smtp_settings(self.desk.config)
            assert smtp is not None
            self._sender = ReceiptSender(self._queue_for(), smtp).start()
        return self._sender

    def _queued(self, status: ReceiptStatus) -> None:
        self.receipt_id = status.id
        self._show(status)
        self._poll.start()

    def _not_queued(self, exc: BaseException) -> None:
        self.send_button.setEnabled(True)
        self.state_label.setText(f"Receipt not queued: {describe_error(exc)}")

    def _refresh(self) -> None:
        rid, queue = self.receipt_id, self._queue
        if rid is None or queue is None:
            self._poll.stop()
            return
        self.desk.runner.run(
            lambda: queue.status(rid), on_success=self._show, label="receipt status"
        )

    def _show(self, status: ReceiptStatus) -> None:
        if status.id != self.receipt_id:
            return
        if status.state == ReceiptState.SENT:
            self._poll.stop()
            self.state_label.setText("Receipt sent ✔")
        elif status.state == ReceiptState.FAILED:
            self._poll.stop()
            self.send_button.setEnabled(True)
            self.state_label.setText(f"Receipt failed: {status.last_error}")
        elif status.attempts:
            self.state_label.setText(
                f"Receipt queued — not sent yet ({status.last_error}); retrying"
            )
        else:
            self.state_label.setText("Receipt queued — sending…")

    def stop(self) -> None:
        self._poll.stop()
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.stop()
        queue, self._queue = self._queue, None
        if queue is not None:
            queue.close()


def attach_receipts(panel: Any, desk: Desk, data_dir: Path) -> ReceiptBox:
    """Put the receipt box at the top of the caller panel and follow its captures."""
    box = ReceiptBox(desk, data_dir)
    panel.body.insertWidget(0, box)
    panel.captured.connect(box.offer)
    panel.caller_shown.connect(box.caller_shown)
    panel.receipt_box = box
    return box
