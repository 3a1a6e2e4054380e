"""Item models of the review window; each exposes named roles for views and tests.

The action table pages from the store: the first page loads when a filter or
sort is applied, further pages when the view scrolls to the end
(``canFetchMore``/``fetchMore``). Loading goes through a loader the window
provides (a background task); results that arrive for an older filter are
dropped by generation number.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import tzinfo
from typing import Any, ClassVar

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from consentdesk.domain import phone
from consentdesk.domain.incident import Incident, notification_clock
from consentdesk.domain.model import ConsentState, utcnow
from consentdesk.domain.review import (
    ACTION_LABELS,
    QUEUE_LABELS,
    ActionKind,
    ActionRow,
    Page,
    PageResult,
    QueueBucket,
    QueueItem,
    ReadLogEntry,
    ReviewFilter,
    SortKey,
    format_local,
)
from consentdesk.gui import theme

_USER = int(Qt.ItemDataRole.UserRole)
_Index = QModelIndex | QPersistentModelIndex

# Action table / history roles
ActionRole = _USER + 1
EventIdRole = _USER + 2
KindRole = _USER + 3
FlaggedRole = _USER + 4
SeqRole = _USER + 5
AtRole = _USER + 6
# Queue roles
RequestRole = _USER + 20
BucketRole = _USER + 21
DaysLeftRole = _USER + 22
# Read log roles
ReadRole = _USER + 30
# Incident roles
IncidentRole = _USER + 40
StageRole = _USER + 41

ACTION_LOOKS: dict[ActionKind, theme.Look] = {
    ActionKind.CONSENT: theme.STATE_LOOKS[ConsentState.GIVEN],
    ActionKind.REFUSAL: theme.STATE_LOOKS[ConsentState.REFUSED],
    ActionKind.WITHDRAWAL: theme.STATE_LOOKS[ConsentState.WITHDRAWN],
    ActionKind.CORRECTION: theme.Look("Correction", theme.Glyph.DASH, "#5f6368", "#a8adb3"),
    ActionKind.REQUEST: theme.ON_TRACK,
    ActionKind.REQUEST_CHANGE: theme.ON_TRACK,
}
FLAG_LOOK = theme.Look("Flagged", theme.Glyph.WARNING, "#9a5b00", "#f0b35e")
BUCKET_LOOKS: dict[QueueBucket, theme.Look] = {
    QueueBucket.OVERDUE: theme.OVERDUE,
    QueueBucket.DUE_THIS_WEEK: theme.DUE_SOON,
    QueueBucket.LATER: theme.ON_TRACK,
}


class _RecordTable(QAbstractTableModel):
    """A flat table: one row per record in ``_records()``, titled by ``COLUMNS``."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()

    def _records(self) -> Sequence[Any]:
        raise NotImplementedError

    def _record_at(self, index: _Index) -> Any:
        """The record shown in *index*'s row, or None for an invalid index."""
        records = self._records()
        if not index.isValid() or not 0 <= index.row() < len(records):
            return None
        return records[index.row()]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records())

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None


