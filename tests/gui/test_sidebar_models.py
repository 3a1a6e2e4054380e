"""The sidebar's item models: Qt's model tester, named roles and what they say."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester
from sidebar_support import NUMBER, ledger

from consentdesk.domain.catalogue import Catalogue, load_catalogue
from consentdesk.domain.model import (
    Channel,
    CollectionMethod,
    ConsentEvent,
    ConsentState,
    PrivacyRequest,
    RequestStatus,
    SubjectStatus,
)
from consentdesk.gui.models import (
    URGENCY_CLOSED,
    URGENCY_OPEN,
    URGENCY_OVERDUE,
    URGENCY_SOON,
    ApplicableRole,
    ChannelRole,
    ConsentGridModel,
    CorrectedRole,
    CorrectionRole,
    DaysLeftRole,
    EventRole,
    HistoryModel,
    MethodRole,
    PurposeRole,
    ReferenceRole,
    RequestRole,
    RequestsModel,
    StateRole,
    UrgencyRole,
)
from consentdesk.stores.demo import seed

Demo = tuple[Catalogue, SubjectStatus, list[ConsentEvent]]


@pytest.fixture(autouse=True)
def _gui(qapp: QApplication) -> None:
    """Icons and brushes need a QApplication."""


@pytest.fixture
def demo(data_dir: Path) -> Demo:
    with ledger(data_dir) as led:
        seed(led)
        return led.catalogue(), led.status(NUMBER), list(led.history(NUMBER))


def test_consent_grid_model(qtmodeltester: ModelTester, demo: Demo) -> None:
    catalogue, status, _ = demo
    model = ConsentGridModel()
    qtmodeltester.check(model)
    model.set_status(catalogue, status.cells)
    qtmodeltester.check(model)
    assert model.rowCount() == len(catalogue)
    assert model.columnCount() == len(catalogue.channels())
    for row, purpose in enumerate(catalogue):
        assert model.headerData(row, Qt.Orientation.Vertical) == purpose.title
        for column, channel in enumerate(catalogue.channels()):
            index = model.index(row, column)
            assert index.data(PurposeRole) == purpose.id
            assert index.data(ChannelRole) == channel
            applicable = channel in purpose.channels
            assert index.data(ApplicableRole) == applicable
            assert bool(index.flags() & Qt.ItemFlag.ItemIsSelectable) == applicable
            if not applicable:
                assert index.data(StateRole) is None
                continue
            cell = status.cell(purpose.id, channel)
            assert index.data(StateRole) == cell.state
            assert index.data(EventRole) == cell.event
            text = index.data(Qt.ItemDataRole.AccessibleTextRole)
            assert purpose.title in text
            if cell.event is not None:
                assert index.data(MethodRole) == cell.event.method
                assert cell.event.notice.script_id in text
    # The demo caller's consent by email was withdrawn; the corrected partner consent
    # shows the corrected answer.
    assert model.index_for("marketing-offers", Channel.EMAIL).data(StateRole) == (
        ConsentState.WITHDRAWN
    )
    assert model.index_for("partner-offers", Channel.PHONE).data(StateRole) == (
        ConsentState.REFUSED
    )
    given = model.index_for("marketing-offers", Channel.PHONE)
    assert given.data(MethodRole) == CollectionMethod.VERBAL_CALL
    assert given.data(Qt.ItemDataRole.DisplayRole).startswith("Given\n")
    model.clear()
    qtmodeltester.check(model)
    assert model.rowCount() == 0


def _with(request: PrivacyRequest, **changes: Any) -> PrivacyRequest:
    return dataclasses.replace(request, **changes)


def test_requests_model_marks_overdue_and_due_soon(
    qtmodeltester: ModelTester,
    demo: Demo,
) -> None:
    _, status, _ = demo
    (base,) = [r for r in status.requests if r.is_open]
    today = date(2025, 6, 10)
    rows = [
        _with(base, reference="RQ-OVER", due=today - timedelta(days=3)),
        _with(base, reference="RQ-SOON", due=today + timedelta(days=3)),
        _with(base, reference="RQ-LATER", due=today + timedelta(days=20)),
        _with(
            base, reference="RQ-DONE", due=today - timedelta(days=9), status=RequestStatus.COMPLETED
        ),
    ]
    model = RequestsModel()
    qtmodeltester.check(model)
    model.set_requests(list(reversed(rows)), today=today)
    qtmodeltester.check(model)
    got = [
        (
            model.index(r).data(ReferenceRole),
            model.index(r).data(UrgencyRole),
            model.index(r).data(DaysLeftRole),
        )
        for r in range(model.rowCount())
    ]
    assert got == [
        ("RQ-OVER", URGENCY_OVERDUE, -3),
        ("RQ-SOON", URGENCY_SOON, 3),
        ("RQ-LATER", URGENCY_OPEN, 20),
        ("RQ-DONE", URGENCY_CLOSED, -9),
    ]
    overdue = model.index(0)
    assert "OVERDUE by 3 days" in overdue.data(Qt.ItemDataRole.DisplayRole)
    assert "Overdue" in overdue.data(Qt.ItemDataRole.AccessibleTextRole)
    assert overdue.data(Qt.ItemDataRole.BackgroundRole) is not None
    assert model.index(2).data(Qt.ItemDataRole.BackgroundRole) is None
    assert "3 days left" in model.index(1).data(Qt.ItemDataRole.DisplayRole)
    assert model.index(0).data(RequestRole).reference == "RQ-OVER"


def test_history_model_marks_corrections(
    qtmodeltester: ModelTester,
    demo: Demo,
) -> None:
    _, _, history = demo
    partner = [e for e in history if e.purpose == "partner-offers"]
    model = HistoryModel()
    qtmodeltester.check(model)
    model.set_events(partner)
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    newest, oldest = model.index(0), model.index(1)
    assert newest.data(CorrectionRole) is True
    assert newest.data(StateRole) == ConsentState.REFUSED
    assert oldest.data(CorrectedRole) is True
    assert oldest.data(Qt.ItemDataRole.FontRole).strikeOut()
    assert "(corrected)" in oldest.data(Qt.ItemDataRole.DisplayRole)
    assert newest.data(Qt.ItemDataRole.DisplayRole).startswith("Correction:")
    assert model.row_of(partner[0].event_id) == 1
    assert oldest.data(EventRole) == partner[0]


def test_grid_model_on_the_shipped_catalogue_without_history(
    qtmodeltester: ModelTester,
) -> None:
    catalogue = load_catalogue()
    model = ConsentGridModel()
    model.set_status(catalogue, ())
    qtmodeltester.check(model)
    states = {
        model.index(r, c).data(StateRole)
        for r in range(model.rowCount())
        for c in range(model.columnCount())
        if model.index(r, c).data(ApplicableRole)
    }
    assert states == {ConsentState.UNKNOWN}


# --- lawful basis and CCPA effects in the grid ------------------------------------


def test_purposes_not_on_consent_are_information_with_their_basis(
    qtmodeltester: ModelTester,
) -> None:
    from consentdesk.domain.basis import Offer
    from consentdesk.domain.model import LawfulBasis, Purpose
    from consentdesk.gui.models import BasisRole

    purposes = (
        Purpose("billing", "Bills", "d", LawfulBasis.CONTRACT, (Channel.EMAIL,), "service"),
        Purpose("fraud", "Fraud checks", "d", LawfulBasis.LEGAL_OBLIGATION, (Channel.EMAIL,), "x"),
        Purpose(
            "mailing", "Our mailing", "d", LawfulBasis.LEGITIMATE_INTEREST, (Channel.EMAIL,),
            "marketing",
        ),
        Purpose("news", "News", "d", LawfulBasis.CONSENT, (Channel.EMAIL,), "marketing"),
    )  # fmt: skip
    model = ConsentGridModel()
    model.set_status(Catalogue(purposes), ())
    qtmodeltester.check(model)
    shown = {
        p.id: (model.index(row, 0).data(), model.index(row, 0).data(BasisRole).offer)
        for row, p in enumerate(purposes)
    }
    assert shown == {
        "billing": ("Contract", Offer.NONE),
        "fraud": ("Legal duty", Offer.NONE),
        "mailing": ("Legit. interest", Offer.OBJECTION),
        "news": ("Not asked", Offer.CONSENT),
    }
    mailing = model.index(2, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert "Art. 21(2)" in mailing and "objection" in mailing
    assert "Art. 6(1)(b)" in model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert model.index(0, 0).data(EventRole) is None


def test_an_opted_out_cell_names_the_request(qtmodeltester: ModelTester) -> None:
    from consentdesk.domain.model import CellStatus, Jurisdiction, RequestType

    catalogue = load_catalogue()
    request = PrivacyRequest(
        request_id=uuid.uuid4(),
        reference="RQ-2345-6789-ABCD",
        subject=NUMBER,
        type=RequestType.OPT_OUT_SALE,
        jurisdiction=Jurisdiction.CCPA,
        received=date(2025, 3, 3),
        status=RequestStatus.RECEIVED,
        due=date(2025, 3, 24),
        acknowledge_by=None,
        agent="a",
        created_at=datetime(2025, 3, 3, 9, tzinfo=UTC),
        updated_at=datetime(2025, 3, 3, 9, tzinfo=UTC),
    )
    cells = [CellStatus("sale-sharing", Channel.ONLINE, ConsentState.OPTED_OUT, request=request)]
    model = ConsentGridModel()
    model.set_status(catalogue, cells)
    qtmodeltester.check(model)
    index = model.index_for("sale-sharing", Channel.ONLINE)
    assert index.data(StateRole) == ConsentState.OPTED_OUT
    assert index.data().startswith("Opted out")
    tip = index.data(Qt.ItemDataRole.ToolTipRole)
    assert "RQ-2345-6789-ABCD" in tip and "opt-out-sale-sharing" in tip
