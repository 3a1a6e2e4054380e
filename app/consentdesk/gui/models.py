"""Qt item models for the caller panel: consent grid, privacy requests, history.

Each model exposes named roles so views, delegates and tests ask for meaning
(``StateRole``) rather than for display strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QFont

from consentdesk.domain import rules
from consentdesk.domain.basis import BasisInfo, Offer, basis_info
from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.domain.model import (
    CellStatus,
    Channel,
    ConsentEvent,
    ConsentState,
    PrivacyRequest,
    Purpose,
)
from consentdesk.gui import labels, theme

if TYPE_CHECKING:
    from consentdesk.domain.catalogue import Catalogue

_USER = int(Qt.ItemDataRole.UserRole)

# Consent grid roles
StateRole = _USER + 1
EventRole = _USER + 2
PurposeRole = _USER + 3
ChannelRole = _USER + 4
CellRole = _USER + 5
ApplicableRole = _USER + 6
MethodRole = _USER + 7
DateTextRole = _USER + 8
BasisRole = _USER + 9  # the purpose's BasisInfo (lawful basis, what it offers)
# Requests roles
RequestRole = _USER + 10
ReferenceRole = _USER + 11
DueRole = _USER + 12
DaysLeftRole = _USER + 13
UrgencyRole = _USER + 14
# History roles
CorrectedRole = _USER + 20
CorrectionRole = _USER + 21

_Index = QModelIndex | QPersistentModelIndex

URGENCY_OVERDUE = "overdue"
URGENCY_SOON = "soon"
URGENCY_OPEN = "open"
URGENCY_CLOSED = "closed"
SOON_DAYS = 3


class ConsentGridModel(QAbstractTableModel):
    """Purposes (rows) × channels (columns) with the current state of each cell."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._purposes: tuple[Purpose, ...] = ()
        self._channels: tuple[Channel, ...] = ()
        self._cells: dict[tuple[str, Channel], CellStatus] = {}

    def set_status(self, catalogue: Catalogue, cells: Sequence[CellStatus]) -> None:
        self.beginResetModel()
        self._purposes = catalogue.purposes
        self._channels = catalogue.channels()
        self._cells = {(c.purpose, c.channel): c for c in cells}
        self.endResetModel()

    def clear(self) -> None:
        self.beginResetModel()
        self._purposes, self._channels, self._cells = (), (), {}
        self.endResetModel()

    @property
    def purposes(self) -> tuple[Purpose, ...]:
        return self._purposes

    @property
    def channels(self) -> tuple[Channel, ...]:
        return self._channels

    def cell(self, purpose: str, channel: Channel) -> CellStatus | None:
        return self._cells.get((purpose, channel))

    def cells(self) -> tuple[CellStatus, ...]:
        return tuple(self._cells.values())

    def index_for(self, purpose: str, channel: Channel) -> QModelIndex:
        for row, p in enumerate(self._purposes):
            if p.id == purpose and channel in self._channels:
                return self.index(row, self._channels.index(channel))
        return QModelIndex()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._purposes)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._channels)

    def _applicable(self, purpose: Purpose, channel: Channel) -> bool:
        return channel in purpose.channels

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        purpose = self._purposes[index.row()]
        if not self._applicable(purpose, self._channels[index.column()]):
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not self.checkIndex(index):
            return None
        purpose = self._purposes[index.row()]
        channel = self._channels[index.column()]
        applicable = self._applicable(purpose, channel)
        if role == PurposeRole:
            return purpose.id
        if role == ChannelRole:
            return channel
        if role == ApplicableRole:
            return applicable
        if not applicable:
            if role == Qt.ItemDataRole.DisplayRole:
                return "–"
            if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
                return f"{purpose.title} does not use {labels.CHANNELS[channel]}"
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignCenter)
            return None
        cell = self._cells.get((purpose.id, channel))
        state = cell.state if cell is not None else ConsentState.UNKNOWN
        event = cell.event if cell is not None else None
        info = basis_info(purpose)
        if role == BasisRole:
            return info
        if info.offer != Offer.CONSENT and state == ConsentState.UNKNOWN:
            return self._basis_data(purpose, channel, info, role)
        look = theme.STATE_LOOKS[state]
        if role == StateRole:
            return state
        if role == EventRole:
            return event
        if role == CellRole:
            return cell
        if role == MethodRole:
            return event.method if event is not None else None
        when = (
            event.at
            if event is not None
            else cell.request.received
            if cell and cell.request
            else None
        )
        if role == DateTextRole:
            return labels.short_date(when) if when is not None else ""
        if role == Qt.ItemDataRole.DisplayRole:
            return look.label if when is None else f"{look.label}\n{labels.short_date(when)}"
        if role == Qt.ItemDataRole.DecorationRole:
            return look.icon()
        if role == Qt.ItemDataRole.BackgroundRole:
            # "Not asked" stays plain so the recorded answers stand out.
            return QBrush(look.tint()) if state != ConsentState.UNKNOWN else None
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._describe(purpose, channel, state, event, cell)
        return None

    @staticmethod
    def _basis_data(purpose: Purpose, channel: Channel, info: BasisInfo, role: int) -> Any:
        """A purpose not on consent: information with its basis, never a question."""
        if role == StateRole:
            return ConsentState.UNKNOWN
        if role in (EventRole, CellRole, MethodRole):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, DateTextRole):
            return info.label if role == Qt.ItemDataRole.DisplayRole else ""
        if role == Qt.ItemDataRole.DecorationRole:
            return theme.NOTICE.icon()
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return (
                f"{purpose.title} by {labels.CHANNELS[channel]}: {info.label} "
                f"({info.law}). {info.explanation}"
            )
        return None

    def _describe(
        self,
        purpose: Purpose,
        channel: Channel,
        state: ConsentState,
        event: ConsentEvent | None,
        cell: CellStatus | None,
    ) -> str:
        text = f"{purpose.title} by {labels.CHANNELS[channel]}: {labels.STATE_VERBS[state]}"
        if event is not None:
            text += (
                f" on {labels.date_time(event.at)}, {labels.METHODS[event.method]}"
                f" (script {event.notice.script_id} v{event.notice.version})"
            )
        if cell is not None and cell.expires is not None:
            text += f"; valid until {labels.short_date(cell.expires)}"
        if cell is not None and cell.request is not None:
            r = cell.request
            text += f" ({r.type} request {r.reference}, received {labels.long_date(r.received)})"
        return text

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if not 0 <= section < len(self._channels):
                return None
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                return labels.CHANNELS[self._channels[section]]
            return None
        if not 0 <= section < len(self._purposes):
            return None
        purpose = self._purposes[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return purpose.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return purpose.description
        return None


def urgency(request: PrivacyRequest, today: date) -> str:
    if not request.is_open:
        return URGENCY_CLOSED
    if request.is_overdue(today):
        return URGENCY_OVERDUE
    if rules.confirmation_clock(request, today) == rules.Confirmation.OVERDUE:
        return URGENCY_OVERDUE
    if request.days_left(today) <= SOON_DAYS:
        return URGENCY_SOON
    return URGENCY_OPEN


_URGENCY_LOOKS = {
    URGENCY_OVERDUE: theme.OVERDUE,
    URGENCY_SOON: theme.DUE_SOON,
    URGENCY_OPEN: theme.ON_TRACK,
    URGENCY_CLOSED: theme.CLOSED,
}


class RequestsModel(QAbstractListModel):
    """A caller's open and recent privacy requests, open ones soonest due first."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[PrivacyRequest] = []
        self._today = date.today()
        self._calendar = DEFAULT_CALENDAR

    def set_requests(
        self,
        requests: Sequence[PrivacyRequest],
        *,
        today: date,
        calendar: Calendar | None = None,
    ) -> None:
        """Show *requests* as of the controller's *today* (on *calendar*)."""
        self.beginResetModel()
        self._today = today
        self._calendar = calendar or self._calendar
        self._rows = sorted(requests, key=lambda r: (not r.is_open, r.due, r.reference))
        self.endResetModel()

    def clear(self) -> None:
        self.set_requests((), today=self._today)

    def request_at(self, row: int) -> PrivacyRequest:
        return self._rows[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not self.checkIndex(index):
            return None
        req = self._rows[index.row()]
        level = urgency(req, self._today)
        look = _URGENCY_LOOKS[level]
        if role == RequestRole:
            return req
        if role == ReferenceRole:
            return req.reference
        if role == DueRole:
            return req.due
        if role == DaysLeftRole:
            return req.days_left(self._today)
        if role == UrgencyRole:
            return level
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{self._title(req)}\n{self._when(req, level)}"
        if role == Qt.ItemDataRole.DecorationRole:
            return look.icon()
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(look.tint()) if level in (URGENCY_OVERDUE, URGENCY_SOON) else None
        if role == Qt.ItemDataRole.ToolTipRole:
            rules_text = "\n".join(rules.explain(req, self._calendar))
            return f"{self._title(req)}. {self._when(req, level)}. {look.label}.\n{rules_text}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{self._title(req)}. {self._when(req, level)}. {look.label}."
        return None

    def _title(self, req: PrivacyRequest) -> str:
        return (
            f"{labels.REQUEST_TYPES[req.type]} · {req.reference} · "
            f"{labels.REQUEST_STATUSES[req.status]}"
        )

    def _when(self, req: PrivacyRequest, level: str) -> str:
        if level == URGENCY_CLOSED:
            return f"Closed · was due {labels.short_date(req.due)}"
        left = labels.days_left_text(req.days_left(self._today))
        text = f"Due {labels.short_date(req.due)} · {left}"
        text = text.replace("overdue", "OVERDUE") if level == URGENCY_OVERDUE else text
        return text + self._confirmation(req)

    def _confirmation(self, req: PrivacyRequest) -> str:
        """The CCPA §7021 confirmation clock, tracked beside the answer's."""
        clock = rules.confirmation_clock(req, self._today, self._calendar)
        if clock == rules.Confirmation.PENDING and req.acknowledge_by is not None:
            return f" · confirm receipt by {labels.short_date(req.acknowledge_by)}"
        if clock == rules.Confirmation.OVERDUE:
            return " · receipt confirmation OVERDUE"
        if clock == rules.Confirmation.CONFIRMED:
            return " · receipt confirmed"
        return ""


class HistoryModel(QAbstractListModel):
    """Every event of one purpose, across channels and time, newest first."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[ConsentEvent] = []
        self._corrected: dict[Any, ConsentEvent] = {}

    def set_events(self, events: Sequence[ConsentEvent]) -> None:
        self.beginResetModel()
        self._corrected = {e.corrects: e for e in events if e.corrects is not None}
        self._rows = list(reversed(events))
        self.endResetModel()

    def clear(self) -> None:
        self.set_events(())

    def event_at(self, row: int) -> ConsentEvent:
        return self._rows[row]

    def row_of(self, event_id: Any) -> int:
        for row, e in enumerate(self._rows):
            if e.event_id == event_id:
                return row
        return -1

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not self.checkIndex(index):
            return None
        ev = self._rows[index.row()]
        corrected_by = self._corrected.get(ev.event_id)
        look = theme.STATE_LOOKS[ev.state]
        if role == EventRole:
            return ev
        if role == StateRole:
            return ev.state
        if role == ChannelRole:
            return ev.channel
        if role == PurposeRole:
            return ev.purpose
        if role == CorrectedRole:
            return corrected_by is not None
        if role == CorrectionRole:
            return ev.corrects is not None
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{self._headline(ev, corrected_by)}\n{self._proof_line(ev)}"
        if role == Qt.ItemDataRole.DecorationRole:
            return look.icon()
        if role == Qt.ItemDataRole.FontRole and corrected_by is not None:
            font = QFont()
            font.setStrikeOut(True)
            return font
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return f"{self._headline(ev, corrected_by)}. {self._proof_line(ev)}"
        return None

    def _headline(self, ev: ConsentEvent, corrected_by: ConsentEvent | None) -> str:
        what = f"{theme.STATE_LOOKS[ev.state].label} · {labels.CHANNELS[ev.channel]}"
        when = labels.date_time(ev.at)
        text = f"{what} · {when}"
        if ev.corrects is not None:
            text = f"Correction: {text}"
        if corrected_by is not None:
            text += " (corrected)"
        return text

    def _proof_line(self, ev: ConsentEvent) -> str:
        call = f" · call {ev.call_id}" if ev.call_id else ""
        return (
            f"{ev.notice.script_id} v{ev.notice.version} ({ev.notice.language})"
            f" · agent {ev.agent}{call}"
        )