class ActionTableModel(_RecordTable):
    """Captured actions, a page at a time, sorted and filtered by the store.

    Signals:
        load_failed(object): a page could not be loaded (the exception).
        page_loaded(int): rows arrived (the number of new rows).
    """

    load_failed = Signal(object)
    page_loaded = Signal(int)

    COLUMNS = (
        "Time",
        "Agent",
        "Team",
        "Customer",
        "Action",
        "Purpose / request",
        "Channel",
        "Script",
        "Call",
        "Flag",
    )
    TIME, AGENT, TEAM, CUSTOMER, ACTION, WHAT, CHANNEL, SCRIPT, CALL, FLAG = range(10)
    SORT_KEYS: ClassVar[dict[int, SortKey]] = {
        TIME: SortKey.TIME,
        AGENT: SortKey.AGENT,
        ACTION: SortKey.KIND,
        WHAT: SortKey.PURPOSE,
    }

    Loader = Callable[
        [ReviewFilter, Page, Callable[[PageResult], None], Callable[[BaseException], None]], None
    ]

    def __init__(
        self, loader: Loader, *, tz: tzinfo, page_size: int = 200, parent: Any = None
    ) -> None:
        super().__init__(parent)
        self._loader = loader
        self._tz = tz
        self._page_size = page_size
        self._rows: list[ActionRow] = []
        self._filter = ReviewFilter()
        self._sort = SortKey.TIME
        self._descending = True
        self._next: Page | None = None
        self._loading = False
        self._generation = 0
        self._revealed: dict[uuid.UUID, str] = {}
        self.loaded_once = False

    # -- loading

    @property
    def current_filter(self) -> ReviewFilter:
        return self._filter

    @property
    def loading(self) -> bool:
        return self._loading

    def set_filter(self, flt: ReviewFilter) -> None:
        self._filter = flt
        self.reload()

    def reload(self) -> None:
        """Drop the rows and load the first page for the current filter and sort."""
        self._generation += 1
        self.beginResetModel()
        self._rows = []
        self._revealed.clear()
        self._next = None
        self.endResetModel()
        self._request(Page(limit=self._page_size, sort=self._sort, descending=self._descending))

    def _request(self, page: Page) -> None:
        generation = self._generation
        self._loading = True

        def deliver(result: PageResult) -> None:
            if generation == self._generation:
                self._append(result, page)

        def fail(exc: BaseException) -> None:
            if generation == self._generation:
                self._loading = False
                self._next = page  # fetchMore may try this page again
                self.load_failed.emit(exc)

        self._loader(self._filter, page, deliver, fail)

    def _append(self, result: PageResult, page: Page) -> None:
        self._loading = False
        self.loaded_once = True
        if result.next is not None:
            self._next = Page(
                limit=page.limit, sort=page.sort, descending=page.descending, after=result.next
            )
        else:
            self._next = None
        if result.rows:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(result.rows) - 1)
            self._rows.extend(result.rows)
            self.endInsertRows()
        self.page_loaded.emit(len(result.rows))

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._next is not None and not self._loading

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent) and self._next is not None:
            page, self._next = self._next, None
            self._request(page)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        key = self.SORT_KEYS.get(column)
        if key is None:
            return
        descending = order == Qt.SortOrder.DescendingOrder
        if (key, descending) == (self._sort, self._descending) and self.loaded_once:
            return
        self._sort, self._descending = key, descending
        self.reload()

    # -- rows

    def row_at(self, row: int) -> ActionRow:
        return self._rows[row]

    def rows(self) -> tuple[ActionRow, ...]:
        return tuple(self._rows)

    def set_revealed(self, event_id: uuid.UUID, number: str) -> None:
        """Show the full number of one row (after a logged reveal)."""
        for i, r in enumerate(self._rows):
            if r.event_id == event_id:
                self._revealed[event_id] = number
                idx = self.index(i, self.CUSTOMER)
                self.dataChanged.emit(idx, idx)
                return

    def set_flagged(self, event_id: uuid.UUID, flagged: bool) -> None:
        for i, r in enumerate(self._rows):
            if r.event_id == event_id and r.flagged != flagged:
                self._rows[i] = replace(r, flagged=flagged)
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))

    def customer_text(self, row: ActionRow) -> str:
        """The full number once revealed; else the last digits behind three dots,
        short enough that a narrow column still shows what tells rows apart."""
        revealed = self._revealed.get(row.event_id)
        if revealed:
            return phone.display(revealed)
        digits = row.subject.lstrip("•")
        return "•••" + digits if digits != row.subject else row.subject

    # -- Qt model

    def _records(self) -> Sequence[Any]:
        return self._rows

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r: ActionRow | None = self._record_at(index)
        if r is None:
            return None
        col = index.column()
        if role == ActionRole:
            return r
        if role == EventIdRole:
            return str(r.event_id)
        if role == KindRole:
            return r.kind.value
        if role == FlaggedRole:
            return r.flagged
        if role == SeqRole:
            return r.seq
        if role == AtRole:
            return r.at.isoformat()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._text(r, col)
        if role == Qt.ItemDataRole.DecorationRole:
            if col == self.ACTION:
                return ACTION_LOOKS[r.kind].icon()
            if col == self.FLAG and r.flagged:
                return FLAG_LOOK.icon()
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == self.TIME:
                return f"{format_local(r.at, self._tz, seconds=True)} (UTC {r.at:%H:%M:%S})"
            if col == self.CUSTOMER and r.event_id not in self._revealed:
                return "Masked: use Reveal number in the detail pane (the read is logged)"
        return None

    def _text(self, r: ActionRow, col: int) -> str:
        if col == self.TIME:
            return format_local(r.at, self._tz)
        if col == self.AGENT:
            return r.agent
        if col == self.TEAM:
            return r.team or ""
        if col == self.CUSTOMER:
            return self.customer_text(r)
        if col == self.ACTION:
            return ACTION_LABELS[r.kind]
        if col == self.WHAT:
            if r.purpose is not None:
                return r.purpose
            if r.request_type is not None:
                ref = f" {r.reference}" if r.reference else ""
                status = f" → {r.status}" if r.kind == ActionKind.REQUEST_CHANGE else ""
                return f"{r.request_type}{ref}{status}"
            return ""
        if col == self.CHANNEL:
            return str(r.channel or "")
        if col == self.SCRIPT:
            return r.script
        if col == self.CALL:
            return r.call_id or ""
        return "Flagged" if r.flagged else ""


