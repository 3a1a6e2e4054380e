"""The lead's queue tracks the CCPA confirmation-of-receipt clock (CCPA Regs §7021)
and lets a lead record how receipt was confirmed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from consentdesk.domain.calendars import Calendar
from consentdesk.domain.model import (
    DomainError,
    Jurisdiction,
    NewRequest,
    RequestStatus,
    RequestType,
)
from consentdesk.domain.references import new_reference
from consentdesk.domain.request_queue import QueueBucket, lead_move, request_queue
from consentdesk.domain.requests import fold_request
from consentdesk.domain.rules import Confirmation
from consentdesk.gui.review.dialogs import MoveRequestDialog
from consentdesk.stores.ledger import open_ledger

LA = Calendar(ZoneInfo("America/Los_Angeles"), "US")
RECEIVED = date(2024, 11, 25)  # confirmation due 11 December (Thanksgiving skipped)


def new(t: RequestType = RequestType.ACCESS, j: Jurisdiction = Jurisdiction.CCPA) -> NewRequest:
    return NewRequest(
        subject="+14155552671",
        type=t,
        jurisdiction=j,
        reference=new_reference(),
        agent="anna",
        received=RECEIVED,
        at=datetime(2024, 11, 25, 18, tzinfo=UTC),
    )


def test_queue_shows_the_confirmation_clock_and_puts_a_late_one_first() -> None:
    pending = fold_request(new(), [], LA)
    gdpr = fold_request(new(j=Jurisdiction.GDPR), [], LA)
    (item, other) = request_queue([gdpr, pending], date(2024, 12, 12))
    assert item.request == pending and item.bucket == QueueBucket.OVERDUE
    assert item.confirmation == Confirmation.OVERDUE
    assert "receipt confirmation OVERDUE (was due 2024-12-11, CCPA Regs §7021)" in item.clock
    assert other.confirmation == Confirmation.NOT_REQUIRED and "receipt" not in other.clock
    (early,) = request_queue([pending], date(2024, 12, 2))
    assert early.confirmation == Confirmation.PENDING
    assert "confirm receipt by 2024-12-11" in early.clock and early.bucket == QueueBucket.LATER


def test_lead_records_a_confirmation_with_or_without_a_move() -> None:
    pending = fold_request(new(), [], LA)
    only = lead_move(pending, None, by="lena", confirmation=" letter ", cal=LA)
    assert (only.status, only.confirmation) == (None, "letter")
    both = lead_move(pending, RequestStatus.VERIFYING, by="lena", confirmation="email", cal=LA)
    assert (both.status, both.confirmation) == (RequestStatus.VERIFYING, "email")
    with pytest.raises(DomainError, match="choose a new status or say how"):
        lead_move(pending, None, by="lena", confirmation="  ")
    gdpr = fold_request(new(j=Jurisdiction.GDPR), [], LA)
    with pytest.raises(DomainError, match="needs no confirmation"):
        lead_move(gdpr, None, by="lena", confirmation="email")


def test_move_dialog_records_how_receipt_was_confirmed(qtbot: QtBot, tmp_path: Path) -> None:
    created = new()
    with open_ledger(tmp_path / "data", calendar=LA) as ledger:
        ledger.create_request(created)
        (item,) = request_queue([ledger.request(created.request_id)], date(2024, 12, 12))
        dialog = MoveRequestDialog(item, by="lena", calendar=LA)
        qtbot.addWidget(dialog)
        assert dialog.status_box.currentText() == "(status unchanged)"
        qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
        assert "say how receipt was confirmed" in dialog.error.text()
        qtbot.keyClicks(dialog.confirm_box, "letter")
        qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
        change = dialog.result_record
        assert change is not None and change.confirmation == "letter"
        stored = ledger.update_request(change)
        assert (stored.confirmed_how, stored.status) == ("letter", RequestStatus.RECEIVED)
        (after,) = request_queue([stored], date(2024, 12, 12))
        assert after.confirmation == Confirmation.CONFIRMED
        assert after.bucket == QueueBucket.LATER
        assert "receipt confirmed" in after.clock
