"""The receipt box in the real sidebar: after a withdrawal, the agent types the
customer's address and sends; a real SMTP server on loopback (aiosmtpd) gets it
and the sidebar shows it sent."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytestqt.qtbot import QtBot
from sidebar_support import click, open_caller_by_typing, record_consent, tick_read_aloud
from test_sidebar_flows import select_cell, wait_captured

from consentdesk.domain.model import Channel
from consentdesk.gui.main import Sidebar
from consentdesk.gui.receipts import ReceiptBox
from consentdesk.platform.config import Config

MakeSidebar = Callable[..., Sidebar]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp(config: Config) -> Iterator[Inbox]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    config.set("mail.smtp_host", "127.0.0.1")
    config.set("mail.smtp_port", port)
    config.set("mail.starttls", False)
    config.set("mail.sender", "privacy@example.com")
    yield inbox
    server.stop()


def withdraw_email_marketing(qtbot: QtBot, sidebar: Sidebar) -> ReceiptBox:
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    select_cell(qtbot, sidebar, "marketing-offers", Channel.EMAIL)
    click(qtbot, panel.withdraw_button)
    flow = panel.flow
    tick_read_aloud(qtbot, flow)
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.record))
    box: ReceiptBox = panel.receipt_box
    return box


def test_a_receipt_is_sent_after_a_withdrawal(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path, smtp: Inbox
) -> None:
    record_consent(data_dir, "marketing-offers", Channel.EMAIL)
    sidebar = make_sidebar()
    box = withdraw_email_marketing(qtbot, sidebar)
    qtbot.waitUntil(box.isVisible)
    assert box.send_button.isEnabled()

    qtbot.keyClicks(box.address, "not an address")
    click(qtbot, box.send_button)
    qtbot.waitUntil(lambda: "not queued" in box.state_label.text())
    assert smtp.messages == []

    box.address.clear()
    qtbot.keyClicks(box.address, "kunde@example.de")
    click(qtbot, box.send_button)
    qtbot.waitUntil(lambda: box.state_label.text() == "Receipt sent ✔", timeout=15_000)
    ((rcpts, msg),) = smtp.messages
    assert rcpts == ["kunde@example.de"]
    text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Offers and news from us by e-mail: withdrawn" in text


def test_without_a_mail_server_the_box_says_so(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    record_consent(data_dir, "marketing-offers", Channel.EMAIL)
    sidebar = make_sidebar()
    box = withdraw_email_marketing(qtbot, sidebar)
    qtbot.waitUntil(box.isVisible)
    assert not box.send_button.isEnabled()
    assert "mail server" in box.state_label.text()
