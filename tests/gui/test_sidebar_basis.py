"""Lawful basis and CCPA effects in the real sidebar (issue #10, items 4 and 5)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sidebar_support import NUMBER, click, click_index, open_caller_by_typing, tick_read_aloud

from consentdesk.domain.catalogue import Catalogue, load_catalogue
from consentdesk.domain.model import Channel, ConsentState, LawfulBasis, Purpose, RequestType
from consentdesk.gui.flows import ConsentFlow, RequestFlow
from consentdesk.gui.main import Sidebar
from consentdesk.gui.models import StateRole
from consentdesk.stores.ledger import FILE_NAME, EmbeddedLedger

MakeSidebar = Callable[..., Sidebar]

PRODUCT_NEWS = Purpose(
    id="product-news",
    title="News about products you have",
    description="We tell existing customers about similar products.",
    lawful_basis=LawfulBasis.LEGITIMATE_INTEREST,
    channels=(Channel.EMAIL,),
    group="marketing",
)


def _catalogue() -> Catalogue:
    return dataclasses.replace(
        load_catalogue(), purposes=(*load_catalogue().purposes, PRODUCT_NEWS)
    )


def _select(qtbot: QtBot, sidebar: Sidebar, purpose: str, channel: Channel) -> None:
    panel = sidebar.window.panel
    index = panel.grid_model.index_for(purpose, channel)
    assert index.isValid()
    click_index(qtbot, panel.grid, index.row(), index.column())
    assert panel.selected_cell() == (purpose, channel)


def test_a_legitimate_interest_purpose_offers_an_objection_not_a_consent(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path, known_caller: None
) -> None:
    catalogue = _catalogue()
    sidebar = make_sidebar(
        open_backend=lambda: EmbeddedLedger(data_dir / FILE_NAME, catalogue=catalogue)
    )
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    contract = panel.grid_model.index_for("service-updates", Channel.EMAIL)
    assert contract.data() == "Contract"
    assert "Art. 6(1)(b)" in contract.data(Qt.ItemDataRole.ToolTipRole)

    _select(qtbot, sidebar, "product-news", Channel.EMAIL)
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, RequestFlow) and flow.chosen_type == RequestType.OBJECTION
    flow.cancel()

    _select(qtbot, sidebar, "marketing-offers", Channel.EMAIL)
    click(qtbot, panel.consent_button)
    assert isinstance(panel.flow, ConsentFlow)
    assert "service-updates" not in panel.flow.purposes  # never asked as consent
    panel.flow.cancel()


def test_an_opt_out_turns_the_sale_cell_at_once(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path, known_caller: None
) -> None:
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    click(qtbot, panel.request_button)
    flow = panel.flow
    assert isinstance(flow, RequestFlow)
    flow.jurisdiction.setCurrentIndex(flow.jurisdiction.findData("ccpa"))
    flow.type.setCurrentIndex(flow.type.findData(RequestType.OPT_OUT_SALE))
    assert flow.chosen_type == RequestType.OPT_OUT_SALE
    tick_read_aloud(qtbot, flow)
    with qtbot.waitSignal(panel.captured, timeout=10_000):
        click(qtbot, flow.record)

    def opted_out() -> bool:
        index = panel.grid_model.index_for("sale-sharing", Channel.ONLINE)
        return index.isValid() and index.data(StateRole) == ConsentState.OPTED_OUT

    qtbot.waitUntil(opted_out, timeout=10_000)
    index = panel.grid_model.index_for("sale-sharing", Channel.ONLINE)
    assert index.data().startswith("Opted out")
    with EmbeddedLedger(data_dir / FILE_NAME) as led:
        assert led.status(NUMBER).cell("sale-sharing", Channel.ONLINE).request is not None