class ActionListModel(_RecordTable):
    """A fixed list of actions (a call's actions, a customer's history), numbers masked."""

    COLUMNS = ("Time", "Offset", "Action", "Purpose / request", "Channel", "Agent", "Script")

    def __init__(self, *, tz: tzinfo, parent: Any = None) -> None:
        super().__init__(parent)
        self._tz = tz
        self._rows: tuple[ActionRow, ...] = ()
        self._origin: ActionRow | None = None

    def set_rows(self, rows: Sequence[ActionRow], *, origin: ActionRow | None = None) -> None:
        self.beginResetModel()
        self._rows = tuple(rows)
        self._origin = rows[0] if origin is None and rows else origin
        self.endResetModel()

    def _records(self) -> Sequence[Any]:
        return self._rows

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r: ActionRow | None = self._record_at(index)
        if r is None:
            return None
        if role == ActionRole:
            return r
        if role == EventIdRole:
            return str(r.event_id)
        if role == KindRole:
            return r.kind.value
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 2:
            return ACTION_LOOKS[r.kind].icon()
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return None
        col = index.column()
        if col == 0:
            return format_local(r.at, self._tz, seconds=True)
        if col == 1:
            if self._origin is None:
                return ""
            seconds = int((r.at - self._origin.at).total_seconds())
            sign = "-" if seconds < 0 else "+"
            minutes, secs = divmod(abs(seconds), 60)
            return f"{sign}{minutes:02d}:{secs:02d}"
        if col == 2:
            return ACTION_LABELS[r.kind]
        if col == 3:
            return r.purpose or (
                f"{r.request_type} {r.reference or ''}".strip() if r.request_type else ""
            )
        if col == 4:
            return str(r.channel or "")
        if col == 5:
            return r.agent
        return r.script


