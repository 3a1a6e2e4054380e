"""The review window driven through its main paths with pytest-qt, on a real ledger."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot
from review_support import (
    ANNA_CUSTOMER,
    BEN_CUSTOMER,
    T0,
    TEAMS,
    Clock,
    Scenario,
    consent,
    open_ledger,
    populate,
)

from consentdesk.domain.backend import Unavailable
from consentdesk.domain.export import KANTARA_SCHEMA, TS27560_SCHEMA, Controller, load_schema
from consentdesk.domain.incident import CallTag
from consentdesk.domain.model import RequestStatus
from consentdesk.domain.review import ReadKind, ReadLogFilter, ReviewSource, Role, Viewer
from consentdesk.gui.review.dialogs import (
    CloseIncidentDialog,
    CommentDialog,
    MoveRequestDialog,
    NotifyDialog,
    OpenIncidentDialog,
)
from consentdesk.gui.review.models import ActionTableModel, FlaggedRole
from consentdesk.gui.review.window import ReviewWindow
from consentdesk.platform.config import Config
from consentdesk.stores import review_sql
from consentdesk.stores.ledger import EmbeddedLedger
from consentdesk.stores.review_sql import LedgerIncidents, SqlReviewSource

BERLIN = ZoneInfo("Europe/Berlin")
ADMIN = Viewer("root", Role.ADMIN)
WAIT = 10_000


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(days=2))


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[EmbeddedLedger]:
    with open_ledger(tmp_path / "ledger.sqlite3", clock) as led:
        yield led


@pytest.fixture
def scenario(ledger: EmbeddedLedger) -> Scenario:
    return populate(ledger)


WindowFactory = Callable[..., ReviewWindow]


@pytest.fixture
def make_window(
    qtbot: QtBot, ledger: EmbeddedLedger, clock: Clock, scenario: Scenario
) -> WindowFactory:
    def make(
        viewer: Viewer = ADMIN,
        *,
        page_size: int = 200,
        opener: Callable[[], ReviewSource] | None = None,
    ) -> ReviewWindow:
        window = ReviewWindow(
            opener or (lambda: SqlReviewSource(ledger, viewer, teams=TEAMS, clock=clock)),
            viewer,
            region="DE",
            controller=Controller.from_config(Config.load(site_files=[])),
            tz=BERLIN,
            clock=clock,
            page_size=page_size,
        )
        qtbot.addWidget(window)
        window.show()
        return window

    return make


def loaded(qtbot: QtBot, window: ReviewWindow, rows: int) -> None:
    qtbot.waitUntil(lambda: window.table_model.rowCount() == rows, timeout=WAIT)
    qtbot.waitUntil(lambda: not window.table_model.loading, timeout=WAIT)


def dialog_of(qtbot: QtBot, window: QWidget, kind: type) -> object:
    found: list[object] = []

    def visible() -> bool:
        found[:] = [w for w in QApplication.topLevelWidgets() if isinstance(w, kind)]
        found[:] += [w for w in window.findChildren(kind) if w.isVisible()]
        return bool(found)

    qtbot.waitUntil(visible, timeout=WAIT)
    return found[-1]


def select_row(qtbot: QtBot, window: ReviewWindow, row: int) -> None:
    window.table.setFocus()
    window.table.selectRow(row)
    event_id = window.table_model.row_at(row).event_id
    qtbot.waitUntil(
        lambda: window.detail.detail is not None and window.detail.detail.row.event_id == event_id,
        timeout=WAIT,
    )


def flag_records(ledger: EmbeddedLedger) -> int:
    conn = sqlite3.connect(ledger.path)
    try:
        return int(conn.execute("SELECT count(*) FROM entries WHERE kind = 'flag'").fetchone()[0])
    finally:
        conn.close()


# --- table -----------------------------------------------------------------------


def test_table_pages_in_on_scroll_and_passes_the_model_tester(
    qtbot: QtBot, qtmodeltester, make_window: WindowFactory, scenario: Scenario
) -> None:
    window = make_window(page_size=4)
    model = window.table_model
    pages: list[int] = []
    model.page_loaded.connect(pages.append)
    qtbot.waitUntil(lambda: model.rowCount() >= 4, timeout=WAIT)
    # The view asks for more while it has room, and on scrolling to the end.
    window.table.scrollToBottom()
    qtbot.waitUntil(lambda: model.rowCount() == scenario.action_count, timeout=WAIT)
    qtbot.waitUntil(lambda: not model.canFetchMore() and not model.loading, timeout=WAIT)
    assert pages == [4, 4, 1]
    assert "9 actions shown" in window.count_label.text()
    qtmodeltester.check(model)
    seqs = [model.row_at(i).seq for i in range(model.rowCount())]
    assert len(set(seqs)) == scenario.action_count
    # Numbers stay masked in the table, short enough that the last digits show.
    cell = model.index(0, ActionTableModel.CUSTOMER).data()
    assert cell.startswith("•••") and "+49" not in cell
    assert cell[3:].isdigit() and model.row_at(0).subject.endswith(cell[3:])
    width = window.table.fontMetrics().horizontalAdvance(cell)
    assert width < window.table.columnWidth(ActionTableModel.CUSTOMER)


def test_the_window_fits_a_1366_by_768_screen(
    qtbot: QtBot, make_window: WindowFactory, scenario: Scenario
) -> None:
    window = make_window()
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 - 16 and hint.height() <= 768 - 48, hint
    # It opens no larger than the screen it is on (down to its minimum size).
    room = window.screen().availableGeometry()
    assert window.width() <= max(room.width(), hint.width())
    assert window.height() <= max(room.height(), hint.height())


def test_filter_search_and_sort(
    qtbot: QtBot, make_window: WindowFactory, scenario: Scenario
) -> None:
    window = make_window()
    loaded(qtbot, window, scenario.action_count)
    qtbot.waitUntil(lambda: window.agent_box.count() == 4, timeout=WAIT)
    window.agent_box.setCurrentIndex(window.agent_box.findData("ben"))
    loaded(qtbot, window, 3)
    assert {window.table_model.row_at(i).agent for i in range(3)} == {"ben"}

    window.reset_filter()
    loaded(qtbot, window, scenario.action_count)
    erasure = scenario.requests[1].reference
    qtbot.keyClicks(window.search_box, erasure.lower().replace("-", " "))
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    loaded(qtbot, window, 2)
    assert {window.table_model.row_at(i).reference for i in range(2)} == {erasure}

    # The start of a reference, as a caller reads part of it, finds it too.
    window.search_box.clear()
    qtbot.keyClicks(window.search_box, erasure[:7].lower())
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    loaded(qtbot, window, 2)
    assert {window.table_model.row_at(i).reference for i in range(2)} == {erasure}

    # Nothing found is said, not left as an empty table.
    window.search_box.clear()
    qtbot.keyClicks(window.search_box, "RQ-ZZZZ")
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Nothing matches “RQ-ZZZZ”" in window.count_label.text(), timeout=WAIT)
    assert window.table_model.rowCount() == 0

    window.search_box.clear()
    qtbot.keyClicks(window.search_box, "0151 8765 4321")
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    loaded(qtbot, window, 2)  # Ben's customer: a refusal and the old request

    window.reset_filter()
    loaded(qtbot, window, scenario.action_count)
    header = window.table.horizontalHeader()
    header.setSortIndicator(ActionTableModel.AGENT, Qt.SortOrder.AscendingOrder)
    qtbot.waitUntil(
        lambda: (
            window.table_model.rowCount() == scenario.action_count
            and window.table_model.row_at(0).agent == "anna"
        ),
        timeout=WAIT,
    )
    agents = [window.table_model.row_at(i).agent for i in range(scenario.action_count)]
    assert agents == sorted(agents)


def test_dates_filter_uses_local_days(
    qtbot: QtBot, make_window: WindowFactory, scenario: Scenario
) -> None:
    window = make_window()
    loaded(qtbot, window, scenario.action_count)
    window.from_date.setDate(window.from_date.date().fromString("2025-03-04", "yyyy-MM-dd"))
    window.to_date.setDate(window.to_date.date().fromString("2025-03-04", "yyyy-MM-dd"))
    window.dates_check.setChecked(True)
    loaded(qtbot, window, 2)


def test_a_bad_search_is_an_inline_error(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window()
    loaded(qtbot, window, 9)
    qtbot.keyClicks(window.search_box, "<script>")
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    assert window.banner.isVisible() and "search for" in window.banner.text.text()
    assert window.table_model.rowCount() == 9


def test_a_store_failure_shows_inline(qtbot: QtBot, make_window: WindowFactory) -> None:
    def broken() -> ReviewSource:
        raise Unavailable("the team server cannot be reached")

    window = make_window(opener=broken)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT)
    assert "cannot be reached" in window.banner.text.text()
    assert window.table_model.rowCount() == 0


def test_a_lead_sees_their_team_only(
    qtbot: QtBot, make_window: WindowFactory, scenario: Scenario
) -> None:
    window = make_window(Viewer("lena", Role.LEAD, team="north"))
    north = sum(1 for e in scenario.consents if e.agent != "cara") + 3
    loaded(qtbot, window, north)
    assert {window.table_model.row_at(i).team for i in range(north)} == {"north"}
    qtbot.waitUntil(lambda: window.agent_box.count() == 3, timeout=WAIT)


# --- proof, reveal, read log -----------------------------------------------------


def test_detail_reveal_and_read_log(
    qtbot: QtBot,
    qtmodeltester,
    make_window: WindowFactory,
    scenario: Scenario,
    ledger: EmbeddedLedger,
) -> None:
    window = make_window()
    loaded(qtbot, window, scenario.action_count)
    target = scenario.consents[1]
    row = next(
        i
        for i in range(window.table_model.rowCount())
        if window.table_model.row_at(i).event_id == target.event_id
    )
    select_row(qtbot, window, row)
    pane = window.detail
    assert pane.check.property("verdict") == "match"
    assert pane.text.toPlainText() == target.notice.text
    assert "Action 2 of 3" in pane.timing.text() and "02:00" in pane.timing.text()
    assert "+49" not in pane.number.text()
    qtmodeltester.check(pane.call_model)
    qtmodeltester.check(pane.history_model)

    qtbot.mouseClick(pane.reveal_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.number_shown, timeout=WAIT)
    assert "+49 1511 2345678" in pane.number.text()
    cell = window.table_model.index(row, ActionTableModel.CUSTOMER).data()
    assert cell == "+49 1511 2345678"

    reads = SqlReviewSource(ledger, ADMIN).read_log(ReadLogFilter(subject=ANNA_CUSTOMER))
    assert [r.read.what for r in reads][:2] == [ReadKind.NUMBER, ReadKind.DETAIL]

    window.tabs.setCurrentIndex(3)
    qtbot.waitUntil(lambda: window.read_model.rowCount() >= 2, timeout=WAIT)
    qtmodeltester.check(window.read_model)
    assert window.read_model.index(0, 3).data() == "number"


# --- flags -----------------------------------------------------------------------


def test_flag_and_resolve_append_records(
    qtbot: QtBot, make_window: WindowFactory, scenario: Scenario, ledger: EmbeddedLedger
) -> None:
    window = make_window()
    loaded(qtbot, window, scenario.action_count)
    select_row(qtbot, window, 0)
    event_id = window.table_model.row_at(0).event_id
    assert flag_records(ledger) == 0

    qtbot.mouseClick(window.detail.flag_button, Qt.MouseButton.LeftButton)
    dialog = dialog_of(qtbot, window, CommentDialog)
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)  # empty: refused inline
    assert dialog.isVisible() and "what is wrong" in dialog.error.text()
    qtbot.keyClicks(dialog.comment_box, "Verbatim passage skipped")
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.detail.flags.count() == 1, timeout=WAIT)
    qtbot.waitUntil(lambda: window.table_model.index(0, 0).data(FlaggedRole), timeout=WAIT)
    assert flag_records(ledger) == 1
    assert window.detail.resolve_button.isEnabled()

    qtbot.mouseClick(window.detail.resolve_button, Qt.MouseButton.LeftButton)
    dialog = dialog_of(qtbot, window, CommentDialog)
    qtbot.keyClicks(dialog.comment_box, "Coached")
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: (
            "Resolved"
            in (window.detail.flags.item(0).text() if window.detail.flags.count() else "")
        ),
        timeout=WAIT,
    )
    qtbot.waitUntil(lambda: not window.table_model.index(0, 0).data(FlaggedRole), timeout=WAIT)
    assert flag_records(ledger) == 2
    assert event_id == window.table_model.row_at(0).event_id
    assert ledger.verify().ok


# --- requests --------------------------------------------------------------------


def test_queue_orders_overdue_first_and_moves_status(
    qtbot: QtBot,
    qtmodeltester,
    make_window: WindowFactory,
    scenario: Scenario,
    ledger: EmbeddedLedger,
) -> None:
    window = make_window()
    loaded(qtbot, window, scenario.action_count)
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.queue_model.rowCount() == 2, timeout=WAIT)
    qtmodeltester.check(window.queue_model)
    assert window.queue_model.item(0).bucket == "overdue"
    assert "1 overdue" in window.queue_summary.text()
    window.queue_view.selectRow(0)
    qtbot.mouseClick(window.move_button, Qt.MouseButton.LeftButton)
    dialog = dialog_of(qtbot, window, MoveRequestDialog)
    assert "GDPR Art. 12(3)" in dialog.item.clock
    dialog.status_box.setCurrentIndex(dialog.status_box.findData("rejected"))
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "reason" in dialog.error.text()
    qtbot.keyClicks(dialog.reason_box, "identity could not be confirmed")
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.queue_model.rowCount() == 1, timeout=WAIT)
    moved = ledger.request(scenario.requests[0].request_id)
    assert moved.status == RequestStatus.REJECTED
    assert moved.status_reason == "identity could not be confirmed"


# --- figures ---------------------------------------------------------------------


def test_figures_are_charted(qtbot: QtBot, make_window: WindowFactory, scenario: Scenario) -> None:
    window = make_window()
    loaded(qtbot, window, scenario.action_count)
    window.tabs.setCurrentIndex(2)
    qtbot.waitUntil(lambda: bool(window.flow_chart.categories), timeout=WAIT)
    assert len(window.agent_chart.categories) == 7
    names = [s.name for s in window.agent_chart.series]
    assert names == ["anna", "ben", "cara"]
    assert "Refused" in window.rates_chart.describe()
    assert window.overdue_chip.text() == "1 overdue of 2 open requests"
    window.agent_chart.grab()  # paints without warnings


# --- exports and integrity -------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    assert path.read_bytes().startswith("\ufeff".encode())  # Excel reads it as UTF-8
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _export_to(window: ReviewWindow, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(window, "choose_save_path", lambda *_args: path)


def test_csv_export_of_the_filtered_view(
    qtbot: QtBot,
    make_window: WindowFactory,
    scenario: Scenario,
    ledger: EmbeddedLedger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger.capture(consent(agent='=HYPERLINK("http://x")', at=T0 + timedelta(hours=5)))
    window = make_window()
    loaded(qtbot, window, scenario.action_count + 1)
    out = tmp_path / "day.csv"
    _export_to(window, monkeypatch, out)
    window.csv_action.trigger()
    qtbot.waitUntil(lambda: window.banner.mode == "success", timeout=WAIT)
    rows = read_csv(out)
    assert len(rows) == scenario.action_count + 1
    assert all(r["number"].startswith("•") for r in rows)
    hostile = next(r for r in rows if "HYPERLINK" in r["agent"])
    assert hostile["agent"].startswith("'=")

    window.agent_box.setCurrentIndex(window.agent_box.findData("ben"))
    loaded(qtbot, window, 3)
    window.full_numbers.setChecked(True)
    window.csv_action.trigger()
    qtbot.waitUntil(
        lambda: window.banner.mode == "success" and "3 actions" in window.banner.text.text(),
        timeout=WAIT,
    )
    rows = read_csv(out)
    assert {r["agent"] for r in rows} == {"ben"}
    assert f"'{BEN_CUSTOMER}" in {r["number"] for r in rows}
    reads = SqlReviewSource(ledger, ADMIN).read_log(ReadLogFilter(reader="root"))
    assert reads[0].read.what == ReadKind.EXPORT and "agent=ben" in (reads[0].read.detail or "")


def test_27560_and_kantara_exports_validate(
    qtbot: QtBot,
    make_window: WindowFactory,
    scenario: Scenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    loaded(qtbot, window, scenario.action_count)
    out = tmp_path / "records.json"
    _export_to(window, monkeypatch, out)
    window.json_action.trigger()
    qtbot.waitUntil(lambda: window.banner.mode == "success", timeout=WAIT)
    doc = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.validate(doc, load_schema(TS27560_SCHEMA))
    assert doc["export"]["record_count"] == 4  # customer × purpose × channel

    first_consent = next(
        i
        for i in range(window.table_model.rowCount())
        if window.table_model.row_at(i).event_id == scenario.consents[0].event_id
    )
    select_row(qtbot, window, first_consent)
    receipt_path = tmp_path / "receipt.json"
    _export_to(window, monkeypatch, receipt_path)
    window.banner.clear()
    qtbot.mouseClick(window.detail.receipt_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.banner.mode == "success", timeout=WAIT)
    receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
    jsonschema.validate(receipt, load_schema(KANTARA_SCHEMA))
    assert receipt["piiPrincipalId"] == ANNA_CUSTOMER


def test_integrity_check_from_the_window(
    qtbot: QtBot, make_window: WindowFactory, scenario: Scenario, ledger: EmbeddedLedger
) -> None:
    window = make_window()
    loaded(qtbot, window, scenario.action_count)
    window.verify_action.trigger()
    qtbot.waitUntil(lambda: window.banner.mode == "success", timeout=WAIT)
    assert "hash chain is intact" in window.banner.text.text()
    conn = sqlite3.connect(ledger.path)
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("UPDATE entries SET body = replace(body, 'refused', 'given') WHERE seq = 3")
    conn.commit()
    conn.close()
    window.verify_action.trigger()
    qtbot.waitUntil(lambda: window.banner.mode == "error", timeout=WAIT)
    assert "record 3" in window.banner.text.text()


# --- incidents -------------------------------------------------------------------


def test_incident_from_open_to_close(
    qtbot: QtBot,
    qtmodeltester,
    make_window: WindowFactory,
    scenario: Scenario,
    ledger: EmbeddedLedger,
    clock: Clock,
) -> None:
    window = make_window()
    loaded(qtbot, window, scenario.action_count)
    window.tabs.setCurrentIndex(4)
    panel = window.incidents
    qtbot.waitUntil(lambda: panel.timer.isActive(), timeout=WAIT)
    qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    dialog = dialog_of(qtbot, window, OpenIncidentDialog)
    qtbot.keyClicks(dialog.title_box, "Mailing to wrong recipients")
    qtbot.keyClicks(dialog.what_box, "2,000 addresses visible in To:")
    dialog.aware_box.setText("2025-03-30 02:30")  # skipped by DST in Berlin
    dialog.purpose_list.item(0).setCheckState(Qt.CheckState.Checked)
    qtbot.keyClicks(dialog.regions_box, "DE, AT")
    qtbot.keyClicks(dialog.script_box, "We know about the email sent in error.")
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "does not exist" in dialog.error.text()
    dialog.aware_box.setText("2025-03-04 10:00")
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=WAIT)
    qtbot.waitUntil(lambda: panel.current() is not None, timeout=WAIT)
    qtmodeltester.check(panel.model)
    incident = panel.current()
    assert incident is not None
    # Clock at T0 + 2 days (10:00 CET on 5 March) is 24 h after awareness.
    assert panel.clock_stage() == "running"
    assert "48 h 00 min left" in panel.clock_text() and "2025-03-07 10:00 CET" in panel.clock_text()

    # An agent's sidebar tags two calls (and one twice).
    sidebar = LedgerIncidents(ledger, Viewer("anna", Role.AGENT))
    assert [i.opened.script for i in sidebar.incidents(open_only=True)] == [
        "We know about the email sent in error."
    ]
    for call, minutes in (("call-a", 5), ("call-b", 20), ("call-a", 30)):
        sidebar.tag_call(
            CallTag(incident.incident_id, call, "anna", at=clock.now - timedelta(minutes=minutes))
        )
    clock.now += timedelta(hours=25)  # 49 h after awareness: the 48-hour warning
    panel._tick()
    panel._tick()  # every second tick reloads the tags
    qtbot.waitUntil(lambda: sum(s for s in panel.chart.series[0].values) == 2, timeout=WAIT)
    assert panel.clock_stage() == "warning"

    qtbot.mouseClick(panel.notify_button, Qt.MouseButton.LeftButton)
    dialog = dialog_of(qtbot, window, NotifyDialog)
    dialog.when_box.setText("2025-03-06 09:30")
    dialog.authority_box.setText("Berliner Beauftragte für Datenschutz")
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.clock_stage() == "notified", timeout=WAIT)

    qtbot.mouseClick(panel.close_button, Qt.MouseButton.LeftButton)
    dialog = dialog_of(qtbot, window, CloseIncidentDialog)
    qtbot.keyClicks(dialog.summary_box, "All affected customers informed")
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: panel.current() is not None and not panel.current().is_open, timeout=WAIT
    )
    assert sidebar.incidents(open_only=True) == ()  # the banner goes
    assert len(review_sql.incidents(ledger)) == 1  # the record stays
    assert not panel.close_button.isEnabled() and not panel.notify_button.isEnabled()
    assert ledger.verify().ok


def test_consentdesk_review_opens_the_window(
    qtbot: QtBot, data_dir: Path, qapp: QApplication
) -> None:
    from PySide6.QtCore import QTimer

    from consentdesk.cli import main
    from consentdesk.stores.ledger import FILE_NAME

    with EmbeddedLedger(data_dir / FILE_NAME, clock=Clock(T0)) as led:
        populate(led)
    seen: list[int] = []

    def look_and_close() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, ReviewWindow)]
        if windows and windows[0].table_model.rowCount() == 9:
            seen.append(windows[0].table_model.rowCount())
            windows[0].close()
        else:
            QTimer.singleShot(50, look_and_close)

    QTimer.singleShot(50, look_and_close)
    config = data_dir.parent / "lead.toml"
    config.write_text('[general]\nagent = "lena"\nrole = "lead"\n', encoding="utf-8")
    assert main(["--data-dir", str(data_dir), "--config", str(config), "review"]) == 0
    assert seen == [9]