class RequestQueueModel(_RecordTable):
    """Open privacy requests in queue order: overdue, due this week, later."""

    COLUMNS = ("Due", "Clock", "Reference", "Type", "Jurisdiction", "Status", "Owner", "Customer")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: tuple[QueueItem, ...] = ()

    def set_items(self, items: Sequence[QueueItem]) -> None:
        self.beginResetModel()
        self._items = tuple(items)
        self.endResetModel()

    def item(self, row: int) -> QueueItem:
        return self._items[row]

    def _records(self) -> Sequence[Any]:
        return self._items

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        item: QueueItem | None = self._record_at(index)
        if item is None:
            return None
        r = item.request
        if role == RequestRole:
            return r
        if role == BucketRole:
            return item.bucket.value
        if role == DaysLeftRole:
            return item.days_left
        look = BUCKET_LOOKS[item.bucket]
        col = index.column()
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            return look.icon()
        if role == Qt.ItemDataRole.ForegroundRole and col in (0, 1):
            return look.color()
        if role == Qt.ItemDataRole.ToolTipRole and col == 1:
            return item.clock
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return None
        values = (
            f"{r.due.isoformat()} · {QUEUE_LABELS[item.bucket]}",
            item.clock.split(" — ")[0],
            r.reference,
            str(r.type),
            str(r.jurisdiction).upper(),
            str(r.status) + (" (extended)" if r.extended and r.status != "extended" else ""),
            r.agent,
            phone.mask(r.subject),
        )
        return values[col]


class ReadLogModel(_RecordTable):
    """The read-access log, newest first, loaded in pages (older reads on scroll)."""

    COLUMNS = ("Time", "Reader", "Customer", "What", "Call", "Detail")

    def __init__(self, *, tz: tzinfo, parent: Any = None) -> None:
        super().__init__(parent)
        self._tz = tz
        self._entries: list[ReadLogEntry] = []
        self._more: Callable[[int], None] | None = None
        self._has_more = False
        self._loading = False

    def set_entries(self, entries: Sequence[ReadLogEntry], *, has_more: bool) -> None:
        self.beginResetModel()
        self._entries = list(entries)
        self._has_more = has_more
        self._loading = False
        self.endResetModel()

    def append_entries(self, entries: Sequence[ReadLogEntry], *, has_more: bool) -> None:
        self._loading = False
        self._has_more = has_more
        if entries:
            first = len(self._entries)
            self.beginInsertRows(QModelIndex(), first, first + len(entries) - 1)
            self._entries.extend(entries)
            self.endInsertRows()

    def set_more_loader(self, load_before: Callable[[int], None]) -> None:
        self._more = load_before

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._has_more and not self._loading and bool(self._entries)

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent) and self._more is not None:
            self._loading = True
            self._more(self._entries[-1].seq)

    def _records(self) -> Sequence[Any]:
        return self._entries

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        entry: ReadLogEntry | None = self._record_at(index)
        if entry is None:
            return None
        read = entry.read
        if role == ReadRole:
            return read
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return None
        values = (
            format_local(read.at, self._tz, seconds=True),
            read.reader,
            phone.mask(read.subject) if read.subject else "(several)",
            str(read.what),
            read.call_id or "",
            read.detail or "",
        )
        return values[index.column()]


class IncidentListModel(QAbstractListModel):
    """Incidents, newest first, each with its notification-clock stage."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._incidents: tuple[Incident, ...] = ()
        self._now = utcnow

    def set_incidents(self, incidents: Sequence[Incident]) -> None:
        self.beginResetModel()
        self._incidents = tuple(incidents)
        self.endResetModel()

    def incident(self, row: int) -> Incident:
        return self._incidents[row]

    def row_of(self, incident_id: uuid.UUID) -> int | None:
        for i, inc in enumerate(self._incidents):
            if inc.incident_id == incident_id:
                return i
        return None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._incidents)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._incidents):
            return None
        inc = self._incidents[index.row()]
        if role == IncidentRole:
            return inc
        if role == StageRole:
            return notification_clock(inc, self._now()).stage.value
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            state = "open" if inc.is_open else "closed"
            return f"{inc.opened.title} ({state})"
        if role == Qt.ItemDataRole.DecorationRole:
            return (theme.OVERDUE if inc.is_open else theme.CLOSED).icon()
        return None
